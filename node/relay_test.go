package node_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/node"
)

// Relay-mode tests with real node processes (spacepanda serve --relay).
// The relay is `spacepanda relay` when the binary has that command, else
// the in-process fakeRelay.

// rlStartRelay returns the URL of a relay for this test.
func rlStartRelay(t *testing.T) (string, *fakeRelay) {
	t.Helper()
	if u := rlRelayProc(t, nil); u != "" {
		return u, nil
	}
	f := newFakeRelay()
	srv := httptest.NewUnstartedServer(f)
	f.URL = "http://" + srv.Listener.Addr().String()
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL, f
}

func rlNode(t *testing.T, name, relayURL string) *proc {
	t.Helper()
	return startProc(t, name, "--relay", relayURL)
}

func rlPath(ch string, parts ...string) string {
	return "/v1/channels/" + url.PathEscape(ch) + strings.Join(parts, "")
}

func rlCreate(t *testing.T, p *proc, name string) string {
	t.Helper()
	c, err := p.c.CreateChannel(context.Background(), name, false)
	if err != nil {
		t.Fatalf("%s creates %s: %v; stderr:\n%s", p.name, name, err, p.stderr)
	}
	return c.ChannelID
}

func rlInvite(t *testing.T, p *proc, ch string, user *proc) node.RelayInviteResponse {
	t.Helper()
	var r node.RelayInviteResponse
	// The invitee knows the inviter: the Welcome is joined at once rather
	// than kept as a pending invitation (TestStrangerWelcomeIsInvitation).
	if err := user.c.Do(context.Background(), "PUT", "/v1/contacts/"+url.PathEscape(p.uid), map[string]any{}, nil); err != nil {
		t.Fatalf("%s adds %s as a contact: %v", user.name, p.name, err)
	}
	if err := p.c.Do(context.Background(), "POST", rlPath(ch, "/invites"), map[string]string{"user_id": user.uid}, &r); err != nil {
		t.Fatalf("%s invites %s: %v", p.name, user.name, err)
	}
	return r
}

func rlSend(t *testing.T, p *proc, ch, text string) node.RelaySendResponse {
	t.Helper()
	var r node.RelaySendResponse
	if err := p.c.Do(context.Background(), "POST", rlPath(ch, "/messages"), node.SendRequest{Text: text}, &r); err != nil {
		t.Fatalf("%s sends: %v", p.name, err)
	}
	return r
}

func rlHistory(t *testing.T, p *proc, ch string) []node.RelayChatMessage {
	t.Helper()
	var r node.RelayMessagesResponse
	if err := p.c.Do(context.Background(), "GET", rlPath(ch, "/messages?limit=10000"), nil, &r); err != nil {
		t.Fatalf("%s history: %v", p.name, err)
	}
	return r.Messages
}

// rlEventually polls cond (the test, not the node, polls) until it holds.
func rlEventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (%s)", what, d, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func rlWaitJoined(t *testing.T, p *proc, ch string) {
	t.Helper()
	rlEventually(t, 20*time.Second, p.name+" joins "+ch, func() (bool, string) {
		_, err := p.c.Channel(context.Background(), ch)
		return err == nil, fmt.Sprint(err)
	})
}

func rlWaitHistory(t *testing.T, p *proc, ch string, n int) []node.RelayChatMessage {
	t.Helper()
	var h []node.RelayChatMessage
	rlEventually(t, 60*time.Second, fmt.Sprintf("%s has %d messages", p.name, n), func() (bool, string) {
		h = rlHistory(t, p, ch)
		return len(h) >= n, fmt.Sprintf("has %d", len(h))
	})
	return h
}

func rlState(p *proc, ch string) (uint64, string, error) {
	ctx := context.Background()
	c, err := p.c.Channel(ctx, ch)
	if err != nil {
		return 0, "", err
	}
	ms, err := p.c.Members(ctx, ch)
	if err != nil {
		return 0, "", err
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, named(m.UserID))
	}
	sort.Strings(ids)
	return c.Epoch, strings.Join(ids, ","), nil
}

// rlWaitConverged waits until every node is in the same epoch with the
// same members, want.
func rlWaitConverged(t *testing.T, ch, want string, ps ...*proc) uint64 {
	t.Helper()
	var ep uint64
	rlEventually(t, 30*time.Second, "nodes converge on "+want, func() (bool, string) {
		var states []string
		ok := true
		for i, p := range ps {
			e, ms, err := rlState(p, ch)
			states = append(states, fmt.Sprintf("%s: epoch %d [%s] %v", p.name, e, ms, err))
			if err != nil || ms != want || (i > 0 && e != ep) {
				ok = false
			}
			if i == 0 {
				ep = e
			}
		}
		return ok, strings.Join(states, "; ")
	})
	return ep
}

