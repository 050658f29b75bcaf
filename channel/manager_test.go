package channel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/provider"
	"github.com/spacepanda/spacepanda/store"
	"github.com/spacepanda/spacepanda/store/memory"
	"github.com/spacepanda/spacepanda/store/sqlite"
)

// clock is a settable clock shared by the peers of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type peer struct {
	*channel.Manager
	p  *provider.Provider
	st store.Store
}

func newPeer(t testing.TB, name string, clk *clock) *peer {
	t.Helper()
	st := memory.New()
	return newPeerOn(t, name, clk, st)
}

func newPeerOn(t testing.TB, name string, clk *clock, st store.Store) *peer {
	t.Helper()
	ctx := context.Background()
	o := channel.ProviderOptions(provider.Options{Name: name})
	co := channel.Options{}
	if clk != nil {
		co.Now = clk.Now
	}
	p, err := provider.New(ctx, st, o)
	if err != nil {
		t.Fatal(err)
	}
	register(p)
	return &peer{Manager: channel.NewManager(channel.NewMLSGroupProvider(p), st, co), p: p, st: st}
}

func must[T any](t testing.TB) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// invite has inviter add joiner to ch and the joiner join; the commit is
// returned for the other existing members.
func invite(t testing.TB, inviter, joiner *peer, ch string) []byte {
	t.Helper()
	ctx := context.Background()
	kp, err := joiner.GenerateKeyPackage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok, commit, err := inviter.CreateInvite(ctx, ch, kp)
	if err != nil {
		t.Fatal(err)
	}
	// The token travels as text.
	text, err := tok.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var got channel.InviteToken
	if err := got.UnmarshalText(text); err != nil {
		t.Fatal(err)
	}
	d, err := joiner.JoinChannel(ctx, &got)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != ch {
		t.Fatalf("joined %s, want %s", d.ID, ch)
	}
	return commit
}

// deliver has to receive ct and checks it is a chat message from sender with body.
func deliver(t testing.TB, to *peer, ct []byte, sender, body string) *channel.Event {
	t.Helper()
	ev, err := to.Receive(context.Background(), ct)
	if err != nil {
		t.Fatalf("%s receive: %v", to.Identity(), err)
	}
	if ev.Kind != channel.EventChatMessage || uid(sender) != ev.Sender.Identity || string(ev.Message.Body) != body || ev.Message.Sender != uid(sender) {
		t.Fatalf("%s got %v from %q %q, want chat from %q %q", to.Identity(), ev.Kind, ev.Sender.Identity, ev.Message.Body, sender, body)
	}
	return ev
}

func send(t testing.TB, from *peer, ch, body string) []byte {
	t.Helper()
	_, ct, err := from.SendMessage(context.Background(), ch, body, "")
	if err != nil {
		t.Fatalf("%s send: %v", from.Identity(), err)
	}
	return ct
}

func receiveKind(t testing.TB, to *peer, msg []byte, want channel.EventKind) *channel.Event {
	t.Helper()
	ev, err := to.Receive(context.Background(), msg)
	if err != nil {
		t.Fatalf("%s receive: %v", to.Identity(), err)
	}
	if ev.Kind != want {
		t.Fatalf("%s got %v, want %v", to.Identity(), ev.Kind, want)
	}
	return ev
}

// identities names members for the tests: by the display name their
// device gave (the tests name each identity's provider after its peer),
// or by their credential identity when they have none (the test double).
func identities(ms []channel.Member) []string {
	var out []string
	for _, m := range ms {
		if m.DisplayName != "" {
			out = append(out, m.DisplayName)
		} else {
			out = append(out, m.Identity)
		}
	}
	return out
}

