// Package clientcert is the `client_cert` policy: it admits requests that
// came with a verified mTLS client certificate, optionally only those whose
// subject alternative names match a pattern, and identifies the consumer
// by the certificate's fingerprint.
//
// Config:
//
//	listeners:
//	  - name: public
//	    address: ":8443"
//	    tls:
//	      certificates: [{cert_file: server.pem, key_file: server-key.pem}]
//	      client_auth: {mode: request, ca_file: clients-ca.pem}   # or require
//	policies:
//	  mtls:
//	    type: client_cert
//	    allow_sans: ["URI:spiffe://prod.example/*", "DNS:*.svc.internal"]   # optional
//	    require_consumer: false   # default false: a verified certificate of no consumer passes
//	consumers:
//	  - name: billing
//	    client_certs: ["sha256:3f1c..."]   # the SHA-256 of the DER certificate
//	    roles: [internal]
//
// The listener's client_auth verifies the certificate against its CA in the
// handshake (mode request asks for one and verifies it when given; require
// refuses the connection without one). The policy then decides per route:
// a request without a verified certificate is refused with 401
// unauthenticated; one whose certificate has no SAN matching allow_sans
// (typed patterns, '*' for any run of characters, DNS names compared
// case-insensitively) with 403 forbidden. A certificate whose fingerprint
// is in a consumer's client_certs makes that consumer the request's, with
// its roles (for require_role, rate_limit key consumer and by_role, the
// access log); with require_consumer, a certificate of no consumer is
// refused with 403.
//
// Every request forwarded upstream carries the verified certificate's
// identity in X-Client-Cert-Subject, X-Client-Cert-SHA256 and
// X-Client-Cert-SANs (see internal/certid), whatever the policies;
// client-sent copies are always removed.
package clientcert
