package tsmls_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/spacepanda/spacepanda/interop/tsmls"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Helpers for the SpacePanda engine ↔ ts-mls tests (engine_interop_test.go).
// A member of a mixed group is an eiMember: eiGo runs our engine (package
// mls), eiTS drives a ts-mls peer. Both speak wire bytes only (MLSMessage
// framing, the ratchet tree as ratchet_tree extension data), exactly what
// would cross the network. Names start with ei to stay clear of the
// ts-mls↔ts-mls tests of this package.

// eiCommit is what a commit produced, as wire bytes.
type eiCommit struct {
	Commit  []byte
	Welcome []byte // nil unless members were added
	Tree    []byte // ratchet_tree extension data, for Welcomes without it
}

// eiProcessed is what a member reports for a message it processed.
type eiProcessed struct {
	Kind    string // tsmls.KindApplication, KindProposal, KindCommit
	Data    []byte
	Sender  string // BasicCredential identity of a member sender, else ""
	Removed bool
	// Commit is the decoded commit (SpacePanda receivers only).
	Commit *mls.Commit
	// WireFormat is the MLSMessage's wire format.
	WireFormat mls.WireFormat
	// AAD is the authenticated_data (SpacePanda receivers only).
	AAD []byte
}

// eiView is a member's view of the group: what every member must agree on.
type eiView struct {
	Epoch   uint64
	Auth    []byte
	Export  []byte
	Members []tsmls.Member
}

type eiMember interface {
	Name() string
	Impl() string // "go" or "ts"
	KeyPackage() []byte
	CreateGroup(gid []byte)
	// Join processes a Welcome; tree nil means it is in the GroupInfo.
	Join(welcome, tree []byte)
	// ExternalJoin joins by external commit from a GroupInfo (MLSMessage)
	// carrying the tree, and returns the commit.
	ExternalJoin(groupInfo []byte) []byte
	// GroupInfo returns a signed GroupInfo with external_pub and the tree.
	GroupInfo() []byte
	Add(kps ...[]byte) eiCommit
	Update() eiCommit
	Remove(victim string) eiCommit
	CommitPending() eiCommit
	ProposeAdd(kp []byte) []byte
	ProposeRemove(victim string) []byte
	Send(data []byte) []byte
	Process(msg []byte) (*eiProcessed, error)
	View() eiView
	// SetHandshake chooses PublicMessage or PrivateMessage for commits and
	// proposals, and whether Welcomes carry the ratchet tree.
	SetHandshake(public, treeInWelcome bool)
	// Public reports whether this member sends handshake messages as
	// PublicMessage.
	Public() bool
}

const eiExportLabel = "spacepanda engine interop"

var eiExportContext = []byte("context")

// ---- ts-mls ---------------------------------------------------------------

type eiTS struct {
	t      testing.TB
	name   string
	p      *tsmls.Peer
	gid    []byte
	public bool
}

func eiStartTS(t testing.TB, name string, id suite.ID) *eiTS {
	t.Helper()
	return &eiTS{t: t, name: name, p: tsmls.StartT(t, name, uint16(id))}
}

func (m *eiTS) Name() string { return m.name }
func (m *eiTS) Impl() string { return "ts" }

func (m *eiTS) fail(what string, err error) {
	m.t.Helper()
	m.t.Fatalf("%s (ts-mls) %s: %v", m.name, what, err)
}

func (m *eiTS) KeyPackage() []byte {
	m.t.Helper()
	kp, _, err := m.p.KeyPackage()
	if err != nil {
		m.fail("key_package", err)
	}
	return kp
}

func (m *eiTS) CreateGroup(gid []byte) {
	m.t.Helper()
	if err := m.p.CreateGroup(gid); err != nil {
		m.fail("create_group", err)
	}
	m.gid = gid
}

func (m *eiTS) Join(welcome, tree []byte) {
	m.t.Helper()
	j, err := m.p.Join(welcome, tree)
	if err != nil {
		m.fail("join", err)
	}
	m.gid = j.GroupID
}