func TestFullJoinFlow(t *testing.T) {
	ctx := context.Background()
	alice, bob := newPeer(t, "alice", nil), newPeer(t, "bob", nil)
	d := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "general", true))
	if d.Name != "general" || !d.Public || d.ID != channel.ChannelID(d.GroupID) {
		t.Fatalf("descriptor %+v", d)
	}
	invite(t, alice, bob, d.ID)
	bd := must[*channel.Descriptor](t)(bob.Channel(ctx, d.ID))
	if bd.Name != "general" || !bd.Public || !bd.CreatedAt.Equal(d.CreatedAt) {
		t.Fatalf("bob's descriptor %+v, want %+v", bd, d)
	}
	for _, p := range []*peer{alice, bob} {
		ms := must[[]channel.Member](t)(p.Leaves(ctx, d.ID))
		if fmt.Sprint(identities(ms)) != "[alice bob]" {
			t.Fatalf("%s sees members %v", p.Identity(), identities(ms))
		}
	}
	deliver(t, bob, send(t, alice, d.ID, "hello bob"), "alice", "hello bob")
	deliver(t, alice, send(t, bob, d.ID, "hi alice"), "bob", "hi alice")
	for _, p := range []*peer{alice, bob} {
		h := must[[]store.Message](t)(p.History(ctx, d.ID, 0, 0))
		if len(h) != 2 || string(h[0].Body) != "hello bob" || named(h[0].Sender) != "alice" || string(h[1].Body) != "hi alice" || named(h[1].Sender) != "bob" {
			t.Fatalf("%s history %+v", p.Identity(), h)
		}
	}
}

func TestMultipleMessageExchange(t *testing.T) {
	ctx := context.Background()
	alice, bob := newPeer(t, "alice", nil), newPeer(t, "bob", nil)
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "c", false)).ID
	invite(t, alice, bob, ch)
	var last string
	for i := range 20 {
		from, to := alice, bob
		if i%2 == 1 {
			from, to = bob, alice
		}
		body := fmt.Sprintf("message %d", i)
		id, ct, err := from.SendMessage(ctx, ch, body, last)
		if err != nil {
			t.Fatal(err)
		}
		ev := deliver(t, to, ct, from.Identity(), body)
		if ev.Message.ID != id || ev.Message.ReplyTo != last {
			t.Fatalf("message %d: id %q reply %q, want %q %q", i, ev.Message.ID, ev.Message.ReplyTo, id, last)
		}
		last = id
	}
	// Several in a row before the other side reads (out of order too).
	var cts [][]byte
	for i := range 5 {
		cts = append(cts, send(t, alice, ch, fmt.Sprint("burst ", i)))
	}
	for _, i := range []int{4, 0, 3, 1, 2} {
		deliver(t, bob, cts[i], "alice", fmt.Sprint("burst ", i))
	}
	for _, p := range []*peer{alice, bob} {
		h := must[[]store.Message](t)(p.History(ctx, ch, 0, 1000))
		if len(h) != 25 {
			t.Fatalf("%s has %d messages", p.Identity(), len(h))
		}
		for i := range 20 {
			if string(h[i].Body) != fmt.Sprintf("message %d", i) || h[i].Seq != uint64(i+1) {
				t.Fatalf("%s history[%d] = %+v", p.Identity(), i, h[i])
			}
		}
	}
}

func threeParty(t *testing.T) (alice, bob, carol *peer, ch string) {
	ctx := context.Background()
	alice, bob, carol = newPeer(t, "alice", nil), newPeer(t, "bob", nil), newPeer(t, "carol", nil)
	ch = must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "three", false)).ID
	invite(t, alice, bob, ch)
	commit := invite(t, alice, carol, ch)
	ev := receiveKind(t, bob, commit, channel.EventMemberJoined)
	if fmt.Sprint(identities(ev.Joined)) != "[carol]" || named(ev.Sender.Identity) != "alice" {
		t.Fatalf("bob saw joined %v from %q", identities(ev.Joined), ev.Sender.Identity)
	}
	return alice, bob, carol, ch
}

func TestThreePartyGroup(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol, ch := threeParty(t)
	all := []*peer{alice, bob, carol}
	var epochs []uint64
	for _, p := range all {
		epochs = append(epochs, must[uint64](t)(p.Epoch(ctx, ch)))
		if got := fmt.Sprint(identities(must[[]channel.Member](t)(p.Leaves(ctx, ch)))); got != "[alice bob carol]" {
			t.Fatalf("%s sees %s", p.Identity(), got)
		}
	}
	if epochs[0] != 2 || epochs[1] != 2 || epochs[2] != 2 {
		t.Fatalf("epochs %v", epochs)
	}
	for _, from := range all {
		ct := send(t, from, ch, "from "+from.Identity())
		for _, to := range all {
			if to != from {
				deliver(t, to, ct, from.Identity(), "from "+from.Identity())
			}
		}
	}
}

