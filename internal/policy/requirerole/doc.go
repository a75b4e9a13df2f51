// Package requirerole is the `require_role` policy: it admits only requests
// whose authenticated consumer holds one of the listed roles.
//
// Config:
//
//	policies:
//	  admins-only:
//	    type: require_role
//	    any_of: [admin, ops]
//
// Roles come from the request's authentication, recorded by a policy that
// runs before this one on the route (api_key: the consumer's roles; jwt,
// later: a claim). List the authentication policy first:
// `policies: [keys, admins-only]`. A request without any of the roles, or
// without authentication, is refused with 403 forbidden.
//
// Metrics: none of its own; refusals count in rampart_http_requests_total
// with code 403.
package requirerole
