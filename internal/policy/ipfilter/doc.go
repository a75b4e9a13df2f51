// Package ipfilter is the `ip_filter` policy: it admits or refuses a request
// by the client's IP address.
//
// Config:
//
//	policies:
//	  only-office:
//	    type: ip_filter
//	    allow: [10.0.0.0/8, "127.0.0.1"]   # CIDR prefixes or single addresses
//	    deny: [10.6.6.0/24]                # deny wins over allow
//	    trust_forwarded: 1                 # default 0: use the TCP peer address
//
// The client address is the TCP peer (RemoteAddr) unless trust_forwarded is
// N > 0: then it is the N-th address from the right of X-Forwarded-For,
// which is right when exactly N proxies you control stand in front of the
// gateway. A request whose address is denied, or that matches no allow
// entry while allow is not empty, is refused with 403 and the code
// ip_denied. IPv4-mapped IPv6 addresses are treated as IPv4.
//
// Metrics: none of its own; refusals count in rampart_http_requests_total
// with code 403.
package ipfilter
