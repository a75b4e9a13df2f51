// Package waf is the `waf` policy: the OWASP Core Rule Set v4 through
// Coraza v3, both embedded (nothing is downloaded at run time).
//
// Config:
//
//	policies:
//	  waf:
//	    type: waf
//	    paranoia_level: 1          # 1-4; default 1
//	    mode: block                # block (default) | detect
//	    anomaly_threshold: 5       # inbound score that blocks; default 5
//	    inspect_bodies: true       # default true
//	    max_body_bytes: 131072     # default 128 KiB
//	    body_over_limit: reject    # reject (413, default) | inspect_partial
//	    rule_exclusions:
//	      - {ids: [942100], args: [comment], path_prefix: /blog/}
//	    directives: |              # the operator's SecLang, after the CRS
//	      SecRuleRemoveById 920350
//
// One Coraza WAF is built per distinct settings and shared, through a weak
// cache, with every compiled policy (of this config or the active one) that
// has the same settings: a reload with an unchanged waf reuses it. Phases 1
// and 2 run per request; the body is read once into the listener's spool
// and forwarded from there. A block answers 403 waf_blocked (rule ids only
// in the log and exchange.WAFRules). XML bodies that declare an entity or
// an external DTD are a critical finding of the policy's own (rule 200007,
// tag attack-xxe), which the CRS lacks. The CRS's @rx rules run through
// rampart_rx (rx.go): Coraza's @rx with a prefilter derived from each
// regexp (prefilter.go) that skips values which cannot match. Metrics: rampart_waf_blocked_total
// {route}, rampart_waf_detected_total{route},
// rampart_waf_rule_sets_built_total.
package waf
