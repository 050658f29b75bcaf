package relay

import (
	"testing"
	"time"
)

// TestHubPublished: a waiter may skip its first store read only while
// every publish seen for its group is at most its position, and not
// right after a reset (events lost, or the bound reached).
func TestHubPublished(t *testing.T) {
	h := newHub()
	k := groupKey([]byte("g"))
	if h.published(k, 5) {
		t.Fatal("nothing published yet: unknown, must read the store")
	}
	h.publish(Event{GroupID: []byte("g"), Seq: 5})
	h.publish(Event{GroupID: []byte("g"), Seq: 3}) // a late publish of an earlier entry
	if !h.published(k, 5) || h.published(k, 4) {
		t.Fatal("published after 5 / 4")
	}
	h.publish(Event{}) // events may have been lost
	h.publish(Event{GroupID: []byte("g"), Seq: 4})
	if h.published(k, 4) {
		t.Fatal("trusted right after a reset")
	}
	h.mu.Lock()
	h.untilTrusted = time.Now().Add(-time.Second)
	h.mu.Unlock()
	if !h.published(k, 4) {
		t.Fatal("not trusted once the distrust ended")
	}
}