func rlTexts(h []node.RelayChatMessage) []string {
	var out []string
	for _, m := range h {
		out = append(out, named(m.Sender.UserID)+":"+m.Text)
	}
	sort.Strings(out)
	return out
}

// TestRelayThreeNodes: the whole flow through the relay, nobody carrying
// bytes: invites by user id, messages in everyone's history, a removal,
// and the removed member's history stops.
func TestRelayThreeNodes(t *testing.T) {
	u, _ := rlStartRelay(t)
	alice, bob, carol := rlNode(t, "alice", u), rlNode(t, "bob", u), rlNode(t, "carol", u)
	ch := rlCreate(t, alice, "general")
	inv := rlInvite(t, alice, ch, bob)
	if len(inv.UserIDs) != 1 || named(inv.UserIDs[0]) != "bob" || inv.Epoch != 1 {
		t.Fatalf("invite bob: %+v", inv)
	}
	rlWaitJoined(t, bob, ch)
	rlInvite(t, alice, ch, carol)
	rlWaitJoined(t, carol, ch)
	rlWaitConverged(t, ch, "alice,bob,carol", alice, bob, carol)
	all := []*proc{alice, bob, carol}
	for _, p := range all {
		rlSend(t, p, ch, "hello from "+p.name)
	}
	want := "[alice:hello from alice bob:hello from bob carol:hello from carol]"
	for _, p := range all {
		if got := fmt.Sprint(rlTexts(rlWaitHistory(t, p, ch, 3))); got != want {
			t.Fatalf("%s history %s, want %s", p.name, got, want)
		}
	}
	var rm node.CommitResponse
	if err := alice.c.Do(context.Background(), "DELETE", rlPath(ch, "/members/"+carol.uid), nil, &rm); err != nil {
		t.Fatal(err)
	}
	rlWaitConverged(t, ch, "alice,bob", alice, bob)
	rlEventually(t, 20*time.Second, "carol learns she was removed", func() (bool, string) {
		_, err := carol.c.Members(context.Background(), ch)
		return err != nil, fmt.Sprint(err)
	})
	rlSend(t, alice, ch, "for bob only")
	rlWaitHistory(t, bob, ch, 4)
	time.Sleep(300 * time.Millisecond)
	if h := rlHistory(t, carol, ch); len(h) != 3 {
		t.Fatalf("carol's history after removal: %v", rlTexts(h))
	}
}

// TestRelayConcurrentCommits: two nodes commit at once, again and again;
// the relay takes one per epoch, the loser processes the winner and
// retries, and everyone ends in the same epoch with both changes applied.
func TestRelayConcurrentCommits(t *testing.T) {
	u, fake := rlStartRelay(t)
	alice, bob, carol, dave := rlNode(t, "alice", u), rlNode(t, "bob", u), rlNode(t, "carol", u), rlNode(t, "dave", u)
	ch := rlCreate(t, alice, "race")
	rlInvite(t, alice, ch, bob)
	rlInvite(t, alice, ch, carol)
	rlWaitJoined(t, bob, ch)
	rlWaitJoined(t, carol, ch)
	ep0 := rlWaitConverged(t, ch, "alice,bob,carol", alice, bob, carol)
	ctx := context.Background()

	if err := dave.c.Do(ctx, "PUT", "/v1/contacts/"+url.PathEscape(alice.uid), map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	// Round 1: alice invites dave and removes carol (in that order) while
	// bob updates his leaf (a member's own change, whatever the roles).
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		errs[0] = alice.c.Do(ctx, "POST", rlPath(ch, "/invites"), map[string]string{"user_id": dave.uid}, nil)
		if errs[0] == nil {
			errs[0] = alice.c.Do(ctx, "DELETE", rlPath(ch, "/members/"+carol.uid), nil, nil)
		}
	}()
	go func() { defer wg.Done(); errs[1] = bob.c.Do(ctx, "POST", rlPath(ch, "/update"), nil, nil) }()
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("concurrent commits: %v; alice:\n%s\nbob:\n%s", errs, alice.stderr, bob.stderr)
	}
	rlWaitJoined(t, dave, ch)
	ep := rlWaitConverged(t, ch, "alice,bob,dave", alice, bob, dave)
	if ep != ep0+3 {
		t.Fatalf("epoch %d after three commits from %d", ep, ep0)
	}
	// Rounds 2-4: three members update at once.
	for round := 0; round < 3; round++ {
		errs := make([]error, 3)
		for i, p := range []*proc{alice, bob, dave} {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = p.c.Do(ctx, "POST", rlPath(ch, "/update"), nil, nil) }()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	if got := rlWaitConverged(t, ch, "alice,bob,dave", alice, bob, dave); got != ep+9 {
		t.Fatalf("epoch %d after nine updates from %d", got, ep)
	}
	for _, p := range []*proc{alice, bob, dave} {
		rlSend(t, p, ch, "after the race from "+p.name)
	}
	for _, p := range []*proc{alice, bob, dave} {
		rlWaitHistory(t, p, ch, 3)
	}
	if fake != nil {
		t.Logf("commit conflicts at the relay: %d", fake.conflictCount())
	}
}

