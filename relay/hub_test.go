package relay

import "testing"

// TestHubPublished: a waiter may skip its first store read only while
// every publish seen for its group is at most its position; after a reset
// (events lost) a handler's publish of an append that started before it
// teaches nothing, one that started after it does.
func TestHubPublished(t *testing.T) {
	h := newHub()
	k := groupKey([]byte("g"))
	g := []byte("g")
	if h.published(k, 5) {
		t.Fatal("nothing published yet: unknown, must read the store")
	}
	h.publishAppended(Event{GroupID: g, Seq: 5}, h.generation())
	h.publishAppended(Event{GroupID: g, Seq: 3}, h.generation()) // a late publish of an earlier entry
	if !h.published(k, 5) || h.published(k, 4) {
		t.Fatal("published after 5 / 4")
	}
	before := h.generation()
	h.publish(Event{}) // events may have been lost
	h.publishAppended(Event{GroupID: g, Seq: 4}, before)
	if h.published(k, 4) {
		t.Fatal("learnt from an append that started before the reset")
	}
	h.publishAppended(Event{GroupID: g, Seq: 9}, h.generation())
	if !h.published(k, 9) || h.published(k, 8) {
		t.Fatal("not learnt from an append that started after the reset")
	}
	h.publish(Event{GroupID: g, Seq: 10}) // a notification
	if !h.published(k, 10) || h.published(k, 9) {
		t.Fatal("not learnt from a notification")
	}
}

// TestHubRepublishWakesNobody: the second publish of an entry (the
// handler's and the notification's on PostgreSQL) does not wake waiters;
// a later entry does.
func TestHubRepublishWakesNobody(t *testing.T) {
	h := newHub()
	k := groupKey([]byte("g"))
	h.publish(Event{GroupID: []byte("g"), Seq: 7})
	ch, release := h.wait(k)
	defer release()
	h.publish(Event{GroupID: []byte("g"), Seq: 7})
	h.publish(Event{GroupID: []byte("g"), Seq: 6})
	select {
	case <-ch:
		t.Fatal("woken by an entry already published")
	default:
	}
	h.publish(Event{GroupID: []byte("g"), Seq: 8})
	select {
	case <-ch:
	default:
		t.Fatal("not woken by a new entry")
	}
	ch2, release2 := h.wait(k)
	defer release2()
	h.publish(Event{}) // lost events: wake everyone
	select {
	case <-ch2:
	default:
		t.Fatal("not woken by a reset")
	}
}

// TestReadPositions: a page ending in an application message or proposal
// lets the next read after it skip the window check; one ending in a
// commit (which may be the reader's removal) does not.
func TestReadPositions(t *testing.T) {
	var p readPositions
	g := []byte("g")
	if p.continues(g, "bob", 0) {
		t.Fatal("no page read yet")
	}
	p.ended(g, "bob", Message{Seq: 4, Kind: "application"})
	if !p.continues(g, "bob", 4) || p.continues(g, "bob", 3) || p.continues(g, "carol", 4) {
		t.Fatal("continues after an application message")
	}
	p.ended(g, "bob", Message{Seq: 5, Kind: "commit"})
	if p.continues(g, "bob", 5) || p.continues(g, "bob", 4) {
		t.Fatal("a page ending in a commit proves nothing")
	}
}
