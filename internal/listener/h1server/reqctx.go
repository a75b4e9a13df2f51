package h1server

// The request context: a context.Context per request, cancelled when the
// client goes away, without the allocations of context.WithCancel.

import "github.com/rampart-gw/rampart/internal/listener/httpcore"

// reqContext is a request's context: cancelled when the handler returns or
// the client goes away, like net/http's, but part of the request's one
// allocation (httpcore.Ctx, embedded by value). It carries no values.
type reqContext struct {
	httpcore.Ctx
}

func (c *reqContext) Value(any) any { return nil }

func (c *reqContext) String() string { return "h1server.reqContext" }

func (c *reqContext) cancel() { c.Ctx.Cancel() }