func (m *eiTS) ExternalJoin(groupInfo []byte) []byte {
	m.t.Helper()
	var r struct {
		Commit  []byte `json:"commit"`
		GroupID []byte `json:"group_id"`
	}
	if err := m.p.Call(map[string]any{"cmd": "external_join", "group_info": groupInfo}, &r); err != nil {
		m.fail("external_join", err)
	}
	m.gid = r.GroupID
	return r.Commit
}

// ExternalResync rejoins by external commit, replacing its own leaf.
func (m *eiTS) ExternalResync(groupInfo []byte) []byte {
	m.t.Helper()
	var r struct {
		Commit []byte `json:"commit"`
	}
	if err := m.p.Call(map[string]any{"cmd": "external_join", "group_info": groupInfo, "resync": true}, &r); err != nil {
		m.fail("external_join (resync)", err)
	}
	return r.Commit
}

// SendAAD is Send with authenticated_data.
func (m *eiTS) SendAAD(data, aad []byte) []byte {
	m.t.Helper()
	var r struct {
		Message []byte `json:"message"`
	}
	if err := m.p.Call(map[string]any{"cmd": "send", "group_id": m.gid, "data": data, "aad": aad}, &r); err != nil {
		m.fail("send", err)
	}
	return r.Message
}

func (m *eiTS) GroupInfo() []byte {
	m.t.Helper()
	gi, err := m.p.GroupInfo(m.gid)
	if err != nil {
		m.fail("group_info", err)
	}
	return gi
}

func (m *eiTS) commit(what string, f func() (*tsmls.CommitResult, error)) eiCommit {
	m.t.Helper()
	r, err := f()
	if err != nil {
		m.fail(what, err)
	}
	return eiCommit{Commit: r.Commit, Welcome: r.Welcome, Tree: r.RatchetTree}
}

func (m *eiTS) Add(kps ...[]byte) eiCommit {
	m.t.Helper()
	return m.commit("add", func() (*tsmls.CommitResult, error) { return m.p.Add(m.gid, kps...) })
}

func (m *eiTS) Update() eiCommit {
	m.t.Helper()
	return m.commit("update", func() (*tsmls.CommitResult, error) { return m.p.Update(m.gid) })
}

func (m *eiTS) Remove(victim string) eiCommit {
	m.t.Helper()
	return m.commit("remove "+victim, func() (*tsmls.CommitResult, error) { return m.p.Remove(m.gid, victim) })
}

func (m *eiTS) CommitPending() eiCommit {
	m.t.Helper()
	return m.commit("commit", func() (*tsmls.CommitResult, error) { return m.p.Commit(m.gid) })
}

func (m *eiTS) ProposeAdd(kp []byte) []byte {
	m.t.Helper()
	msg, err := m.p.ProposeAdd(m.gid, kp)
	if err != nil {
		m.fail("propose_add", err)
	}
	return msg
}

func (m *eiTS) ProposeRemove(victim string) []byte {
	m.t.Helper()
	msg, err := m.p.ProposeRemove(m.gid, victim)
	if err != nil {
		m.fail("propose_remove "+victim, err)
	}
	return msg
}

func (m *eiTS) Send(data []byte) []byte {
	m.t.Helper()
	msg, err := m.p.Send(m.gid, data)
	if err != nil {
		m.fail("send", err)
	}
	return msg
}

func (m *eiTS) Process(msg []byte) (*eiProcessed, error) {
	r, err := m.p.Process(m.gid, msg)
	if err != nil {
		return nil, err
	}
	out := &eiProcessed{Kind: r.Kind, Data: r.Data, Sender: r.Sender, Removed: r.Removed}
	if dec, err := mls.UnmarshalMessage(msg); err == nil {
		out.WireFormat = dec.WireFormat
	}
	return out, nil
}

