package mls

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Scenario helpers for the group state machine tests (group_test.go,
// group_reject_test.go, group_fuzz_test.go). Names start with gt to stay
// clear of the other test files of the package.

// gtSuites are the suites most scenario tests run under; gtAllSuites is
// every suite package suite implements.
var gtSuites = []suite.ID{1, 2, 3}

func gtAllSuites() []suite.ID { return suite.All() }

func gtSuite(t testing.TB, id suite.ID) *suite.Suite {
	t.Helper()
	s, err := suite.New(id)
	if err != nil {
		t.Fatalf("suite %v: %v", id, err)
	}
	return s
}

func gtSigner(t testing.TB, s *suite.Suite) *suite.Signer {
	t.Helper()
	priv, _, err := s.GenerateSignatureKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := s.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

// gtMember is one client: its signature key, credential, a fresh
// KeyPackage and (once in the group) its state.
type gtMember struct {
	name   string
	s      *suite.Suite
	signer *suite.Signer
	cred   tree.Credential
	kp     *KeyPackage
	priv   *KeyPackagePrivate
	g      *Group
}

func gtNewMember(t testing.TB, s *suite.Suite, name string) *gtMember {
	t.Helper()
	m := &gtMember{name: name, s: s, signer: gtSigner(t, s), cred: tree.NewBasicCredential([]byte(name))}
	m.newKeyPackage(t, KeyPackageOptions{})
	return m
}

func (m *gtMember) newKeyPackage(t testing.TB, o KeyPackageOptions) {
	t.Helper()
	kp, priv, err := NewKeyPackage(m.s, nil, m.signer, m.cred, o)
	if err != nil {
		t.Fatal(err)
	}
	m.kp, m.priv = kp, priv
}

func (m *gtMember) finder(t testing.TB) KeyPackageFinder {
	ref, err := m.kp.Ref(m.s)
	if err != nil {
		t.Fatal(err)
	}
	b := &KeyPackageBundle{KeyPackage: m.kp, Private: m.priv, Signer: m.signer}
	return func(r KeyPackageRef) (*KeyPackageBundle, error) {
		if bytes.Equal(r, ref) {
			return b, nil
		}
		return nil, ErrKeyPackageNotFound
	}
}

// gtGroup drives a group of members through commits and messages.
type gtGroup struct {
	t   testing.TB
	s   *suite.Suite
	cfg Config
	ms  []*gtMember // current members
	// oob sends the ratchet tree out of band to joiners (CommitResult.RatchetTree).
	oob bool
	// lastCommit is the last commit as a receiving member decoded it.
	lastCommit *Commit
}

// gtCreate makes a group of n members: the creator adds the others in one commit.
func gtCreate(t testing.TB, id suite.ID, cfg Config, n int) *gtGroup {
	t.Helper()
	s := gtSuite(t, id)
	gg := &gtGroup{t: t, s: s, cfg: cfg}
	c := gtNewMember(t, s, "m0")
	var err error
	c.g, err = CreateGroup(s, c.signer, nil, LeafOptions{Credential: c.cred}, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	gg.ms = []*gtMember{c}
	if n > 1 {
		gg.add(0, gg.newMembers(n-1)...)
	}
	return gg
}

func (gg *gtGroup) newMembers(n int) []*gtMember {
	out := make([]*gtMember, n)
	for i := range out {
		out[i] = gtNewMember(gg.t, gg.s, fmt.Sprintf("m%d-%d", len(gg.ms)+i, gg.ms[0].g.Epoch()))
	}
	return out
}

// wireRoundTrip encodes and decodes msg, as a network would.
func gtWire(t testing.TB, msg *Message) []byte {
	t.Helper()
	b, err := wire.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// commit has member i commit o; every other member processes the commit
// (from its encoding) and adopts the new state; joiners join.
func (gg *gtGroup) commit(i int, o CommitOptions, joiners ...*gtMember) *CommitResult {
	gg.t.Helper()
	for _, j := range joiners {
		o.Add = append(o.Add, j.kp)
	}
	res, err := gg.ms[i].g.Commit(o)
	if err != nil {
		gg.t.Fatalf("%s commits: %v", gg.ms[i].name, err)
	}
	gg.deliverCommit(i, res)
	gg.join(res, joiners...)
	return res
}

// deliverCommit hands res.Commit to everyone but the committer, then adopts
// res.State for the committer; members the commit removed are dropped.
func (gg *gtGroup) deliverCommit(i int, res *CommitResult) {
	gg.t.Helper()
	b := gtWire(gg.t, res.Commit)
	var keep []*gtMember
	for j, m := range gg.ms {
		if j == i {
			m.g = res.State
			keep = append(keep, m)
			continue
		}
		p, err := m.g.ProcessBytes(b)
		if err != nil {
			gg.t.Fatalf("%s processes the commit of %s: %v", m.name, gg.ms[i].name, err)
		}
		if p.ContentType != ContentTypeCommit || (!p.State.Removed() && p.State.Epoch() != m.g.Epoch()+1) {
			gg.t.Fatalf("%s: processed %v, epoch %d -> %d", m.name, p.ContentType, m.g.Epoch(), p.State.Epoch())
		}
		gg.lastCommit = p.Commit
		m.g = p.State
		if !m.g.Removed() {
			keep = append(keep, m)
		}
	}
	gg.ms = keep
}

func (gg *gtGroup) join(res *CommitResult, joiners ...*gtMember) {
	gg.t.Helper()
	if len(joiners) == 0 {
		return
	}
	if res.Welcome == nil {
		gg.t.Fatal("no Welcome for the joiners")
	}
	wb, err := wire.Marshal(res.Welcome)
	if err != nil {
		gg.t.Fatal(err)
	}
	for _, j := range joiners {
		var w Welcome
		if err := wire.Unmarshal(wb, &w); err != nil {
			gg.t.Fatal(err)
		}
		var rt tree.RatchetTreeNodes
		if gg.oob {
			rt = res.RatchetTree
		}
		jd, err := JoinFromWelcome(&w, rt, j.finder(gg.t), gg.cfg)
		if err != nil {
			gg.t.Fatalf("%s joins: %v", j.name, err)
		}
		j.g = jd.Group
		gg.ms = append(gg.ms, j)
	}
}

// add has member i add the joiners in one commit.
func (gg *gtGroup) add(i int, joiners ...*gtMember) *CommitResult {
	gg.t.Helper()
	return gg.commit(i, CommitOptions{}, joiners...)
}

// deliver hands a proposal (or other handshake) message from member i to
// every other member, who adopt the resulting state.
func (gg *gtGroup) deliver(i int, msg *Message) {
	gg.t.Helper()
	b := gtWire(gg.t, msg)
	for j, m := range gg.ms {
		if j == i {
			continue
		}
		p, err := m.g.ProcessBytes(b)
		if err != nil {
			gg.t.Fatalf("%s processes a message of %s: %v", m.name, gg.ms[i].name, err)
		}
		m.g = p.State
	}
}

// app has member i send data; every other member must read it back.
func (gg *gtGroup) app(i int, data string) {
	gg.t.Helper()
	msg, err := gg.ms[i].g.Encrypt([]byte(data), []byte("ad:"+data))
	if err != nil {
		gg.t.Fatalf("%s encrypts: %v", gg.ms[i].name, err)
	}
	b := gtWire(gg.t, msg)
	for j, m := range gg.ms {
		if j == i {
			continue
		}
		p, err := m.g.ProcessBytes(b)
		if err != nil {
			gg.t.Fatalf("%s reads %s's message: %v", m.name, gg.ms[i].name, err)
		}
		if p.ContentType != ContentTypeApplication || string(p.ApplicationData) != data ||
			string(p.AuthenticatedData) != "ad:"+data || p.Sender != MemberSender(gg.ms[i].g.OwnLeafIndex()) ||
			p.Credential == nil || !bytes.Equal(p.Credential.Identity, gg.ms[i].cred.Identity) {
			gg.t.Fatalf("%s read %+v from %s", m.name, p, gg.ms[i].name)
		}
		if p.State != m.g {
			gg.t.Fatalf("application message: State is not the receiver")
		}
	}
}

// appAll has every member send one message.
func (gg *gtGroup) appAll(tag string) {
	gg.t.Helper()
	for i := range gg.ms {
		gg.app(i, fmt.Sprintf("%s from %d", tag, i))
	}
}

// check asserts every member has the same view of the group.
func (gg *gtGroup) check() {
	gg.t.Helper()
	gtAgree(gg.t, gg.groups()...)
	if got := gg.ms[0].g.MemberCount(); got != len(gg.ms) {
		gg.t.Fatalf("member count %d, want %d", got, len(gg.ms))
	}
	for _, m := range gg.ms {
		mem, ok := m.g.Member(m.g.OwnLeafIndex())
		if !ok || !bytes.Equal(mem.SignatureKey, m.signer.PublicKey()) {
			gg.t.Fatalf("%s: own leaf %d does not hold its key", m.name, m.g.OwnLeafIndex())
		}
		if m.g.Removed() {
			gg.t.Fatalf("%s is removed", m.name)
		}
	}
}

func (gg *gtGroup) groups() []*Group {
	out := make([]*Group, len(gg.ms))
	for i, m := range gg.ms {
		out[i] = m.g
	}
	return out
}

func (gg *gtGroup) index(m *gtMember) int { return slices.Index(gg.ms, m) }

// gtAgree asserts the groups agree on epoch, GroupContext (tree hash,
// transcript), epoch authenticator, exporter, tree and membership.
func gtAgree(t testing.TB, gs ...*Group) {
	t.Helper()
	ref := gs[0]
	refCtx, _ := wire.Marshal(gtPtr(ref.Context()))
	refTree, _ := wire.Marshal(ref.RatchetTree())
	refExp, err := ref.Export("spacepanda test", []byte("ctx"), 32)
	if err != nil {
		t.Fatal(err)
	}
	refMembers := gtMembers(ref)
	for i, g := range gs[1:] {
		ctx, _ := wire.Marshal(gtPtr(g.Context()))
		tr, _ := wire.Marshal(g.RatchetTree())
		exp, err := g.Export("spacepanda test", []byte("ctx"), 32)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case g.Epoch() != ref.Epoch():
			t.Fatalf("member %d: epoch %d, want %d", i+1, g.Epoch(), ref.Epoch())
		case !bytes.Equal(g.Context().TreeHash, ref.Context().TreeHash):
			t.Fatalf("member %d: tree hash differs", i+1)
		case !bytes.Equal(ctx, refCtx):
			t.Fatalf("member %d: group context differs", i+1)
		case !bytes.Equal(g.EpochAuthenticator(), ref.EpochAuthenticator()):
			t.Fatalf("member %d: epoch authenticator differs", i+1)
		case !bytes.Equal(exp, refExp):
			t.Fatalf("member %d: exporter differs", i+1)
		case !bytes.Equal(tr, refTree):
			t.Fatalf("member %d: ratchet tree differs", i+1)
		case gtMembers(g) != refMembers:
			t.Fatalf("member %d: members %s, want %s", i+1, gtMembers(g), refMembers)
		}
	}
}

func gtPtr[T any](v T) *T { return &v }

func gtMembers(g *Group) string {
	var b bytes.Buffer
	for _, m := range g.Members() {
		fmt.Fprintf(&b, "%d:%s:%x ", m.LeafIndex, m.Credential.Identity, m.SignatureKey[:4])
	}
	return b.String()
}

// gtSnap is what must not change when a message is rejected.
type gtSnap struct {
	epoch   uint64
	auth    []byte
	pending int
	ctx     []byte
}

func gtSnapshot(g *Group) gtSnap {
	ctx, _ := wire.Marshal(gtPtr(g.Context()))
	return gtSnap{epoch: g.Epoch(), auth: g.EpochAuthenticator(), pending: g.PendingProposals(), ctx: ctx}
}

func (a gtSnap) equal(b gtSnap) bool {
	return a.epoch == b.epoch && bytes.Equal(a.auth, b.auth) && a.pending == b.pending && bytes.Equal(a.ctx, b.ctx)
}

// gtExpectErr asserts err wraps want.
func gtExpectErr(t testing.TB, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
}
