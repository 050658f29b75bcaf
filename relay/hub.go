package relay

import (
	"sync"
	"time"
)

// hub wakes waiting requests. A long-poll takes a channel for its key
// (group or welcome recipient) before it reads the store, then blocks on
// it; publish closes the key's channel, waking every waiter at once. No
// request ever polls the store in a loop.
type hub struct {
	mu   sync.Mutex
	keys map[string]*waitKey
	subs map[chan Event]struct{}
	// last is, per group, the highest seq published since the last reset
	// (see published); untilTrusted ends the distrust that follows one.
	last         map[string]int64
	untilTrusted time.Time
}

// hubLastMax bounds hub.last; past it, it starts again empty.
const hubLastMax = 1 << 16

type waitKey struct {
	ch   chan struct{}
	refs int
}

func newHub() *hub {
	return &hub{keys: map[string]*waitKey{}, subs: map[chan Event]struct{}{}, last: map[string]int64{}}
}

func groupKey(gid []byte) string    { return "g" + string(gid) }
func welcomeKey(user string) string { return "w" + user }
func linkKey(mailbox string) string { return "l" + mailbox }

// wait returns a channel closed at the next publish for key, and a release
// function the caller must call when it stops waiting.
func (h *hub) wait(key string) (<-chan struct{}, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := h.keys[key]
	if w == nil {
		w = &waitKey{ch: make(chan struct{})}
		h.keys[key] = w
	}
	w.refs++
	ch := w.ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if cur := h.keys[key]; cur == w {
				if w.refs--; w.refs == 0 {
					delete(h.keys, key)
				}
			}
		})
	}
}

// publish wakes the waiters of ev's key and sends ev to subscribers (a
// zero Event wakes everyone).
func (h *hub) publish(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case ev.GroupID != nil:
		k := groupKey(ev.GroupID)
		if len(h.last) >= hubLastMax {
			h.resetLast()
		}
		h.last[k] = max(h.last[k], ev.Seq)
		h.fire(k)
	case ev.Recipient != "":
		h.fire(welcomeKey(ev.Recipient))
	case ev.Mailbox != "":
		h.fire(linkKey(ev.Mailbox))
	case ev.Revoked != nil:
		// No waiter sleeps on a device; streams see it below.
	default:
		// Events may have been lost: what was published is no longer
		// known.
		h.resetLast()
		for k := range h.keys {
			h.fire(k)
		}
	}
	for sub := range h.subs {
		select {
		case sub <- ev:
		default:
			// A slow subscriber: tell it to resynchronise instead of
			// blocking publishers.
			select {
			case <-sub:
			default:
			}
			select {
			case sub <- Event{}:
			default:
			}
		}
	}
}

// hubDistrust is how long after a reset of hub.last it is not used: a
// publish made by a handler that appended before the reset (a lower seq
// than one forgotten) must not teach a too low last seq.
const hubDistrust = 5 * time.Second

func (h *hub) resetLast() {
	clear(h.last)
	h.untilTrusted = time.Now().Add(hubDistrust)
}

// published reports whether a publish for the group of key has been seen
// and every one seen was of a seq at most after. Every new log entry is
// published once readable (by the handler that appended it, and on
// PostgreSQL by the notification of every process's append), so a waiter
// that registered (wait) before asking, and is told true, would find
// nothing after `after` in the store, and is woken by the publish of the
// next entry: it may wait without reading the store first. The cost of
// a wrong true would be a wait for the next entry or the end of the wait,
// never a wrong answer: a waiter always reads the store before answering.
func (h *hub) published(key string, after int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	last, ok := h.last[key]
	return ok && last <= after && !time.Now().Before(h.untilTrusted)
}

func (h *hub) fire(key string) {
	if w := h.keys[key]; w != nil {
		close(w.ch)
		delete(h.keys, key)
	}
}

// subscribe returns a channel of every event (for server-sent events).
func (h *hub) subscribe() (chan Event, func()) {
	ch := make(chan Event, 64)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}