func (m *eiTS) View() eiView {
	m.t.Helper()
	var v eiView
	var err error
	if v.Epoch, err = m.p.Epoch(m.gid); err != nil {
		m.fail("epoch", err)
	}
	if v.Auth, err = m.p.EpochAuthenticator(m.gid); err != nil {
		m.fail("epoch_authenticator", err)
	}
	if v.Export, err = m.p.Export(m.gid, eiExportLabel, eiExportContext, 32); err != nil {
		m.fail("export", err)
	}
	if v.Members, err = m.p.Members(m.gid); err != nil {
		m.fail("members", err)
	}
	return v
}

func (m *eiTS) Public() bool { return m.public }

func (m *eiTS) SetHandshake(public, treeInWelcome bool) {
	m.public = public
	m.p.SetHandshake(tsmls.HandshakeOptions{PublicMessage: public, RatchetTreeExtension: treeInWelcome})
}

// ---- SpacePanda engine ------------------------------------------------------

type eiGo struct {
	t      testing.TB
	name   string
	s      *suite.Suite
	signer *suite.Signer
	cred   tree.Credential
	cfg    mls.Config
	kps    map[string]*mls.KeyPackageBundle // by hex KeyPackageRef
	g      *mls.Group
}

func eiNewGo(t testing.TB, name string, id suite.ID) *eiGo {
	t.Helper()
	s, err := suite.New(id)
	if err != nil {
		t.Fatalf("suite %v: %v", id, err)
	}
	priv, _, err := s.GenerateSignatureKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := s.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return &eiGo{t: t, name: name, s: s, signer: signer, cred: tree.NewBasicCredential([]byte(name)),
		kps: map[string]*mls.KeyPackageBundle{}}
}

func (m *eiGo) Name() string { return m.name }
func (m *eiGo) Impl() string { return "go" }

func (m *eiGo) fail(what string, err error) {
	m.t.Helper()
	m.t.Fatalf("%s (SpacePanda) %s: %v", m.name, what, err)
}

func (m *eiGo) marshal(what string, v wire.Marshaler) []byte {
	m.t.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		m.fail("encoding "+what, err)
	}
	return b
}

func (m *eiGo) message(what string, body wire.Marshaler) []byte {
	m.t.Helper()
	msg, err := mls.NewMessage(body)
	if err != nil {
		m.fail("wrapping "+what, err)
	}
	return m.marshal(what, msg)
}

func (m *eiGo) KeyPackage() []byte {
	m.t.Helper()
	return m.KeyPackageWith(mls.KeyPackageOptions{})
}

// KeyPackageWith is KeyPackage with options.
func (m *eiGo) KeyPackageWith(o mls.KeyPackageOptions) []byte {
	m.t.Helper()
	kp, priv, err := mls.NewKeyPackage(m.s, nil, m.signer, m.cred, o)
	if err != nil {
		m.fail("NewKeyPackage", err)
	}
	ref, err := kp.Ref(m.s)
	if err != nil {
		m.fail("KeyPackageRef", err)
	}
	m.kps[hex.EncodeToString(ref)] = &mls.KeyPackageBundle{KeyPackage: kp, Private: priv, Signer: m.signer}
	return m.message("KeyPackage", kp)
}

func (m *eiGo) CreateGroup(gid []byte) {
	m.t.Helper()
	m.CreateGroupWith(gid, nil)
}

// CreateGroupWith is CreateGroup with GroupContext extensions.
func (m *eiGo) CreateGroupWith(gid []byte, ext tree.Extensions) {
	m.t.Helper()
	g, err := mls.CreateGroup(m.s, m.signer, gid, mls.LeafOptions{Credential: m.cred}, ext, m.cfg)
	if err != nil {
		m.fail("CreateGroup", err)
	}
	m.g = g
}

