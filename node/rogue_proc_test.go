package node_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
	"github.com/spacepanda/spacepanda/provider/providertest"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
)

// relayRogue is a hostile member against the real relay: a device with a
// real certificate, logged in, whose engine sends what a modified client
// would (providertest.Rogue), reading and posting through relay/client as
// a node does.
type relayRogue struct {
	*providertest.Rogue
	t      *testing.T
	rc     *relayclient.Client
	gid    []byte
	cursor uint64
}

func newRelayRogue(t *testing.T, relayURL string) *relayRogue {
	t.Helper()
	r := providertest.NewRogue(t, suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, channel.RolesCapabilities())
	r.Public = true // the relay takes handshakes as PublicMessage only
	cert, err := r.Cert.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	rr := &relayRogue{Rogue: r, t: t, rc: relayclient.New(relayURL, relayclient.Identity{Certificate: cert, Signer: r.Signer}, relayclient.Options{})}
	ctx := context.Background()
	if err := rr.rc.Login(ctx); err != nil {
		t.Fatalf("rogue login: %v", err)
	}
	if _, err := rr.rc.PublishKeyPackages(ctx, [][]byte{r.OwnKeyPackage(t)}, r.OwnKeyPackage(t)); err != nil {
		t.Fatalf("rogue publishes key packages: %v", err)
	}
	return rr
}

func (r *relayRogue) uid() string { return string(r.UserID()) }

// join waits for the Welcome to channel ch, joins, and catches up on the
// log.
func (r *relayRogue) join(ch string) {
	t := r.t
	t.Helper()
	ctx := context.Background()
	rlEventually(t, 30*time.Second, "the rogue's Welcome", func() (bool, string) {
		ws, err := r.rc.Welcomes(ctx, time.Second)
		if err != nil {
			return false, err.Error()
		}
		for _, w := range ws {
			if hex.EncodeToString(w.GroupID) == ch {
				r.Join(t, w.Welcome, w.RatchetTree)
				r.gid = w.GroupID
				return true, ""
			}
		}
		return false, "no Welcome"
	})
	r.catchUp()
}

// catchUp processes the commits of its epoch in the log.
func (r *relayRogue) catchUp() {
	t := r.t
	t.Helper()
	for {
		es, next, err := r.rc.Messages(context.Background(), r.gid, relayclient.Page{After: r.cursor})
		if err != nil {
			t.Fatalf("rogue reads the log: %v", err)
		}
		for _, e := range es {
			if e.Kind == relayclient.KindCommit && e.Epoch == r.Group.Epoch() {
				r.Process(t, e.Message)
			}
		}
		if len(es) == 0 {
			return
		}
		r.cursor = next
	}
}

// postCommit posts a commit it made, with the GroupInfo of its new epoch.
func (r *relayRogue) postCommit(commit []byte) error {
	r.t.Helper()
	gi, err := r.Group.GroupInfo(true)
	if err != nil {
		r.t.Fatal(err)
	}
	m, err := mls.NewMessage(gi)
	if err != nil {
		r.t.Fatal(err)
	}
	b, err := wire.Marshal(m)
	if err != nil {
		r.t.Fatal(err)
	}
	_, err = r.rc.PostCommit(context.Background(), r.gid, commit, b)
	return err
}

