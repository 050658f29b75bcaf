package node_test

import (
	"context"
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