func (m *eiGo) decode(what string, raw []byte, wf mls.WireFormat) *mls.Message {
	m.t.Helper()
	msg, err := mls.UnmarshalMessage(raw)
	if err != nil {
		m.fail("decoding "+what, err)
	}
	if msg.WireFormat != wf {
		m.t.Fatalf("%s: %s has wire format %v, want %v", m.name, what, msg.WireFormat, wf)
	}
	return msg
}

func (m *eiGo) decodeTree(raw []byte) tree.RatchetTreeNodes {
	m.t.Helper()
	if raw == nil {
		return nil
	}
	var nodes tree.RatchetTreeNodes
	if err := wire.Unmarshal(raw, &nodes); err != nil {
		m.fail("decoding ratchet tree", err)
	}
	return nodes
}

func (m *eiGo) Join(welcome, rt []byte) {
	m.t.Helper()
	w := m.decode("Welcome", welcome, mls.WireFormatWelcome)
	find := func(ref mls.KeyPackageRef) (*mls.KeyPackageBundle, error) {
		if b, ok := m.kps[hex.EncodeToString(ref)]; ok {
			return b, nil
		}
		return nil, mls.ErrKeyPackageNotFound
	}
	j, err := mls.JoinFromWelcome(w.Welcome, m.decodeTree(rt), find, m.cfg)
	if err != nil {
		m.fail("JoinFromWelcome", err)
	}
	delete(m.kps, hex.EncodeToString(j.KeyPackageRef))
	m.g = j.Group
}

func (m *eiGo) ExternalJoin(groupInfo []byte) []byte {
	m.t.Helper()
	gi := m.decode("GroupInfo", groupInfo, mls.WireFormatGroupInfo)
	msg, g, err := mls.JoinByExternalCommit(m.s, m.signer, gi.GroupInfo, nil, mls.LeafOptions{Credential: m.cred}, m.cfg)
	if err != nil {
		m.fail("JoinByExternalCommit", err)
	}
	m.g = g
	return m.marshal("external commit", msg)
}

func (m *eiGo) GroupInfo() []byte {
	m.t.Helper()
	gi, err := m.g.GroupInfo(true)
	if err != nil {
		m.fail("GroupInfo", err)
	}
	return m.message("GroupInfo", gi)
}

func (m *eiGo) commit(what string, o mls.CommitOptions) eiCommit {
	m.t.Helper()
	res, err := m.g.Commit(o)
	if err != nil {
		m.fail("Commit ("+what+")", err)
	}
	out := eiCommit{Commit: m.marshal(what+" commit", res.Commit)}
	if res.Welcome != nil {
		out.Welcome = m.message(what+" Welcome", res.Welcome)
		out.Tree = m.marshal(what+" ratchet tree", res.RatchetTree.Trimmed())
	}
	m.g = res.State // the Delivery Service accepts everything here
	return out
}

func (m *eiGo) Add(kps ...[]byte) eiCommit {
	m.t.Helper()
	var o mls.CommitOptions
	for _, raw := range kps {
		o.Add = append(o.Add, m.decode("KeyPackage", raw, mls.WireFormatKeyPackage).KeyPackage)
	}
	return m.commit("add", o)
}

// AddNoPath is Add without an UpdatePath (as ts-mls sends add-only
// commits).
func (m *eiGo) AddNoPath(kps ...[]byte) eiCommit {
	m.t.Helper()
	o := mls.CommitOptions{NoPath: true}
	for _, raw := range kps {
		o.Add = append(o.Add, m.decode("KeyPackage", raw, mls.WireFormatKeyPackage).KeyPackage)
	}
	return m.commit("add", o)
}

// RemoveMany removes several members in one commit.
func (m *eiGo) RemoveMany(victims ...string) eiCommit {
	m.t.Helper()
	var o mls.CommitOptions
	for _, v := range victims {
		o.Remove = append(o.Remove, m.leafOf(v))
	}
	return m.commit("remove", o)
}