// TestRelayOfflineCatchUp: a node offline while a hundred messages and two
// commits go by catches up from its cursor, in order.
func TestRelayOfflineCatchUp(t *testing.T) {
	u, _ := rlStartRelay(t)
	alice, bob, carol := rlNode(t, "alice", u), rlNode(t, "bob", u), rlNode(t, "carol", u)
	ch := rlCreate(t, alice, "catchup")
	rlInvite(t, alice, ch, bob)
	rlInvite(t, alice, ch, carol)
	rlWaitJoined(t, bob, ch)
	rlWaitJoined(t, carol, ch)
	rlWaitConverged(t, ch, "alice,bob,carol", alice, bob, carol)
	rlSend(t, carol, ch, "going offline")
	rlWaitHistory(t, alice, ch, 1)
	carol.stop()

	ctx := context.Background()
	for i := 0; i < 100; i++ {
		p := alice
		if i%2 == 1 {
			p = bob
		}
		rlSend(t, p, ch, fmt.Sprintf("m%03d", i))
		switch i {
		case 40:
			if err := bob.c.Do(ctx, "POST", rlPath(ch, "/update"), nil, nil); err != nil {
				t.Fatal(err)
			}
		case 70:
			if err := alice.c.Do(ctx, "POST", rlPath(ch, "/update"), nil, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	carol.start()
	h := rlWaitHistory(t, carol, ch, 101)
	ep := rlWaitConverged(t, ch, "alice,bob,carol", alice, bob, carol)
	if len(h) != 101 {
		t.Fatalf("carol has %d messages, want 101", len(h))
	}
	// In order: alice's and bob's messages interleave as sent.
	for i, m := range h[1:] {
		if want := fmt.Sprintf("m%03d", i); m.Text != want {
			t.Fatalf("carol's message %d is %q, want %q", i, m.Text, want)
		}
	}
	rlSend(t, carol, ch, "back")
	rlWaitHistory(t, alice, ch, 102)
	t.Logf("carol caught up to epoch %d", ep)
}

// rlRelayProc starts `spacepanda relay` (SQLite in a temporary directory,
// or extra flags such as --postgres URL) and returns its URL; "" when
// SPACEPANDA_TEST_FAKE_RELAY is set.
func rlRelayProc(t *testing.T, extra []string) string {
	t.Helper()
	if os.Getenv("SPACEPANDA_TEST_FAKE_RELAY") != "" {
		return ""
	}
	return startRelayProcWith(t, extra).url()
}

// TestHistoryShowsSenders: a history page names each sender as the
// reader's contacts and the channel's group know them: a verified contact
// is shown verified with the name of its leaf, an unverified contact by
// name only, a stranger by user id alone.
func TestHistoryShowsSenders(t *testing.T) {
	u, _ := rlStartRelay(t)
	alice, bob, carol := rlNode(t, "alice", u), rlNode(t, "bob", u), rlNode(t, "carol", u)
	ch := rlCreate(t, alice, "general")
	rlInvite(t, alice, ch, bob) // bob: alice is a contact
	rlWaitJoined(t, bob, ch)
	rlInvite(t, alice, ch, carol)
	rlWaitJoined(t, carol, ch)
	rlWaitConverged(t, ch, "alice,bob,carol", alice, bob, carol)
	yes := true
	if err := bob.c.Do(context.Background(), "PUT", "/v1/contacts/"+url.PathEscape(alice.uid), map[string]any{"verified": yes}, nil); err != nil {
		t.Fatal(err)
	}
	rlSend(t, alice, ch, "from alice")
	rlSend(t, carol, ch, "from carol")
	check := func(want map[string]node.SenderInfo) {
		t.Helper()
		for _, m := range rlWaitHistory(t, bob, ch, 2) {
			w, ok := want[m.Sender.UserID]
			if !ok {
				t.Fatalf("unexpected sender %+v", m.Sender)
			}
			w.UserID = m.Sender.UserID
			if m.Sender != w {
				t.Errorf("%q: sender %+v, want %+v", m.Text, m.Sender, w)
			}
		}
	}
	check(map[string]node.SenderInfo{alice.uid: {DisplayName: "alice", Verified: true}, carol.uid: {}})
	if err := bob.c.Do(context.Background(), "PUT", "/v1/contacts/"+url.PathEscape(carol.uid), map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	check(map[string]node.SenderInfo{alice.uid: {DisplayName: "alice", Verified: true}, carol.uid: {DisplayName: "carol"}})
}
