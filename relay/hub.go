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
	// last is, per group, the highest seq published since the last reset
	// (see published); gen counts the resets.
	last map[string]int64
	gen  uint64
}

// hubLastMax bounds hub.last; past it, groups not in it are not learnt
// (their readers always read the store first).
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
// zero Event wakes everyone). It is for events that come in commit order
// (PostgreSQL notifications) or that are not log entries; an append's
// handler uses publishAppended.
func (h *hub) publish(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.publishLocked(ev, true)
}

// generation is the reset count, taken by a handler before it appends.
func (h *hub) generation() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gen
}

// publishAppended is publish for the entry of an append that started at
// generation gen: handlers publish in any order, so an append that started
// before a reset (its entry committed before it, perhaps below a seq the
// reset forgot) teaches nothing. An append started after a reset committed
// after it, above every entry published before it.
func (h *hub) publishAppended(ev Event, gen uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.publishLocked(ev, gen == h.gen)
}

func (h *hub) publishLocked(ev Event, learn bool) {
	switch {
	case ev.GroupID != nil:
		k := groupKey(ev.GroupID)
		prev, known := h.last[k]
		if learn && (known || len(h.last) < hubLastMax) {
			h.last[k] = max(prev, ev.Seq)
		}
		// An entry published again (on PostgreSQL the appending handler
		// and the process's own notification both publish it) wakes
		// nobody: its first publish woke every waiter of that time, and
		// every later one read the store after it (or skipped while it
		// waits for a later seq).
		if !known || ev.Seq <= 0 || ev.Seq > prev {
			h.fire(k)
		}
	case ev.Recipient != "":
		h.fire(welcomeKey(ev.Recipient))
	case ev.Mailbox != "":
		h.fire(linkKey(ev.Mailbox))
	case ev.Revoked != nil:
		// No waiter sleeps on a device; streams see it below.
	default:
		// Events may have been lost: what was published is no longer
		// known.
		clear(h.last)
		h.gen++
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
	return ok && last <= after
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
