package client_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/client"
)

// openDir opens name's identity in dir on the fake relay (the caller
// closes it).
func openDir(t *testing.T, f *fakeRelay, dir, name string) *member {
	t.Helper()
	c0, err := client.Open(ctx, client.Config{DataDir: dir, DisplayName: name})
	if err != nil {
		t.Fatal(err)
	}
	uid := c0.Manager().Identity()
	c0.Close()
	c, err := client.Open(ctx, client.Config{DataDir: dir, DisplayName: name, Relay: f.conn(uid),
		Wait: 2 * time.Second, Retry: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return &member{Client: c, uid: uid}
}

// TestWelcomeSurvivesCrashAfterAcceptedCommit: the relay orders alice's
// invite of carol and dies before it answers (or just after, before the
// Welcome is posted); alice's engine stops there (nothing else runs: the
// relay is down). Restarted, alice finds her commit ordered (the epoch it
// starts is the relay's) and posts the Welcome stored before the commit
// left: carol joins, in the same epoch as alice and bob, and reads what
// follows.
func TestWelcomeSurvivesCrashAfterAcceptedCommit(t *testing.T) {
	t.Run("answer lost", func(t *testing.T) { testWelcomeSurvives(t, true) })
	t.Run("down before the Welcome", func(t *testing.T) { testWelcomeSurvives(t, false) })
}

func testWelcomeSurvives(t *testing.T, loseAnswer bool) {
	f := newFakeRelay()
	dir := filepath.Join(t.TempDir(), "alice")
	alice := openDir(t, f, dir, "alice")
	defer func() { alice.Close() }()
	bob, carol := open(t, f, "bob", client.Limits{}), open(t, f, "carol", client.Limits{})
	d, err := alice.CreateChannel(ctx, "general", false, true)
	if err != nil {
		t.Fatal(err)
	}
	ch := d.ID
	invite(t, alice, bob, ch)
	if _, err := carol.PutContact(ctx, alice.uid, nil); err != nil {
		t.Fatal(err)
	}
	kp, err := carol.Manager().GenerateKeyPackage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ep0, _ := alice.Manager().Epoch(ctx, ch)

	f.mu.Lock()
	f.loseAnswer, f.downAfterCommit = loseAnswer, !loseAnswer
	f.mu.Unlock()
	res, err := alice.Invite(ctx, ch, client.InviteRequest{KeyPackages: [][]byte{kp}})
	// The answer lost, alice cannot tell: queued. Otherwise the commit
	// is in and its Welcome waits: sent, or queued if alice saw the
	// relay go down first.
	if err != nil || res.Status != "queued" && (loseAnswer || res.Status != "sent") {
		t.Fatalf("invite: %v %v", res.Status, err)
	}
	f.mu.Lock()
	ordered := f.groups[string(d.GroupID)].epoch
	f.mu.Unlock()
	if ordered != ep0+1 {
		t.Fatalf("the relay is in epoch %d, want %d", ordered, ep0+1)
	}
	alice.Close() // the crash: nothing more happened while the relay was down

	f.setDown(false)
	alice = openDir(t, f, dir, "alice")
	eventually(t, "carol joins from the stored Welcome", func() bool {
		st, err := carol.State(ctx, ch)
		return err == nil && st.State == client.StateActive
	})
	eventually(t, "everyone in the invite's epoch", func() bool {
		a, _ := alice.Manager().Epoch(ctx, ch)
		b, _ := bob.Manager().Epoch(ctx, ch)
		c, _ := carol.Manager().Epoch(ctx, ch)
		return a == ep0+1 && b == a && c == a
	})
	eventually(t, "alice's outbox drains", func() bool { return alice.OutboxDepth(ctx) == 0 })
	if _, err := alice.Send(ctx, ch, "hello carol", ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "carol reads it", func() bool {
		tx := texts(t, carol, ch)
		return len(tx) == 1 && tx[0] == "hello carol"
	})
	cs, err := alice.Changes(ctx, ch)
	if err != nil || len(cs) != 2 || cs[1].ID != res.ID || cs[1].Status != client.ChangeSent || cs[1].Epoch != ep0+1 {
		t.Fatalf("alice's changes: %+v %v", cs, err)
	}
}

// TestImpossibleChangeFails: with the relay down alice queues bob's
// removal, then a role change for bob; delivered in order, the role
// change finds no bob and ends as failed with the reason (in Changes and
// in a delivery event) instead of being retried; later changes go on.
func TestImpossibleChangeFails(t *testing.T) {
	f := newFakeRelay()
	alice, bob, ch, _ := pair(t, f, client.Limits{})
	ep0, _ := alice.Manager().Epoch(ctx, ch)
	f.setDown(true)
	// What our role does not allow is refused at once, relay or not.
	if _, err := bob.Remove(ctx, ch, alice.uid); !errors.Is(err, channel.ErrPermission) {
		t.Fatalf("a member removes the admin while down: %v", err)
	}
	rm, err := alice.Remove(ctx, ch, bob.uid)
	if err != nil || rm.Status != "queued" {
		t.Fatalf("remove while down: %+v %v", rm, err)
	}
	role, err := alice.SetRole(ctx, ch, bob.uid, channel.RoleAdmin)
	if err != nil || role.Status != "queued" {
		t.Fatalf("role while down: %+v %v", role, err)
	}
	up, err := alice.SelfUpdate(ctx, ch)
	if err != nil || up.Status != "queued" {
		t.Fatalf("update while down: %+v %v", up, err)
	}
	f.setDown(false)
	var cs []client.ChangeStatus
	eventually(t, "alice's changes done", func() bool {
		cs, err = alice.Changes(ctx, ch)
		done := err == nil
		for _, c := range cs {
			done = done && c.Status != client.ChangeQueued
		}
		return done
	})
	eventually(t, "alice's outbox drains", func() bool { return alice.OutboxDepth(ctx) == 0 })
	if len(cs) != 4 { // bob's invite, and the three
		t.Fatalf("changes: %+v %v", cs, err)
	}
	byID := map[string]client.ChangeStatus{}
	for _, c := range cs {
		byID[c.ID] = c
	}
	if c := byID[rm.ID]; c.Status != client.ChangeSent || c.Epoch != ep0+1 {
		t.Fatalf("removal: %+v", c)
	}
	if c := byID[role.ID]; c.Status != client.ChangeFailed || c.Error == "" || c.Op != "role" {
		t.Fatalf("role change: %+v", c)
	}
	if c := byID[up.ID]; c.Status != client.ChangeSent || c.Epoch != ep0+2 {
		t.Fatalf("update after the failed change: %+v", c)
	}
	past, _, cancel := alice.Subscribe(0)
	cancel()
	failed := false
	for _, ev := range past {
		if ev.Kind == client.EventDelivery && ev.Data["change_id"] == role.ID && ev.Data["status"] == client.ChangeFailed {
			failed = ev.Data["error"] != ""
		}
	}
	if !failed {
		t.Fatal("no delivery event for the failed change")
	}
	eventually(t, "bob removed", func() bool {
		st, _ := bob.State(ctx, ch)
		return st.State == client.StateRemoved
	})
	// With the relay up, an impossible change answers its error at once.
	if _, err := alice.SetRole(ctx, ch, bob.uid, channel.RoleAdmin); !errors.Is(err, channel.ErrMemberNotFound) {
		t.Fatalf("role of a non-member with the relay up: %v", err)
	}
}

// TestQueuedChangeOfActorWhoLostRole: alice and bob are admins; with the
// relay down alice queues bob's demotion and bob queues alice's. When the
// relay returns one is ordered first, and the other's author is no
// longer an admin: that change ends failed (not permitted), once, and
// both members agree on the roles.
func TestQueuedChangeOfActorWhoLostRole(t *testing.T) {
	f := newFakeRelay()
	alice, bob, ch, _ := pair(t, f, client.Limits{})
	if _, err := alice.SetRole(ctx, ch, bob.uid, channel.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob sees he is admin", func() bool {
		r, err := bob.Manager().Role(ctx, ch, bob.uid)
		return err == nil && r == channel.RoleAdmin
	})
	f.setDown(true)
	ra, err := alice.SetRole(ctx, ch, bob.uid, channel.RoleMember)
	if err != nil || ra.Status != "queued" {
		t.Fatalf("alice demotes bob while down: %+v %v", ra, err)
	}
	rb, err := bob.SetRole(ctx, ch, alice.uid, channel.RoleMember)
	if err != nil || rb.Status != "queued" {
		t.Fatalf("bob demotes alice while down: %+v %v", rb, err)
	}
	f.setDown(false)
	final := func(m *member, id string) client.ChangeStatus {
		var got client.ChangeStatus
		eventually(t, "the change is done", func() bool {
			cs, err := m.Changes(ctx, ch)
			for _, c := range cs {
				if c.ID == id {
					got = c
				}
			}
			return err == nil && got.Status != "" && got.Status != client.ChangeQueued
		})
		return got
	}
	a, b := final(alice, ra.ID), final(bob, rb.ID)
	if (a.Status == client.ChangeSent) == (b.Status == client.ChangeSent) {
		t.Fatalf("want exactly one demotion: alice's %+v, bob's %+v", a, b)
	}
	lost := a
	if a.Status == client.ChangeSent {
		lost = b
	}
	if lost.Status != client.ChangeFailed || !strings.Contains(lost.Error, "not permitted") {
		t.Fatalf("the loser's change: %+v", lost)
	}
	eventually(t, "same roles", func() bool {
		ea, _ := alice.Manager().Epoch(ctx, ch)
		eb, _ := bob.Manager().Epoch(ctx, ch)
		ra, _ := alice.Manager().Roles(ctx, ch)
		rb, _ := bob.Manager().Roles(ctx, ch)
		return ea == eb && fmt.Sprint(ra) == fmt.Sprint(rb)
	})
}
