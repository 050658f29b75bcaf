package client

import (
	"sync"
	"time"
)

// Event kinds (the node's SSE event names).
const (
	EventMessage      = "message"       // a chat message arrived (or ours was stored)
	EventDelivery     = "delivery"      // an outgoing item changed status (queued, sent, dropped) or an entry was skipped
	EventMembership   = "membership"    // members joined or left a channel
	EventRole         = "role"          // a member's role changed
	EventChannelState = "channel_state" // a channel became active, removed or left
	EventInvitation   = "invitation"    // a pending invitation arrived
	EventRelayStatus  = "relay_status"  // the relay became reachable or unreachable
)

// Event is one thing that happened, in order (ID increases by one).
type Event struct {
	ID        uint64         `json:"-"`
	Kind      string         `json:"-"`
	ChannelID string         `json:"channel_id,omitempty"`
	At        time.Time      `json:"at"`
	Data      map[string]any `json:"data,omitempty"`
}

// eventLogSize is how many past events a subscriber can resume from.
const eventLogSize = 4096

// hub keeps the recent events and fans them out. A subscriber that does
// not keep up loses its subscription (its channel is closed) rather than
// blocking the engine; it resumes from its last id.
type hub struct {
	mu   sync.Mutex
	next uint64
	log  []Event
	subs map[chan Event]struct{}
}

func newHub() *hub { return &hub{next: 1, subs: map[chan Event]struct{}{}} }

func (h *hub) emit(kind, channelID string, data map[string]any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ev := Event{ID: h.next, Kind: kind, ChannelID: channelID, At: time.Now().UTC(), Data: data}
	h.next++
	h.log = append(h.log, ev)
	if len(h.log) > eventLogSize {
		h.log = h.log[len(h.log)-eventLogSize:]
	}
	for ch := range h.subs {
		select {
		case ch <- ev:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// subscribe returns the kept events after id `after` and a channel of the
// following ones; cancel ends the subscription.
func (h *hub) subscribe(after uint64) (past []Event, ch <-chan Event, cancel func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range h.log {
		if ev.ID > after {
			past = append(past, ev)
		}
	}
	c := make(chan Event, 256)
	h.subs[c] = struct{}{}
	return past, c, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[c]; ok {
			delete(h.subs, c)
			close(c)
		}
	}
}