// TestRelayUnprocessableCommit (issue 13.6): a member with valid keys
// posts a commit the relay can verify — signature, sender, tree, GroupInfo
// — but whose membership tag, which only members can check, is wrong, so
// no honest member can process it. Every honest node skips it with a
// report, rejoins by external commit, and says who caused it; one admin
// action (removing the author) leaves a working channel without it.
func TestRelayUnprocessableCommit(t *testing.T) {
	rp := startRelayProc(t)
	alice, bob := rlNode(t, "alice", rp.url()), rlNode(t, "bob", rp.url())
	ch := rlCreate(t, alice, "sabotaged")
	rlInvite(t, alice, ch, bob)
	rlWaitJoined(t, bob, ch)
	mallory := newRelayRogue(t, rp.url())
	userNames.Store(mallory.uid(), "mallory")
	ctx := context.Background()
	if err := alice.c.Do(ctx, "POST", rlPath(ch, "/invites"), map[string]string{"user_id": mallory.uid()}, nil); err != nil {
		t.Fatalf("alice invites mallory: %v", err)
	}
	mallory.join(ch)
	ep := rlWaitConverged(t, ch, "alice,bob,mallory", alice, bob)
	if mallory.Group.Epoch() != ep {
		t.Fatalf("mallory at epoch %d, the nodes at %d", mallory.Group.Epoch(), ep)
	}
	rlSend(t, alice, ch, "before")
	rlWaitHistory(t, bob, ch, 1)

	bad := mallory.Commit(t, mls.CommitOptions{})
	bad[len(bad)-1] ^= 1 // the membership tag ends the PublicMessage
	if err := mallory.postCommit(bad); err != nil {
		t.Fatalf("the relay refused the sabotage (it cannot check a membership tag): %v", err)
	}

	for _, p := range []*proc{alice, bob} {
		rlEventually(t, 60*time.Second, p.name+" recovers and names the author", func() (bool, string) {
			c := channelOfNode(t, p, ch)
			return c.State == "active" && c.Epoch > ep+1 && c.RecoveryCausedBy == mallory.uid(), fmt.Sprintf("%+v", c)
		})
	}
	// The history says so, on one line, naming the author.
	for _, p := range []*proc{alice, bob} {
		var notes []string
		for _, m := range rlHistory(t, p, ch) {
			if m.Sender.UserID == "system" {
				notes = append(notes, m.Text)
			}
		}
		if len(notes) == 0 || !strings.Contains(notes[len(notes)-1], "a commit by "+mallory.uid()+" could not be processed") || !strings.Contains(notes[len(notes)-1], "invalid membership tag") ||
			strings.Contains(notes[len(notes)-1], "\n") {
			t.Fatalf("%s's history notes %q", p.name, notes)
		}
	}
	if err := alice.c.Do(ctx, "DELETE", rlPath(ch, "/members/", url.PathEscape(mallory.uid())), nil, nil); err != nil {
		t.Fatalf("alice removes the author: %v", err)
	}
	rlWaitConverged(t, ch, "alice,bob", alice, bob)
	rlSend(t, alice, ch, "after")
	rlSend(t, bob, ch, "reply")
	for _, p := range []*proc{alice, bob} {
		rlEventually(t, 30*time.Second, p.name+" reads both", func() (bool, string) {
			tx := rlTexts(rlHistory(t, p, ch))
			has := map[string]bool{}
			for _, s := range tx {
				has[s] = true
			}
			return has["alice:after"] && has["bob:reply"], fmt.Sprint(tx)
		})
	}
}