func TestInviteWithRealKeyPackage(t *testing.T) {
	ctx := context.Background()
	alice, bob := newPeer(t, "alice", nil), newPeer(t, "bob", nil)
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "real", false)).ID
	kp := must[[]byte](t)(bob.GenerateKeyPackage(ctx))
	m, err := mls.UnmarshalMessage(kp)
	if err != nil || m.KeyPackage == nil {
		t.Fatalf("key package is not an MLSMessage key package: %v", err)
	}
	if err := mls.ValidateKeyPackage(bob.p.Suite(), m.KeyPackage, time.Now(), mls.ValidateOptions{}); err != nil {
		t.Fatal(err)
	}
	if string(m.KeyPackage.LeafNode.Credential.Identity) != bob.Identity() {
		t.Fatalf("credential %q", m.KeyPackage.LeafNode.Credential.Identity)
	}
	// A corrupted key package is refused and the channel stays as it was.
	bad := bytes.Clone(kp)
	bad[len(bad)-3] ^= 1
	if _, _, err := alice.CreateInvite(ctx, ch, bad); err == nil {
		t.Fatal("invite with a corrupted key package accepted")
	}
	if e := must[uint64](t)(alice.Epoch(ctx, ch)); e != 0 {
		t.Fatalf("epoch %d after a failed invite", e)
	}
	before := must[store.KeyPackageCount](t)(bob.p.KeyPackageCount(ctx))
	tok, _, err := alice.CreateInvite(ctx, ch, kp)
	if err != nil {
		t.Fatal(err)
	}
	// The bare Welcome, as a plain peer would get it, still names the
	// channel: the name travels (signed) in the GroupInfo extension.
	d, err := bob.JoinWelcome(ctx, tok.Welcome, tok.RatchetTree)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != ch || d.Name != "real" {
		t.Fatalf("joined %+v", d)
	}
	after := must[store.KeyPackageCount](t)(bob.p.KeyPackageCount(ctx))
	if after.OneTime != before.OneTime-1 {
		t.Fatalf("key packages %d → %d: not consumed", before.OneTime, after.OneTime)
	}
	// Joining again is refused.
	if _, err := bob.JoinChannel(ctx, tok); !errors.Is(err, channel.ErrChannelExists) {
		t.Fatalf("second join: %v", err)
	}
	deliver(t, bob, send(t, alice, ch, "ok"), "alice", "ok")
}