func (m *eiGo) Update() eiCommit {
	m.t.Helper()
	if n := m.g.PendingProposals(); n != 0 {
		m.t.Fatalf("%s: update with %d proposals pending", m.name, n)
	}
	return m.commit("update", mls.CommitOptions{})
}

func (m *eiGo) leafOf(identity string) tree.LeafIndex {
	m.t.Helper()
	for _, mem := range m.g.Members() {
		if string(mem.Credential.Identity) == identity {
			return mem.LeafIndex
		}
	}
	m.t.Fatalf("%s: no member %q", m.name, identity)
	return 0
}

func (m *eiGo) Remove(victim string) eiCommit {
	m.t.Helper()
	return m.commit("remove "+victim, mls.CommitOptions{Remove: []tree.LeafIndex{m.leafOf(victim)}})
}

func (m *eiGo) CommitPending() eiCommit {
	m.t.Helper()
	return m.commit("commit", mls.CommitOptions{})
}

func (m *eiGo) propose(what string, p *mls.Proposal) []byte {
	m.t.Helper()
	msg, g, err := m.g.Propose(p)
	if err != nil {
		m.fail("Propose ("+what+")", err)
	}
	m.g = g
	return m.marshal(what+" proposal", msg)
}

func (m *eiGo) ProposeAdd(kp []byte) []byte {
	m.t.Helper()
	k := m.decode("KeyPackage", kp, mls.WireFormatKeyPackage).KeyPackage
	return m.propose("add", &mls.Proposal{ProposalType: tree.ProposalTypeAdd, Add: &mls.Add{KeyPackage: *k}})
}

func (m *eiGo) ProposeRemove(victim string) []byte {
	m.t.Helper()
	return m.propose("remove", &mls.Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &mls.Remove{Removed: m.leafOf(victim)}})
}

// ProposeUpdate proposes a fresh leaf (ts-mls has no command for it).
func (m *eiGo) ProposeUpdate() []byte {
	m.t.Helper()
	msg, g, err := m.g.ProposeUpdate()
	if err != nil {
		m.fail("ProposeUpdate", err)
	}
	m.g = g
	return m.marshal("update proposal", msg)
}

func (m *eiGo) Send(data []byte) []byte {
	m.t.Helper()
	msg, err := m.g.Encrypt(data, nil)
	if err != nil {
		m.fail("Encrypt", err)
	}
	return m.marshal("application message", msg)
}

func (m *eiGo) Process(raw []byte) (*eiProcessed, error) {
	msg, err := mls.UnmarshalMessage(raw)
	if err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	p, err := m.g.Process(msg)
	if err != nil {
		return nil, err
	}
	out := &eiProcessed{WireFormat: msg.WireFormat, Commit: p.Commit, AAD: p.AuthenticatedData}
	if p.Credential != nil {
		out.Sender = string(p.Credential.Identity)
	}
	switch p.ContentType {
	case mls.ContentTypeApplication:
		out.Kind, out.Data = tsmls.KindApplication, p.ApplicationData
	case mls.ContentTypeProposal:
		out.Kind = tsmls.KindProposal
	case mls.ContentTypeCommit:
		out.Kind = tsmls.KindCommit
	}
	if p.State != nil {
		m.g = p.State
	}
	out.Removed = m.g.Removed()
	return out, nil
}

func (m *eiGo) View() eiView {
	m.t.Helper()
	exp, err := m.g.Export(eiExportLabel, eiExportContext, 32)
	if err != nil {
		m.fail("Export", err)
	}
	v := eiView{Epoch: m.g.Epoch(), Auth: m.g.EpochAuthenticator(), Export: exp}
	for _, mem := range m.g.Members() {
		v.Members = append(v.Members, tsmls.Member{Identity: string(mem.Credential.Identity), LeafIndex: uint32(mem.LeafIndex)})
	}
	return v
}

func (m *eiGo) Public() bool { return m.cfg.HandshakeAsPublic }