// TestRelayIdentityAttacks (issue 12): a member with valid keys, through
// the real relay, tries to become the admin: a second leaf claiming the
// admin's user id (with its own certificate, a copy of the admin's, or
// none), and its own leaf swapped to the admin's user id by Update
// proposal or by commit path. Each is refused with 400 and a code before
// it reaches a node; every honest node keeps its epoch, its members and
// the admin as one user with one device, and the channel works.
func TestRelayIdentityAttacks(t *testing.T) {
	rp := startRelayProc(t)
	alice, bob := rlNode(t, "alice", rp.url()), rlNode(t, "bob", rp.url())
	ch := rlCreate(t, alice, "who is who")
	rlInvite(t, alice, ch, bob)
	rlWaitJoined(t, bob, ch)
	mallory := newRelayRogue(t, rp.url())
	userNames.Store(mallory.uid(), "mallory")
	ctx := context.Background()
	if err := alice.c.Do(ctx, "POST", rlPath(ch, "/invites"), map[string]string{"user_id": mallory.uid()}, nil); err != nil {
		t.Fatalf("alice invites mallory: %v", err)
	}
	mallory.join(ch)
	ep := rlWaitConverged(t, ch, "alice,bob,mallory", alice, bob)

	dir, err := mallory.rc.Devices(ctx, identity.UserID(alice.uid))
	if err != nil || len(dir.Devices) != 1 {
		t.Fatalf("alice's directory entry: %+v %v", dir, err)
	}
	aliceCert, err := identity.ParseCertificate(dir.Devices[0].Certificate)
	if err != nil {
		t.Fatal(err)
	}
	impostorKP := func(ext ...tree.Extension) []byte {
		other := providertest.NewRogue(t, mallory.Suite.ID(), channel.RolesCapabilities())
		return other.KeyPackage(t, alice.uid, ext...)
	}
	swapped := func(ln *tree.LeafNode) {
		ln.Credential = tree.NewBasicCredential([]byte(alice.uid))
		for i, e := range ln.Extensions {
			if e.ExtensionType == providertest.Ext(t, aliceCert).ExtensionType {
				ln.Extensions[i] = providertest.Ext(t, aliceCert)
			}
		}
	}
	for _, c := range []struct {
		name string
		post func() error
	}{
		{"impostor leaf, own certificate", func() error {
			return mallory.postCommit(mallory.AddCommit(t, impostorKP(providertest.Ext(t, mallory.Cert))))
		}},
		{"impostor leaf, the admin's certificate", func() error {
			return mallory.postCommit(mallory.AddCommit(t, impostorKP(providertest.Ext(t, aliceCert))))
		}},
		{"impostor leaf, no certificate", func() error { return mallory.postCommit(mallory.AddCommit(t, impostorKP())) }},
		{"identity swap by Update", func() error {
			_, err := mallory.rc.PostMessage(ctx, mallory.gid, relayclient.Post{Message: mallory.ProposeUpdate(t, swapped)})
			return err
		}},
		{"identity swap by commit path", func() error {
			mallory.TamperOwnLeaf(t, [2][]byte{[]byte(mallory.uid()), []byte(alice.uid)})
			return mallory.postCommit(mallory.Commit(t, mls.CommitOptions{}))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			saved := mallory.Group
			defer func() { mallory.Group = saved }()
			var re *relayclient.Error
			err := c.post()
			if !errors.As(err, &re) || re.Status != http.StatusBadRequest || re.Code == "" {
				t.Fatalf("the relay answered %v, want 400 with a code", err)
			}
			t.Logf("refused: %v", err)
		})
	}
	// Nothing moved: same epoch and members everywhere, alice one user
	// with one device, and the channel works.
	if got := rlWaitConverged(t, ch, "alice,bob,mallory", alice, bob); got != ep {
		t.Fatalf("epoch %d after the refusals, %d before", got, ep)
	}
	ms, err := bob.c.Members(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.UserID == alice.uid && (len(m.Devices) != 1 || m.Role != "admin") {
			t.Fatalf("alice in bob's member list: %+v", m)
		}
	}
	rlSend(t, alice, ch, "still me")
	rlEventually(t, 30*time.Second, "bob reads alice", func() (bool, string) {
		tx := rlTexts(rlHistory(t, bob, ch))
		return len(tx) == 1 && tx[0] == "alice:still me", fmt.Sprint(tx)
	})
}