// A Welcome without our extension (a plain RFC 9420 inviter) gives a
// channel named by its group id.
func TestJoinPlainWelcome(t *testing.T) {
	ctx := context.Background()
	alice, bob := newPeer(t, "alice", nil), newPeer(t, "bob", nil)
	gid := must[[]byte](t)(alice.p.CreateGroup(ctx, nil, nil))
	kp := must[[]byte](t)(bob.GenerateKeyPackage(ctx))
	m, _ := mls.UnmarshalMessage(kp)
	res, err := alice.p.CommitNow(ctx, gid, mls.CommitOptions{Add: []*mls.KeyPackage{m.KeyPackage}})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := mls.NewMessage(res.Welcome)
	wb := must[[]byte](t)(wireMarshal(w))
	rt := must[[]byte](t)(wireMarshal(res.RatchetTree))
	d, err := bob.JoinWelcome(ctx, wb, rt)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != channel.ChannelID(gid) || d.Name != d.ID {
		t.Fatalf("descriptor %+v", d)
	}
	// Plain application data from the plain peer shows as raw text.
	pm, err := alice.p.Encrypt(ctx, gid, []byte("plain hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := receiveKind(t, bob, must[[]byte](t)(wireMarshal(pm)), channel.EventChatMessage)
	if !ev.Raw || string(ev.Message.Body) != "plain hello" || named(ev.Message.Sender) != "alice" {
		t.Fatalf("event %+v", ev)
	}
}

func TestRemovedMemberForwardSecrecy(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol, ch := threeParty(t)
	if _, err := alice.RemoveMember(ctx, ch, uid("alice")); !errors.Is(err, channel.ErrRemoveSelf) {
		t.Fatalf("self removal: %v", err)
	}
	if _, err := alice.RemoveMember(ctx, ch, "mallory"); !errors.Is(err, channel.ErrMemberNotFound) {
		t.Fatalf("unknown member: %v", err)
	}
	commit := must[[]byte](t)(alice.RemoveMember(ctx, ch, uid("carol")))
	ev := receiveKind(t, bob, commit, channel.EventMemberRemoved)
	if fmt.Sprint(identities(ev.Removed)) != "[carol]" {
		t.Fatalf("removed %v", identities(ev.Removed))
	}
	secret := send(t, alice, ch, "after carol left")
	// Carol, still in the old epoch, cannot read it.
	if _, err := carol.Receive(ctx, secret); !errors.Is(err, mls.ErrWrongEpoch) {
		t.Fatalf("carol read a post-removal message: %v", err)
	}
	// She learns she is out; afterwards she has no keys at all.
	receiveKind(t, carol, commit, channel.EventRemoved)
	if _, err := carol.Receive(ctx, secret); !errors.Is(err, channel.ErrNotMember) {
		t.Fatalf("carol after removal: %v", err)
	}
	for _, m := range must[[]store.Message](t)(carol.History(ctx, ch, 0, 100)) {
		if string(m.Body) == "after carol left" {
			t.Fatal("carol's history holds a message sent after her removal")
		}
	}
	deliver(t, bob, secret, "alice", "after carol left")
	deliver(t, alice, send(t, bob, ch, "still here"), "bob", "still here")
	if got := fmt.Sprint(identities(must[[]channel.Member](t)(bob.Leaves(ctx, ch)))); got != "[alice bob]" {
		t.Fatalf("bob sees %s", got)
	}
}

func TestSelfUpdatePostCompromise(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol, ch := threeParty(t)
	leafKey := func(p *peer, who string) []byte {
		for _, m := range must[[]channel.Member](t)(p.Leaves(ctx, ch)) {
			if m.Identity == uid(who) {
				return m.EncryptionKey
			}
		}
		t.Fatalf("%s not found", who)
		return nil
	}
	old := leafKey(alice, "bob")
	oldEpoch := must[uint64](t)(alice.Epoch(ctx, ch))
	commit := must[[]byte](t)(bob.SelfUpdate(ctx, ch))
	// A message in the old epoch, sent before alice saw the update, is
	// still readable (past epochs are kept for late messages).
	late := send(t, carol, ch, "late")
	receiveKind(t, alice, commit, channel.EventEpochChanged)
	receiveKind(t, carol, commit, channel.EventEpochChanged)
	for _, p := range []*peer{alice, bob, carol} {
		if k := leafKey(p, "bob"); len(k) == 0 || bytes.Equal(k, old) {
			t.Fatalf("%s: bob's leaf key unchanged", p.Identity())
		}
		if e := must[uint64](t)(p.Epoch(ctx, ch)); e != oldEpoch+1 {
			t.Fatalf("%s in epoch %d", p.Identity(), e)
		}
	}
	deliver(t, alice, late, "carol", "late")
	for _, from := range []*peer{alice, bob, carol} {
		ct := send(t, from, ch, "post "+from.Identity())
		for _, to := range []*peer{alice, bob, carol} {
			if to != from {
				deliver(t, to, ct, from.Identity(), "post "+from.Identity())
			}
		}
	}
}

func TestTamperedAndReplayedRejected(t *testing.T) {
	ctx := context.Background()
	alice, bob := newPeer(t, "alice", nil), newPeer(t, "bob", nil)
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "c", false)).ID
	invite(t, alice, bob, ch)
	ct := send(t, alice, ch, "genuine")
	state := func() string {
		e := must[uint64](t)(bob.Epoch(ctx, ch))
		h := must[[]store.Message](t)(bob.History(ctx, ch, 0, 100))
		return fmt.Sprint(e, len(h))
	}
	before := state()
	for i := 0; i < len(ct); i += 7 {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x40
		if _, err := bob.Receive(ctx, bad); err == nil {
			t.Fatalf("tampered byte %d accepted", i)
		}
	}
	if got := state(); got != before {
		t.Fatalf("state %s after tampering, was %s", got, before)
	}
	deliver(t, bob, ct, "alice", "genuine")
	after := state()
	if _, err := bob.Receive(ctx, ct); err == nil {
		t.Fatal("replay accepted")
	}
	if got := state(); got != after {
		t.Fatalf("state %s after replay, was %s", got, after)
	}
	// A tampered commit is rejected too, and the real one then applies.
	commit := must[[]byte](t)(alice.SelfUpdate(ctx, ch))
	bad := bytes.Clone(commit)
	bad[len(bad)-10] ^= 1
	if _, err := bob.Receive(ctx, bad); err == nil {
		t.Fatal("tampered commit accepted")
	}
	if got := state(); got != after {
		t.Fatalf("state %s after tampered commit, was %s", got, after)
	}
	receiveKind(t, bob, commit, channel.EventEpochChanged)
	if _, err := bob.Receive(ctx, commit); err == nil {
		t.Fatal("replayed commit accepted")
	}
	deliver(t, bob, send(t, alice, ch, "still fine"), "alice", "still fine")
}

