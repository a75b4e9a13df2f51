// Package requirerole is the `require_role` policy: it admits only requests
// whose authenticated consumer holds one of the listed roles.
//
// Config:
//
//	policies:
//	  admins-only:
//	    type: require_role
//	    any_of: [admin, ops]
//	    claim: roles        # optional: take the roles from this verified token claim
//
// Roles come from the request's authentication, recorded by a policy that
// runs before this one on the route (api_key: the consumer's roles; jwt:
// the claim named by its roles_claim). With claim, they come from that
// claim of the token a jwt policy verified: an array of strings, or a
// string of space-separated roles (as OAuth's scope claim). List the
// authentication policy first: `policies: [keys, admins-only]`; a route
// that lists a require_role with claim and no jwt policy before it is
// refused by validation. A request without any of the roles, or
// without authentication, is refused with 403 forbidden.
//
// Metrics: none of its own; refusals count in rampart_http_requests_total
// with code 403.
package requirerole
