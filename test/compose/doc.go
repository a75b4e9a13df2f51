// Package compose holds the end-to-end tests of route composition (issue
// 18): path captures used in rewrite.path, headers values and hash_key
// param:NAME, and aggregate routes fanning out to real backends on
// 127.0.0.1 through a real gateway.
package compose
