//go:build !linux

package h1server

import (
	"errors"
	"time"
)

// poller is Linux-only; elsewhere idle connections keep their goroutine.
type poller struct{}

var errNoPoller = errors.New("no poller on this platform")

func newPoller(*Server) (*poller, error) { return nil, errNoPoller }

func (p *poller) park(*srvConn, time.Time) bool { return false }
func (p *poller) run()                          {}
func (p *poller) sweep(<-chan struct{})         {}
func (p *poller) closeAll()                     {}
func (p *poller) count() int                    { return 0 }

func (c *srvConn) surface() bool { return false }
func (c *srvConn) dropDeep()     {}