// junk is a PrivateMessage of the group whose framing the relay checks —
// group id, epoch, content type — and whose ciphertext is random: only a
// member can tell it apart from a real message.
func (r *relayRogue) junk(epoch uint64) []byte {
	r.t.Helper()
	b := make([]byte, 64)
	rand.Read(b)
	m, err := mls.NewMessage(&mls.PrivateMessage{GroupID: r.gid, Epoch: epoch, ContentType: mls.ContentTypeApplication,
		AuthenticatedData: []byte{}, EncryptedSenderData: b[:24], Ciphertext: b[24:]})
	if err != nil {
		r.t.Fatal(err)
	}
	out, err := wire.Marshal(m)
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// TestRelayJunkFromMember (issue 13): a member floods the log with 400
// messages no one can read, and tries 400 more for epoch 2^40. The relay
// refuses the far-epoch ones (409 future_epoch); every honest node skips
// the readable-framed junk with a report instead of retrying or holding
// it, reads what follows, and — restarted — does not read the junk again.
func TestRelayJunkFromMember(t *testing.T) {
	rp := startRelayProc(t)
	alice, bob := rlNode(t, "alice", rp.url()), rlNode(t, "bob", rp.url())
	ch := rlCreate(t, alice, "flooded")
	rlInvite(t, alice, ch, bob)
	rlWaitJoined(t, bob, ch)
	mallory := newRelayRogue(t, rp.url())
	userNames.Store(mallory.uid(), "mallory")
	ctx := context.Background()
	if err := alice.c.Do(ctx, "POST", rlPath(ch, "/invites"), map[string]string{"user_id": mallory.uid()}, nil); err != nil {
		t.Fatalf("alice invites mallory: %v", err)
	}
	mallory.join(ch)
	ep := rlWaitConverged(t, ch, "alice,bob,mallory", alice, bob)
	for range 400 {
		_, err := mallory.rc.PostMessage(ctx, mallory.gid, relayclient.Post{Message: mallory.junk(1 << 40)})
		if !errors.Is(err, relayclient.ErrFutureEpoch) {
			t.Fatalf("junk for epoch 2^40: %v, want 409 future_epoch", err)
		}
	}
	for range 400 {
		if _, err := mallory.rc.PostMessage(ctx, mallory.gid, relayclient.Post{Message: mallory.junk(ep)}); err != nil {
			t.Fatalf("junk of the current epoch: %v", err)
		}
	}
	rlSend(t, alice, ch, "after the junk")
	realOnly := func(p *proc) []string {
		var out []string
		for _, m := range rlHistory(t, p, ch) {
			if m.Sender.UserID != "system" {
				out = append(out, named(m.Sender.UserID)+":"+m.Text)
			}
		}
		return out
	}
	rlEventually(t, 60*time.Second, "bob reads past the junk", func() (bool, string) {
		h := realOnly(bob)
		return len(h) == 1 && h[0] == "alice:after the junk", fmt.Sprint(h)
	})
	notes := len(rlHistory(t, bob, ch))
	bob.restartHard()
	rlSend(t, alice, ch, "after the restart")
	rlEventually(t, 60*time.Second, "bob reads on after a restart", func() (bool, string) {
		h := realOnly(bob)
		return len(h) == 2 && h[1] == "alice:after the restart", fmt.Sprint(h)
	})
	if n := len(rlHistory(t, bob, ch)); n != notes+1 {
		t.Fatalf("bob's history grew by %d entries across the restart, want 1: the junk was read again", n-notes)
	}
	rlSend(t, bob, ch, "still here")
	rlEventually(t, 30*time.Second, "alice reads bob", func() (bool, string) {
		h := realOnly(alice)
		return len(h) == 3 && h[2] == "bob:still here", fmt.Sprint(h)
	})
}

// lookAlike is a Welcome (and its tree) of a group the rogue makes under
// the real group's id and extensions, adding the devices of user.
func (r *relayRogue) lookAlike(user string) (welcome, ratchetTree []byte) {
	t := r.t
	t.Helper()
	ks, err := r.rc.ClaimKeyPackages(context.Background(), identity.UserID(user))
	if err != nil {
		t.Fatalf("rogue claims %s's key packages: %v", user, err)
	}
	var o mls.CommitOptions
	for _, k := range ks {
		m, err := mls.UnmarshalMessage(k.KeyPackage)
		if err != nil || m.KeyPackage == nil {
			t.Fatalf("claimed key package: %v", err)
		}
		o.Add = append(o.Add, m.KeyPackage)
	}
	caps := r.Caps
	g, err := mls.CreateGroup(r.Suite, r.Signer, r.gid, mls.LeafOptions{Credential: tree.NewBasicCredential([]byte(r.UserID())),
		Capabilities: &caps, Extensions: tree.Extensions{providertest.Ext(t, r.Cert)}}, r.Group.Context().Extensions, providertest.Config())
	if err != nil {
		t.Fatalf("look-alike group: %v", err)
	}
	res, err := g.Commit(o)
	if err != nil {
		t.Fatalf("look-alike add: %v", err)
	}
	wm, err := mls.NewMessage(res.Welcome)
	if err != nil {
		t.Fatal(err)
	}
	if welcome, err = wire.Marshal(wm); err != nil {
		t.Fatal(err)
	}
	if ratchetTree, err = wire.Marshal(res.RatchetTree); err != nil {
		t.Fatal(err)
	}
	return welcome, ratchetTree
}

// TestRelayLookalikeWelcome (issue 13.4): a member who knows the group id
// makes a look-alike group under it and sends its Welcome to the next
// invitee. Before the real commit adds the invitee, the relay refuses it
// (403 recipient_not_member); after, the invitee holds the real group and
// the look-alike changes nothing: it stays in the real channel, at the
// others' epoch, reading what they send, and reports the look-alike
// skipped (a delivery event) once it gives it up.
func TestRelayLookalikeWelcome(t *testing.T) {
	rp := startRelayProc(t)
	alice, bob, carol := rlNode(t, "alice", rp.url()), rlNode(t, "bob", rp.url()), rlNode(t, "carol", rp.url())
	ch := rlCreate(t, alice, "the real one")
	mallory := newRelayRogue(t, rp.url())
	userNames.Store(mallory.uid(), "mallory")
	ctx := context.Background()
	if err := alice.c.Do(ctx, "POST", rlPath(ch, "/invites"), map[string]string{"user_id": mallory.uid()}, nil); err != nil {
		t.Fatalf("alice invites mallory: %v", err)
	}
	mallory.join(ch)
	rlInvite(t, alice, ch, carol)
	rlWaitJoined(t, carol, ch)

	// bob knows mallory (a contact): her Welcome would be joined at once.
	if err := bob.c.Do(ctx, "PUT", "/v1/contacts/"+url.PathEscape(mallory.uid()), map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	w, rt := mallory.lookAlike(bob.uid)
	_, err := mallory.rc.PostWelcome(ctx, relayclient.Welcome{Recipients: []string{bob.uid}, Welcome: w, RatchetTree: rt, GroupID: mallory.gid})
	var re *relayclient.Error
	if !errors.As(err, &re) || re.Status != http.StatusForbidden || re.Code != "recipient_not_member" {
		t.Fatalf("a look-alike Welcome ahead of the real add: %v, want 403 recipient_not_member", err)
	}

	rlInvite(t, alice, ch, bob)
	rlWaitJoined(t, bob, ch)
	ep := rlWaitConverged(t, ch, "alice,bob,carol,mallory", alice, bob, carol)
	w, rt = mallory.lookAlike(bob.uid)
	if _, err := mallory.rc.PostWelcome(ctx, relayclient.Welcome{Recipients: []string{bob.uid}, Welcome: w, RatchetTree: rt, GroupID: mallory.gid}); err != nil {
		t.Fatalf("a look-alike Welcome once bob is a member: %v", err)
	}
	rlSend(t, alice, ch, "the real channel")
	rlEventually(t, 30*time.Second, "bob reads the real channel", func() (bool, string) {
		tx := rlTexts(rlHistory(t, bob, ch))
		return len(tx) == 1 && tx[0] == "alice:the real channel", fmt.Sprint(tx)
	})
	if got := rlWaitConverged(t, ch, "alice,bob,carol,mallory", alice, bob, carol); got != ep {
		t.Fatalf("epoch %d, %d before the look-alike", got, ep)
	}
	if c := channelOfNode(t, bob, ch); c.Name != "the real one" || c.State != "active" {
		t.Fatalf("bob's channel after the look-alike: %+v", c)
	}
	// Once it has waited out a removal it might precede, bob's node gives
	// the look-alike up and says so.
	readEvents(t, bob.c.BaseURL, "", 1<<20, func(e sseEvent) bool {
		return e.event == "delivery" && e.data["kind"] == "welcome" && e.data["status"] == "skipped" && e.data["sender"] == mallory.uid()
	})
}
