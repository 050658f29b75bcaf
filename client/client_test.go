package client_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/client"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
)

var ctx = context.Background()

// member is a client on the fake relay.
type member struct {
	*client.Client
	uid string
}

func open(t *testing.T, f *fakeRelay, name string, lim client.Limits) *member {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	// The relay adapter needs the user id, known once the identity exists.
	c0, err := client.Open(ctx, client.Config{DataDir: dir, DisplayName: name})
	if err != nil {
		t.Fatal(err)
	}
	uid := c0.Manager().Identity()
	c0.Close()
	c, err := client.Open(ctx, client.Config{DataDir: dir, DisplayName: name, Relay: f.conn(uid), Limits: lim,
		Wait: 2 * time.Second, Retry: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &member{Client: c, uid: uid}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 60s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func texts(t *testing.T, m *member, ch string) []string {
	t.Helper()
	h, err := m.History(ctx, ch, 0, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range h {
		out = append(out, string(x.Body))
	}
	return out
}

// chat is texts without the engine's notes.
func chat(t *testing.T, m *member, ch string) []string {
	t.Helper()
	h, err := m.History(ctx, ch, 0, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range h {
		if x.Sender != client.SystemSender {
			out = append(out, string(x.Body))
		}
	}
	return out
}

// pair is alice's channel with bob joined (bob knows alice).
func pair(t *testing.T, f *fakeRelay, lim client.Limits) (alice, bob *member, ch string, gid []byte) {
	t.Helper()
	alice, bob = open(t, f, "alice", client.Limits{}), open(t, f, "bob", lim)
	d, err := alice.CreateChannel(ctx, "general", false, true)
	if err != nil {
		t.Fatal(err)
	}
	invite(t, alice, bob, d.ID)
	return alice, bob, d.ID, d.GroupID
}

func invite(t *testing.T, from, to *member, ch string) {
	t.Helper()
	if _, err := to.PutContact(ctx, from.uid, nil); err != nil {
		t.Fatal(err)
	}
	kp, err := to.Manager().GenerateKeyPackage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := from.Invite(ctx, ch, client.InviteRequest{KeyPackages: [][]byte{kp}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, to.uid+" joins", func() bool {
		st, err := to.State(ctx, ch)
		return err == nil && st.State == client.StateActive
	})
}

// TestJoinerCheckRefusesLookalike: a Welcome whose group does not match
// the relay's public state of that group id is refused and reported; the
// same Welcome with a relay that cannot tell is joined.
func TestJoinerCheckRefusesLookalike(t *testing.T) {
	f := newFakeRelay()
	f.epochState = func(gid []byte, epoch uint64) (*client.EpochState, error) {
		return &client.EpochState{Epoch: epoch, TreeHash: []byte("another tree"), ConfirmedTranscriptHash: []byte("x")}, nil
	}
	alice, bob := open(t, f, "alice", client.Limits{}), open(t, f, "bob", client.Limits{})
	_, events, cancel := bob.Subscribe(0)
	defer cancel()
	d, err := alice.CreateChannel(ctx, "look-alike", false, true)
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := bob.Manager().GenerateKeyPackage(ctx)
	res, err := alice.Invite(ctx, d.ID, client.InviteRequest{KeyPackages: [][]byte{kp}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bob.JoinWelcome(ctx, res.Welcome, res.RatchetTree)
	if !errors.Is(err, client.ErrLookalikeGroup) {
		t.Fatalf("join of a look-alike group: %v", err)
	}
	if _, err := bob.Manager().Channel(ctx, d.ID); !errors.Is(err, channel.ErrChannelNotFound) {
		t.Fatalf("refused channel kept: %v", err)
	}
	reported := false
	for !reported {
		select {
		case ev := <-events:
			reported = ev.Kind == client.EventDelivery && ev.Data["status"] == "refused"
		case <-time.After(30 * time.Second):
			t.Fatal("refusal not reported")
		}
	}
	// A relay that matches (or cannot tell yet) lets the join through.
	f.mu.Lock()
	f.epochState = nil
	f.mu.Unlock()
	d, err = alice.CreateChannel(ctx, "real", false, true)
	if err != nil {
		t.Fatal(err)
	}
	kp, _ = bob.Manager().GenerateKeyPackage(ctx)
	res, err = alice.Invite(ctx, d.ID, client.InviteRequest{KeyPackages: [][]byte{kp}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinWelcome(ctx, res.Welcome, res.RatchetTree); err != nil {
		t.Fatal(err)
	}
}

// TestHeldMessagesBounded: junk for a far epoch is held within the bounds,
// dropped with a report beyond them, and does not stop later messages.
func TestHeldMessagesBounded(t *testing.T) {
	f := newFakeRelay()
	alice, bob, ch, gid := pair(t, f, client.Limits{HeldCount: 16, HeldBytes: 64 << 10})
	for i := 0; i < 400; i++ {
		f.inject(gid, alice.uid+"x", relayclient.KindApplication, 1<<40, make([]byte, 512))
	}
	if _, err := alice.Send(ctx, ch, "after the junk", ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob reads past the junk", func() bool {
		tx := texts(t, bob, ch)
		return len(tx) == 1 && tx[0] == "after the junk"
	})
	if st := bob.Stats(); st.HeldDropped < 400-16 {
		t.Fatalf("dropped %d of 400 held, bound 16", st.HeldDropped)
	}
	for _, p := range bob.Progress() {
		if p.Held > 16 {
			t.Fatalf("held %d over the bound", p.Held)
		}
	}
}

// TestUnprocessableEntrySkipped: an entry that does not process is
// reported once and skipped; the next ones are read.
func TestUnprocessableEntrySkipped(t *testing.T) {
	f := newFakeRelay()
	alice, bob, ch, gid := pair(t, f, client.Limits{})
	ep, _ := bob.Manager().Epoch(ctx, ch)
	f.inject(gid, alice.uid, relayclient.KindApplication, ep, []byte("garbage, not an MLSMessage"))
	f.inject(gid, alice.uid, relayclient.KindProposal, ep, []byte("garbage proposal"))
	// (A garbage commit makes both members rejoin by external commit:
	// TestRecoveryByExternalCommit. Right after two such rejoins a message
	// was seen lost in about one run in six — a known bug, see the note.)
	if _, err := alice.Send(ctx, ch, "still here", ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob reads past the garbage", func() bool { return len(chat(t, bob, ch)) == 1 })
	// The garbage application message is reported in the history, before
	// "still here" (TestUnreadableNoteInLogOrder). The skipped proposal
	// is counted only after the note, and the entries may come in more
	// than one page: wait for the count, then check.
	eventually(t, "bob reports the garbage", func() bool { return bob.Stats().EntriesSkipped >= 2 })
	if n := unreadNotes(t, bob, ch); len(n) != 1 {
		t.Fatalf("notes %q", n)
	}
	if n := bob.Stats().EntriesSkipped; n != 2 {
		t.Fatalf("skipped %d entries, want 2", n)
	}
}

// TestUnreadableNoteInLogOrder: the history note of an entry that could
// not be read stands where the entry stood in the log, before the
// message after it in the same page (it used to land after the page's
// later messages: they were stored as the page was received, the note as
// its outcomes were gone through).
func TestUnreadableNoteInLogOrder(t *testing.T) {
	f := newFakeRelay()
	alice, bob, ch, gid := pair(t, f, client.Limits{})
	ep, _ := bob.Manager().Epoch(ctx, ch)
	// Alice's two messages and a garbage entry between them reach the
	// log while nobody can read it, so that bob reads the three in one
	// page. (Alice's outbox posts her two again when the relay is back:
	// bob passes those copies over as read.)
	f.setDown(true)
	var cts [][]byte
	for _, text := range []string{"before", "after"} {
		res, err := alice.Send(ctx, ch, text, "")
		if err != nil {
			t.Fatal(err)
		}
		cts = append(cts, res.Ciphertext)
	}
	f.inject(gid, alice.uid, relayclient.KindApplication, ep, cts[0])
	f.inject(gid, alice.uid, relayclient.KindApplication, ep, []byte("garbage, not an MLSMessage"))
	f.inject(gid, alice.uid, relayclient.KindApplication, ep, cts[1])
	f.setDown(false)
	eventually(t, "bob reads the page and reports the garbage", func() bool {
		return len(chat(t, bob, ch)) == 2 && len(unreadNotes(t, bob, ch)) == 1
	})
	h := texts(t, bob, ch)
	if len(h) != 3 || h[0] != "before" || !strings.Contains(h[1], "could not be read") || h[2] != "after" {
		t.Fatalf("bob's history %q: want before, the note, after", h)
	}
	eventually(t, "alice's outbox drains", func() bool { return alice.OutboxDepth(ctx) == 0 })
	if h := texts(t, bob, ch); len(h) != 3 {
		t.Fatalf("bob's history after alice's copies %q", h)
	}
}

// TestNewChannelNotRemovedBeforeRegistration: a follower that starts
// before the channel's group has reached the relay (here: the engine
// restarted with the registration still queued) is refused by a relay
// that does not know the group. The channel stays active, is followed
// once the registration lands, and works; it used to be marked removed
// at the first 403 (seen as a flaky setup in the tests, about 1 run in 10
// with -cpu 1,2,4: the engine's start raced a channel created at once).
func TestNewChannelNotRemovedBeforeRegistration(t *testing.T) {
	f := newFakeRelay()
	dir := filepath.Join(t.TempDir(), "alice")
	alice := openDir(t, f, dir, "alice")
	f.setHoldGroups(true)
	d, err := alice.CreateChannel(ctx, "general", false, true)
	if err != nil {
		t.Fatal(err)
	}
	alice.Close()
	alice = openDir(t, f, dir, "alice") // follows every active channel at start
	eventually(t, "the follower is refused by the relay", func() bool { return f.forbidden403s() > 0 })
	if st, err := alice.State(ctx, d.ID); err != nil || st.State != client.StateActive {
		t.Fatalf("after a 403 for a group not yet registered: %+v %v", st, err)
	}
	f.setHoldGroups(false)
	eventually(t, "the registration lands", func() bool { return alice.OutboxDepth(ctx) == 0 })
	bob := open(t, f, "bob", client.Limits{})
	invite(t, alice, bob, d.ID)
	if _, err := alice.Send(ctx, d.ID, "hello", ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob reads it", func() bool { return len(chat(t, bob, d.ID)) == 1 })
	if st, err := alice.State(ctx, d.ID); err != nil || st.State != client.StateActive {
		t.Fatalf("at the end: %+v %v", st, err)
	}
}

// TestOutboxWhileRelayDown: a send while the relay is down is queued
// (durably) and delivered when it returns.
func TestOutboxWhileRelayDown(t *testing.T) {
	f := newFakeRelay()
	alice, bob, ch, _ := pair(t, f, client.Limits{})
	f.setDown(true)
	res, err := alice.Send(ctx, ch, "while down", "")
	if err != nil || res.Status != "queued" {
		t.Fatalf("send while down: %+v %v", res, err)
	}
	if n := alice.OutboxDepth(ctx); n != 1 {
		t.Fatalf("outbox depth %d, want 1", n)
	}
	if q := alice.Queued(ctx, ch); !q[res.MessageID] {
		t.Fatalf("message not listed as queued: %v", q)
	}
	ep0, _ := alice.Manager().Epoch(ctx, ch)
	up, err := alice.SelfUpdate(ctx, ch)
	if err != nil || up.Status != "queued" || up.ID == "" {
		t.Fatalf("commit while down: %+v %v", up, err)
	}
	f.setDown(false)
	eventually(t, "bob gets the queued message", func() bool {
		tx := texts(t, bob, ch)
		return len(tx) == 1 && tx[0] == "while down"
	})
	eventually(t, "alice's outbox drains", func() bool { return alice.OutboxDepth(ctx) == 0 })
	eventually(t, "the queued update reaches bob", func() bool {
		a, _ := alice.Manager().Epoch(ctx, ch)
		b, _ := bob.Manager().Epoch(ctx, ch)
		return a == ep0+1 && b == ep0+1
	})
	eventually(t, "the update's status is sent", func() bool {
		cs, err := alice.Changes(ctx, ch)
		return err == nil && len(cs) > 0 && cs[len(cs)-1].ID == up.ID && cs[len(cs)-1].Status == client.ChangeSent && cs[len(cs)-1].Epoch == ep0+1
	})
}

// TestRemovedThenReinvited: a removed member's channel is "removed" (with
// who did it), refuses sends, and is active again after a new invite.
func TestRemovedThenReinvited(t *testing.T) {
	f := newFakeRelay()
	alice, bob, ch, _ := pair(t, f, client.Limits{})
	if _, err := alice.Remove(ctx, ch, bob.uid); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob removed", func() bool {
		st, _ := bob.State(ctx, ch)
		return st.State == client.StateRemoved && st.RemovedBy == alice.uid
	})
	if _, err := bob.Send(ctx, ch, "x", ""); !errors.Is(err, client.ErrNotActive) {
		t.Fatalf("send when removed: %v", err)
	}
	invite(t, alice, bob, ch)
	if _, err := alice.Send(ctx, ch, "welcome back", ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob reads after re-invite", func() bool {
		tx := texts(t, bob, ch)
		return len(tx) > 0 && tx[len(tx)-1] == "welcome back"
	})
}

// TestConcurrentRoleAndUpdate: commits from two members race; the loser
// processes the winner and retries; both end in the same epoch with the
// role applied and seen by the other.
func TestConcurrentRoleAndUpdate(t *testing.T) {
	f := newFakeRelay()
	alice, bob, ch, _ := pair(t, f, client.Limits{})
	errs := make(chan error, 2)
	go func() { _, err := alice.SetRole(ctx, ch, bob.uid, channel.RoleAdmin); errs <- err }()
	go func() { _, err := bob.SelfUpdate(ctx, ch); errs <- err }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "same epoch and role", func() bool {
		a, _ := alice.Manager().Epoch(ctx, ch)
		b, _ := bob.Manager().Epoch(ctx, ch)
		r, _ := bob.Manager().Role(ctx, ch, bob.uid)
		return a == b && r == channel.RoleAdmin
	})
	// The same role again commits nothing.
	ep, _ := alice.Manager().Epoch(ctx, ch)
	res, err := alice.SetRole(ctx, ch, bob.uid, channel.RoleAdmin)
	if err != nil || res.Committed {
		t.Fatalf("same role: %+v %v", res, err)
	}
	if e, _ := alice.Manager().Epoch(ctx, ch); e != ep {
		t.Fatalf("same role moved the epoch %d -> %d", ep, e)
	}
}

// TestStrangerWelcomeIsInvitation: a Welcome from a user we share no
// channel with is held until accepted; declining drops it.
func TestStrangerWelcomeIsInvitation(t *testing.T) {
	f := newFakeRelay()
	alice, bob := open(t, f, "alice", client.Limits{}), open(t, f, "bob", client.Limits{})
	d, _ := alice.CreateChannel(ctx, "from a stranger", false, true)
	kp, _ := bob.Manager().GenerateKeyPackage(ctx)
	if _, err := alice.Invite(ctx, d.ID, client.InviteRequest{KeyPackages: [][]byte{kp}}); err != nil {
		t.Fatal(err)
	}
	var invs []client.Invitation
	eventually(t, "an invitation", func() bool { invs, _ = bob.Invitations(ctx); return len(invs) == 1 })
	if invs[0].From != alice.uid {
		t.Fatalf("invitation from %q", invs[0].From)
	}
	if _, err := bob.Manager().Channel(ctx, d.ID); err == nil {
		t.Fatal("joined without accepting")
	}
	got, err := bob.AcceptInvitation(ctx, invs[0].ID)
	if err != nil || got.ID != d.ID {
		t.Fatalf("accept: %v", err)
	}
	if invs, _ = bob.Invitations(ctx); len(invs) != 0 {
		t.Fatalf("invitation kept after accepting: %v", invs)
	}
	if err := bob.DeclineInvitation(ctx, "nope"); !errors.Is(err, client.ErrInvitationNotFound) {
		t.Fatalf("decline unknown: %v", err)
	}
}

// TestRecoveryByExternalCommit: a member that cannot process a commit (it
// reaches it damaged) rejoins from the relay's latest GroupInfo by
// external commit; both members end in the same epoch, messages flow
// again, and the history says so.
func TestRecoveryByExternalCommit(t *testing.T) {
	f := newFakeRelay()
	alice, bob, ch, gid := pair(t, f, client.Limits{})
	f.corruptNext(gid, bob.uid)
	if _, err := alice.SelfUpdate(ctx, ch); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob recovers", func() bool { return bob.Stats().Recoveries == 1 })
	eventually(t, "same epoch", func() bool {
		a, _ := alice.Manager().Epoch(ctx, ch)
		b, _ := bob.Manager().Epoch(ctx, ch)
		return a == b
	})
	if _, err := alice.Send(ctx, ch, "after the fork that was not", ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob reads", func() bool {
		tx := texts(t, bob, ch)
		return len(tx) == 2 && tx[1] == "after the fork that was not"
	})
	h, _ := bob.History(ctx, ch, 0, 0, 10)
	if h[0].Sender != client.SystemSender || !strings.Contains(string(h[0].Body), "rejoined by external commit") {
		t.Fatalf("history %+v", h[0])
	}
	if st, _ := bob.State(ctx, ch); st.Recovered != 1 || st.State != client.StateActive {
		t.Fatalf("state %+v", st)
	}
}