func TestStaleCommitRejected(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol, ch := threeParty(t)
	// Alice and Bob both commit in the same epoch; Carol takes Alice's
	// first, so Bob's is for a stale epoch.
	ca := must[[]byte](t)(alice.SelfUpdate(ctx, ch))
	cb := must[[]byte](t)(bob.SelfUpdate(ctx, ch))
	receiveKind(t, carol, ca, channel.EventEpochChanged)
	e := must[uint64](t)(carol.Epoch(ctx, ch))
	if _, err := carol.Receive(ctx, cb); !errors.Is(err, mls.ErrWrongEpoch) {
		t.Fatalf("stale commit: %v", err)
	}
	if got := must[uint64](t)(carol.Epoch(ctx, ch)); got != e {
		t.Fatalf("epoch %d after stale commit, was %d", got, e)
	}
	deliver(t, carol, send(t, alice, ch, "on alice's branch"), "alice", "on alice's branch")
}

func TestExpiredInviteRefused(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	alice, bob := newPeer(t, "alice", clk), newPeer(t, "bob", clk)
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "c", false)).ID
	kp := must[[]byte](t)(bob.GenerateKeyPackage(ctx))
	tok, _, err := alice.CreateInvite(ctx, ch, kp)
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(channel.DefaultInviteTTL + time.Minute)
	if _, err := bob.JoinChannel(ctx, tok); !errors.Is(err, channel.ErrInviteExpired) {
		t.Fatalf("expired invite: %v", err)
	}
	// Stripping the token's expiry does not help: the Welcome carries the
	// signed one.
	tok.ExpiresAt = time.Time{}
	if _, err := bob.JoinChannel(ctx, tok); !errors.Is(err, channel.ErrInviteExpired) {
		t.Fatalf("expired invite without token expiry: %v", err)
	}
	if cs := must[[]*channel.Descriptor](t)(bob.Channels(ctx)); len(cs) != 0 {
		t.Fatalf("bob has channels %v", cs)
	}
	if gs := must[[][]byte](t)(bob.p.Groups(ctx)); len(gs) != 0 {
		t.Fatalf("bob kept %d groups", len(gs))
	}
}

func TestConcurrentSendOneChannel(t *testing.T) {
	ctx := context.Background()
	alice, bob := newPeer(t, "alice", nil), newPeer(t, "bob", nil)
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "c", false)).ID
	invite(t, alice, bob, ch)
	const workers, each = 8, 10
	var (
		mu  sync.Mutex
		cts = map[string][]byte{}
		wg  sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				body := fmt.Sprintf("w%d-%d", w, i)
				_, ct, err := alice.SendMessage(ctx, ch, body, "")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				cts[body] = ct
				mu.Unlock()
			}
		}()
	}
	// Meanwhile, reads.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			if _, err := alice.Members(ctx, ch); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	if t.Failed() {
		return
	}
	// Bob receives them concurrently too.
	for body, ct := range cts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev, err := bob.Receive(ctx, ct)
			if err != nil || string(ev.Message.Body) != body {
				t.Errorf("bob: %v", err)
			}
		}()
	}
	wg.Wait()
	for _, p := range []*peer{alice, bob} {
		if h := must[[]store.Message](t)(p.History(ctx, ch, 0, 1000)); len(h) != workers*each {
			t.Fatalf("%s history has %d", p.Identity(), len(h))
		}
	}
}

func TestHundredMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("100 members: skipped with -short")
	}
	ctx := context.Background()
	start := time.Now()
	owner := newPeer(t, "m000", nil)
	ch := must[*channel.Descriptor](t)(owner.CreateChannel(ctx, "hundred", true)).ID
	peers := make([]*peer, 99)
	kps := make([][]byte, 99)
	for i := range peers {
		peers[i] = newPeer(t, fmt.Sprintf("m%03d", i+1), nil)
		kps[i] = must[[]byte](t)(peers[i].GenerateKeyPackage(ctx))
	}
	tok, _, err := owner.CreateInvites(ctx, ch, kps)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d, err := p.JoinChannel(ctx, tok); err != nil || d.Name != "hundred" {
				t.Errorf("%s join: %v", p.Identity(), err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("built in %v", time.Since(start))
	all := append([]*peer{owner}, peers...)
	if n := len(must[[]channel.Member](t)(peers[50].Leaves(ctx, ch))); n != 100 {
		t.Fatalf("%d members", n)
	}
	// Two messages, each to everyone else.
	for _, from := range []*peer{owner, peers[49]} {
		ct := send(t, from, ch, "hello from "+from.Identity())
		for _, to := range all {
			if to != from {
				deliver(t, to, ct, from.Identity(), "hello from "+from.Identity())
			}
		}
	}
	// A removal, processed by everyone.
	commit := must[[]byte](t)(owner.RemoveMember(ctx, ch, uid("m099")))
	for _, p := range all[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := channel.EventMemberRemoved
			if named(p.Identity()) == "m099" {
				want = channel.EventRemoved
			}
			if ev, err := p.Receive(ctx, commit); err != nil || ev.Kind != want {
				t.Errorf("%s: %v", p.Identity(), err)
			}
		}()
	}
	wg.Wait()
	ct := send(t, peers[0], ch, "after removal")
	for _, to := range all {
		switch {
		case to == peers[0]:
		case named(to.Identity()) == "m099":
			if _, err := to.Receive(ctx, ct); err == nil {
				t.Fatal("removed member read a message")
			}
		default:
			deliver(t, to, ct, "m001", "after removal")
		}
	}
	t.Logf("total %v", time.Since(start))
}

// The history survives a restart on SQLite, and the channel keeps working.
func TestSQLiteRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() store.Store {
		st, err := sqlite.Open(ctx, filepath.Join(dir, "bob.db"), sqlite.Options{KeyFile: filepath.Join(dir, "bob.key")})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	alice := newPeer(t, "alice", nil)
	st := open()
	bob := newPeerOn(t, "bob", nil, st)
	ch := must[*channel.Descriptor](t)(alice.CreateChannel(ctx, "durable", false)).ID
	invite(t, alice, bob, ch)
	deliver(t, bob, send(t, alice, ch, "one"), "alice", "one")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = open()
	defer st.Close()
	bob = newPeerOn(t, "bob", nil, st)
	deliver(t, bob, send(t, alice, ch, "two"), "alice", "two")
	deliver(t, alice, send(t, bob, ch, "three"), "bob", "three")
	h := must[[]store.Message](t)(bob.History(ctx, ch, 0, 10))
	if len(h) != 3 || string(h[0].Body) != "one" || string(h[2].Body) != "three" {
		t.Fatalf("history %+v", h)
	}
}

// Leave with real MLS: a Remove proposal of our own leaf, committed by
// another member.
func TestLeaveMLS(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol, ch := threeParty(t)
	prop := must[[]byte](t)(bob.Leave(ctx, ch))
	if cs := must[[]*channel.Descriptor](t)(bob.Channels(ctx)); len(cs) != 0 {
		t.Fatal("bob still has the channel")
	}
	for _, p := range []*peer{alice, carol} {
		ev := receiveKind(t, p, prop, channel.EventProposal)
		if len(ev.ProposedRemovals) != 1 || named(ev.ProposedRemovals[0].Identity) != "bob" || named(ev.Sender.Identity) != "bob" {
			t.Fatalf("%s: %+v", p.Identity(), ev)
		}
	}
	commit := must[[]byte](t)(alice.SelfUpdate(ctx, ch))
	ev := receiveKind(t, carol, commit, channel.EventMemberRemoved)
	if fmt.Sprint(identities(ev.Removed)) != "[bob]" {
		t.Fatalf("removed %v", identities(ev.Removed))
	}
	deliver(t, carol, send(t, alice, ch, "bob is gone"), "alice", "bob is gone")
}
