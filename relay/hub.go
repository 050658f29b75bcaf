package relay

import "sync"

// hub wakes waiting requests. A long-poll takes a channel for its key
// (group or welcome recipient) before it reads the store, then blocks on
// it; publish closes the key's channel, waking every waiter at once. No
// request ever polls the store in a loop.
type hub struct {
	mu   sync.Mutex
	keys map[string]*waitKey
	subs map[chan Event]struct{}
}

type waitKey struct {
	ch   chan struct{}
	refs int
}

func newHub() *hub {
	return &hub{keys: map[string]*waitKey{}, subs: map[chan Event]struct{}{}}
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
		h.fire(groupKey(ev.GroupID))
	case ev.Recipient != "":
		h.fire(welcomeKey(ev.Recipient))
	case ev.Mailbox != "":
		h.fire(linkKey(ev.Mailbox))
	case ev.Revoked != nil:
		// No waiter sleeps on a device; streams see it below.
	default:
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
