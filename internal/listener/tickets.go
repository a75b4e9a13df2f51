package listener

import (
	"crypto/rand"
	"crypto/tls"
	"sync"
	"time"
	"weak"
)

// TicketRotation is how often the session ticket key changes. Tickets are
// accepted under the current key and the one before, so a ticket resumes a
// session for between one and two rotations.
const TicketRotation = time.Hour

// ticketKeys is the process's one set of TLS session ticket keys, shared
// by every TLS listener and kept across reloads: a client that got a ticket
// from one listener's config resumes on another's, and after a reload,
// where crypto/tls's own per-config keys would have been new. The keys live
// only in memory; a binary upgrade starts a new set (clients then make one
// full handshake).
var ticketKeys = &ticketRing{}

type ticketRing struct {
	mu      sync.Mutex
	keys    [][32]byte // current first
	at      time.Time  // when keys[0] was made
	configs []weak.Pointer[tls.Config]
	started bool
}

// apply gives tc the current keys and keeps it (weakly) to give it the
// next ones at each rotation.
func (r *ticketRing) apply(tc *tls.Config) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys == nil {
		r.rotateLocked(time.Now())
	}
	if !r.started {
		// A timer, not a goroutine: nothing runs between rotations.
		r.started = true
		time.AfterFunc(TicketRotation, r.tick)
	}
	tc.SetSessionTicketKeys(r.keys)
	r.configs = append(r.configs, weak.Make(tc))
}

func (r *ticketRing) tick() {
	r.mu.Lock()
	r.rotateLocked(time.Now())
	r.mu.Unlock()
	time.AfterFunc(TicketRotation, r.tick)
}

// rotateLocked makes a new current key, keeps the previous one for
// decryption, and hands both to every live config (dropping dead ones).
func (r *ticketRing) rotateLocked(now time.Time) {
	var k [32]byte
	rand.Read(k[:])
	keys := [][32]byte{k}
	if len(r.keys) > 0 {
		keys = append(keys, r.keys[0])
	}
	r.keys, r.at = keys, now
	live := r.configs[:0]
	for _, w := range r.configs {
		if tc := w.Value(); tc != nil {
			tc.SetSessionTicketKeys(keys)
			live = append(live, w)
		}
	}
	clear(r.configs[len(live):])
	r.configs = live
}