// SetHandshake changes the group's Config.
func (m *eiGo) SetHandshake(public, treeInWelcome bool) {
	m.t.Helper()
	m.reconfigure(func(c *mls.Config) { c.HandshakeAsPublic, c.RatchetTreeInWelcome = public, treeInWelcome })
}

// reconfigure changes the group's Config by a store round trip (the engine
// takes its Config when a group is created, joined or loaded).
func (m *eiGo) reconfigure(f func(*mls.Config)) {
	m.t.Helper()
	f(&m.cfg)
	if m.g == nil {
		return
	}
	es, err := m.g.MarshalEpochState()
	if err != nil {
		m.fail("MarshalEpochState", err)
	}
	rs, err := m.g.MarshalRatchetState()
	if err != nil {
		m.fail("MarshalRatchetState", err)
	}
	if m.g, err = mls.LoadGroup(es, rs, m.signer, m.cfg); err != nil {
		m.fail("LoadGroup", err)
	}
}

// ---- group-level checks -----------------------------------------------------

// eiGroup is the current membership of a mixed group, from the tests' point
// of view.
type eiGroup struct {
	t testing.TB
	// last is the last commit as a SpacePanda member decoded it (nil if
	// none received it).
	last    *mls.Commit
	members []eiMember
	epoch   uint64
	log     []string // step names, for failure messages
}

func (gr *eiGroup) names() []string {
	var out []string
	for _, m := range gr.members {
		out = append(out, m.Name())
	}
	return out
}

func (gr *eiGroup) others(from eiMember) []eiMember {
	var out []eiMember
	for _, m := range gr.members {
		if m != from {
			out = append(out, m)
		}
	}
	return out
}

func (gr *eiGroup) step(format string, args ...any) {
	gr.log = append(gr.log, fmt.Sprintf(format, args...))
}

func (gr *eiGroup) where() string {
	if len(gr.log) == 0 {
		return "start"
	}
	return gr.log[len(gr.log)-1]
}

// agree checks that every member is at gr.epoch and agrees on the epoch
// authenticator, the exporter output and the member list (identities, in
// leaf order, with the leaf indexes), and that the list is gr's.
func (gr *eiGroup) agree() {
	gr.t.Helper()
	var v0 eiView
	for i, m := range gr.members {
		v := m.View()
		if v.Epoch != gr.epoch {
			gr.t.Fatalf("after %q: %s (%s) at epoch %d, want %d", gr.where(), m.Name(), m.Impl(), v.Epoch, gr.epoch)
		}
		if len(v.Auth) == 0 || len(v.Export) != 32 {
			gr.t.Fatalf("after %q: %s: epoch_authenticator %d bytes, export %d bytes", gr.where(), m.Name(), len(v.Auth), len(v.Export))
		}
		if i == 0 {
			v0 = v
			var ids []string
			for _, mm := range v.Members {
				ids = append(ids, mm.Identity)
			}
			want := gr.names()
			if !sameSet(ids, want) {
				gr.t.Fatalf("after %q: %s lists members %v, want %v", gr.where(), m.Name(), ids, want)
			}
			continue
		}
		first := gr.members[0]
		if !bytes.Equal(v.Auth, v0.Auth) {
			gr.t.Fatalf("after %q: %s (%s) and %s (%s) disagree on epoch_authenticator at epoch %d",
				gr.where(), m.Name(), m.Impl(), first.Name(), first.Impl(), v.Epoch)
		}
		if !bytes.Equal(v.Export, v0.Export) {
			gr.t.Fatalf("after %q: %s (%s) and %s (%s) disagree on MLS-Exporter at epoch %d",
				gr.where(), m.Name(), m.Impl(), first.Name(), first.Impl(), v.Epoch)
		}
		if !reflect.DeepEqual(v.Members, v0.Members) {
			gr.t.Fatalf("after %q: %s members %v, %s members %v", gr.where(), m.Name(), v.Members, first.Name(), v0.Members)
		}
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// deliver has each receiver process msg from a member and checks the kind,
// sender, data and wire format it reports.
func (gr *eiGroup) deliver(msg []byte, from eiMember, kind string, data []byte, receivers ...eiMember) {
	gr.t.Helper()
	sender := from.Name()
	for _, r := range receivers {
		got, err := r.Process(msg)
		if err != nil {
			gr.t.Fatalf("at %q: %s (%s) processing %s's %s: %v", gr.where(), r.Name(), r.Impl(), sender, kind, err)
		}
		if got.Kind != kind || got.Sender != sender || !bytes.Equal(got.Data, data) {
			gr.t.Fatalf("at %q: %s (%s) processing %s's %s: got kind=%s sender=%q data=%q", gr.where(), r.Name(), r.Impl(),
				sender, kind, got.Kind, got.Sender, got.Data)
		}
		if got.Removed {
			gr.t.Fatalf("at %q: %s (%s) unexpectedly removed", gr.where(), r.Name(), r.Impl())
		}
		gr.checkWire(r, from, got, kind)
	}
}

// checkWire checks the wire format of a processed message and remembers a
// commit a SpacePanda member decoded.
func (gr *eiGroup) checkWire(r, from eiMember, got *eiProcessed, kind string) {
	gr.t.Helper()
	want := mls.WireFormatPrivateMessage
	if from.Public() && kind != tsmls.KindApplication {
		want = mls.WireFormatPublicMessage
	}
	if got.WireFormat != want {
		gr.t.Fatalf("at %q: %s received a %s as %v, want %v", gr.where(), r.Name(), kind, got.WireFormat, want)
	}
	if got.Commit != nil {
		gr.last = got.Commit
	}
}

// lastCommit returns the counts of proposals by reference and by value in
// the last commit a SpacePanda member received, and whether it had a path.
func (gr *eiGroup) lastCommit() (refs, values int, path bool) {
	gr.t.Helper()
	if gr.last == nil {
		gr.t.Fatalf("at %q: no SpacePanda member received the commit", gr.where())
	}
	for _, p := range gr.last.Proposals {
		if p.Type == mls.ProposalOrRefTypeReference {
			refs++
		} else {
			values++
		}
	}
	return refs, values, gr.last.Path != nil
}

// wantCommit checks lastCommit.
func (gr *eiGroup) wantCommit(refs, values int, path bool) {
	gr.t.Helper()
	r, v, p := gr.lastCommit()
	if r != refs || v != values || p != path {
		gr.t.Fatalf("at %q: commit has %d proposals by reference, %d by value, path %v; want %d, %d, %v",
			gr.where(), r, v, p, refs, values, path)
	}
}

// chat has every member send an application message to all others.
func (gr *eiGroup) chat() {
	gr.t.Helper()
	for _, from := range gr.members {
		data := []byte(fmt.Sprintf("%s (%s) at epoch %d after %s", from.Name(), from.Impl(), gr.epoch, gr.where()))
		gr.deliver(from.Send(data), from, tsmls.KindApplication, data, gr.others(from)...)
	}
}

// commit delivers committer's commit to the other members, moves gr to the
// next epoch and, when the commit adds joiners, has them join with the
// Welcome (tree out of band unless inWelcome). removed members process the
// commit too and must learn they are out. It then checks agreement.
func (gr *eiGroup) commit(committer eiMember, c eiCommit, inWelcome bool, joiners []eiMember, removed ...eiMember) {
	gr.t.Helper()
	gr.last = nil
	var stay []eiMember
	for _, m := range gr.others(committer) {
		if !contains(removed, m) {
			stay = append(stay, m)
		}
	}
	gr.deliver(c.Commit, committer, tsmls.KindCommit, nil, stay...)
	for _, r := range removed {
		got, err := r.Process(c.Commit)
		if err != nil {
			gr.t.Fatalf("at %q: %s (%s) processing its removal by %s: %v", gr.where(), r.Name(), r.Impl(), committer.Name(), err)
		}
		if !got.Removed {
			gr.t.Fatalf("at %q: %s (%s) not told it was removed", gr.where(), r.Name(), r.Impl())
		}
		gr.checkWire(r, committer, got, tsmls.KindCommit)
	}
	gr.epoch++
	var members []eiMember
	for _, m := range gr.members {
		if !contains(removed, m) {
			members = append(members, m)
		}
	}
	if len(joiners) > 0 {
		if c.Welcome == nil {
			gr.t.Fatalf("at %q: commit adding %d members has no Welcome", gr.where(), len(joiners))
		}
		tr := c.Tree
		if inWelcome {
			tr = nil
		}
		for _, j := range joiners {
			j.Join(c.Welcome, tr)
		}
		members = append(members, joiners...)
	} else if c.Welcome != nil {
		gr.t.Fatalf("at %q: unexpected Welcome", gr.where())
	}
	gr.members = members
	gr.agree()
}

// external delivers joiner's external commit to the members (its sender is
// a new_member_commit, which the implementations report as "" or as the
// joiner) and adds joiner.
func (gr *eiGroup) external(joiner eiMember, commit []byte) {
	gr.t.Helper()
	gr.last = nil
	for _, r := range gr.members {
		got, err := r.Process(commit)
		if err != nil {
			gr.t.Fatalf("at %q: %s (%s) processing %s's external commit: %v", gr.where(), r.Name(), r.Impl(), joiner.Name(), err)
		}
		if got.Kind != tsmls.KindCommit || (got.Sender != "" && got.Sender != joiner.Name()) || got.Removed ||
			got.WireFormat != mls.WireFormatPublicMessage {
			gr.t.Fatalf("at %q: %s (%s) processing %s's external commit: %+v", gr.where(), r.Name(), r.Impl(), joiner.Name(), got)
		}
		if got.Commit != nil {
			gr.last = got.Commit
		}
	}
	gr.epoch++
	gr.members = append(gr.members, joiner)
	gr.agree()
}

// resync delivers an external commit by which member rejoined (replacing
// its own leaf) to the others.
func (gr *eiGroup) resync(member eiMember, commit []byte) {
	gr.t.Helper()
	gr.last = nil
	for _, r := range gr.others(member) {
		got, err := r.Process(commit)
		if err != nil {
			gr.t.Fatalf("at %q: %s (%s) processing %s's resync: %v", gr.where(), r.Name(), r.Impl(), member.Name(), err)
		}
		if got.Kind != tsmls.KindCommit || got.Removed || got.WireFormat != mls.WireFormatPublicMessage {
			gr.t.Fatalf("at %q: %s (%s) processing %s's resync: %+v", gr.where(), r.Name(), r.Impl(), member.Name(), got)
		}
		if got.Commit != nil {
			gr.last = got.Commit
		}
	}
	gr.epoch++
	gr.agree()
}

// propose delivers a proposal to every member but its sender.
func (gr *eiGroup) propose(from eiMember, msg []byte) {
	gr.t.Helper()
	gr.deliver(msg, from, tsmls.KindProposal, nil, gr.others(from)...)
}

// locked checks that none of outs can open an application message sent now.
func (gr *eiGroup) locked(outs ...eiMember) {
	gr.t.Helper()
	from := gr.members[0]
	secret := []byte("not for removed members: " + gr.where())
	msg := from.Send(secret)
	gr.deliver(msg, from, tsmls.KindApplication, secret, gr.others(from)...)
	for _, o := range outs {
		got, err := o.Process(msg)
		if err == nil {
			gr.t.Fatalf("at %q: removed %s (%s) processed a later message: %+v", gr.where(), o.Name(), o.Impl(), got)
		}
		if o.Impl() == "ts" && !errors.Is(err, tsmls.ErrPeer) {
			gr.t.Fatalf("%s: %v", o.Name(), err)
		}
	}
}

func contains(ms []eiMember, m eiMember) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}
