// Package channeltest holds FakeGroupProvider, a test double of
// channel.GroupProvider for fast tests of the channel logic alone.
//
// IT IS NOT SECURE AND DOES NOT PRETEND TO BE. Nothing is encrypted or
// signed: "ciphertexts", Welcomes and key packages are plain JSON that
// anyone can read and forge, senders are whatever the JSON says, and there
// is no forward secrecy or post-compromise security. It models only the
// bookkeeping the channel layer depends on: group ids, epochs, members and
// leaf indexes, key packages consumed by joins, stale-epoch and replay
// rejection, pending removal proposals. Never use it outside tests; tests
// of security properties must use channel.NewMLSGroupProvider.
package channeltest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/spacepanda/spacepanda/channel"
)

// Errors of the fake.
var (
	ErrWrongEpoch = errors.New("fake: message for another epoch")
	ErrReplay     = errors.New("fake: message already processed")
	ErrNoGroup    = errors.New("fake: group not found")
	ErrBadMessage = errors.New("fake: not a fake message")
	ErrNoKP       = errors.New("fake: welcome has none of our key packages")
)

var magic = []byte("FAKE-INSECURE:")

// msg is every fake wire object.
type msg struct {
	Kind     string // kp, welcome, app, proposal, commit
	GroupID  []byte
	Epoch    uint64
	Sender   channel.Member
	Nonce    string
	Data     []byte
	Members  []channel.Member  // commit and welcome: the new membership
	Joiners  map[string]uint32 // welcome: key package id → leaf
	Info     []byte
	Removals []uint32 // proposal
}

func encode(m *msg) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	return append(bytes.Clone(magic), b...)
}

func decode(b []byte) (*msg, error) {
	if !bytes.HasPrefix(b, magic) {
		return nil, ErrBadMessage
	}
	var m msg
	if err := json.Unmarshal(b[len(magic):], &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	return &m, nil
}

func nonce() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type group struct {
	epoch    uint64
	me       uint32
	members  []channel.Member
	seen     map[string]bool
	removals []uint32 // proposed, not committed
}

// FakeGroupProvider is an INSECURE in-memory channel.GroupProvider for one
// identity (see the package comment).
type FakeGroupProvider struct {
	id string

	mu     sync.Mutex
	groups map[string]*group
	kps    map[string]bool
}

// New returns a fake provider for identity.
func New(identity string) *FakeGroupProvider {
	return &FakeGroupProvider{id: identity, groups: map[string]*group{}, kps: map[string]bool{}}
}

var _ channel.GroupProvider = (*FakeGroupProvider)(nil)

func (f *FakeGroupProvider) Identity() string { return f.id }

func (f *FakeGroupProvider) self() channel.Member {
	return channel.Member{Identity: f.id, SignatureKey: []byte(f.id), EncryptionKey: []byte(nonce())}
}

func (f *FakeGroupProvider) GenerateKeyPackages(_ context.Context, n int) ([][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([][]byte, n)
	for i := range out {
		m := &msg{Kind: "kp", Nonce: nonce(), Sender: f.self()}
		f.kps[m.Nonce] = true
		out[i] = encode(m)
	}
	return out, nil
}

func (f *FakeGroupProvider) CreateGroup(_ context.Context, gid []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.groups[string(gid)] != nil {
		return errors.New("fake: group exists")
	}
	f.groups[string(gid)] = &group{members: []channel.Member{f.self()}, seen: map[string]bool{}}
	return nil
}

func (f *FakeGroupProvider) get(gid []byte) (*group, error) {
	g := f.groups[string(gid)]
	if g == nil {
		return nil, fmt.Errorf("%w: %x (%w)", ErrNoGroup, gid, channel.ErrNotMember)
	}
	return g, nil
}

func nextLeaf(ms []channel.Member) uint32 {
	var n uint32
	for _, m := range ms {
		n = max(n, m.LeafIndex+1)
	}
	return n
}

// commit applies a membership change to g and returns the commit message.
func (f *FakeGroupProvider) commit(gid []byte, g *group, members []channel.Member) []byte {
	c := &msg{Kind: "commit", GroupID: gid, Epoch: g.epoch, Sender: g.members[f.idx(g)], Nonce: nonce(), Members: members}
	g.epoch++
	g.members = members
	g.removals = nil
	return encode(c)
}

func (f *FakeGroupProvider) idx(g *group) int {
	return slices.IndexFunc(g.members, func(m channel.Member) bool { return m.LeafIndex == g.me })
}

func (f *FakeGroupProvider) AddMembers(_ context.Context, gid []byte, kps [][]byte, info []byte) (*channel.AddResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, err := f.get(gid)
	if err != nil {
		return nil, err
	}
	members := slices.Clone(g.members)
	w := &msg{Kind: "welcome", GroupID: gid, Joiners: map[string]uint32{}, Info: info}
	res := &channel.AddResult{}
	for _, b := range kps {
		kp, err := decode(b)
		if err != nil || kp.Kind != "kp" {
			return nil, fmt.Errorf("fake: bad key package: %w", ErrBadMessage)
		}
		m := kp.Sender
		m.LeafIndex = nextLeaf(members)
		members = append(members, m)
		w.Joiners[kp.Nonce] = m.LeafIndex
		res.Added = append(res.Added, m)
	}
	res.Commit = f.commit(gid, g, members)
	w.Epoch, w.Members = g.epoch, members
	res.Welcome, res.Epoch = encode(w), g.epoch
	return res, nil
}

func (f *FakeGroupProvider) JoinFromWelcome(_ context.Context, welcome, _ []byte) (*channel.JoinResult, error) {
	w, err := decode(welcome)
	if err != nil || w.Kind != "welcome" {
		return nil, fmt.Errorf("fake: bad welcome: %w", ErrBadMessage)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for ref, leaf := range w.Joiners {
		if !f.kps[ref] {
			continue
		}
		if f.groups[string(w.GroupID)] != nil {
			return nil, errors.New("fake: group exists")
		}
		delete(f.kps, ref)
		f.groups[string(w.GroupID)] = &group{epoch: w.Epoch, me: leaf, members: w.Members, seen: map[string]bool{}}
		return &channel.JoinResult{GroupID: w.GroupID, Epoch: w.Epoch, Info: w.Info}, nil
	}
	return nil, ErrNoKP
}

func (f *FakeGroupProvider) Encrypt(_ context.Context, gid, pt []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, err := f.get(gid)
	if err != nil {
		return nil, err
	}
	if len(g.removals) > 0 {
		return nil, errors.New("fake: proposals pending: commit them first")
	}
	return encode(&msg{Kind: "app", GroupID: gid, Epoch: g.epoch, Sender: g.members[f.idx(g)], Nonce: nonce(), Data: pt}), nil
}

func (f *FakeGroupProvider) ProcessMessage(_ context.Context, gid, b []byte) (*channel.Processed, error) {
	m, err := decode(b)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	g, err := f.get(gid)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(m.GroupID, gid) {
		return nil, errors.New("fake: wrong group")
	}
	if m.Epoch != g.epoch {
		return nil, fmt.Errorf("%w: %d, group in %d", ErrWrongEpoch, m.Epoch, g.epoch)
	}
	if g.seen[m.Nonce] {
		return nil, ErrReplay
	}
	if m.Sender.LeafIndex == g.me {
		return nil, errors.New("fake: own message")
	}
	out := &channel.Processed{Sender: m.Sender}
	switch m.Kind {
	case "app":
		out.Kind, out.ApplicationData = channel.KindApplication, m.Data
	case "proposal":
		out.Kind, out.ProposedRemovals = channel.KindProposal, m.Removals
		g.removals = append(g.removals, m.Removals...)
	case "commit":
		out.Kind = channel.KindCommit
		out.Joined, out.Removed = diff(g.members, m.Members)
		g.epoch++
		g.members = m.Members
		g.removals = nil
		g.seen = map[string]bool{}
		out.SelfRemoved = f.idx(g) < 0
	default:
		return nil, ErrBadMessage
	}
	g.seen[m.Nonce] = true
	out.Epoch = g.epoch
	return out, nil
}

func diff(before, after []channel.Member) (joined, removed []channel.Member) {
	key := func(m channel.Member) string { return fmt.Sprintf("%d/%x", m.LeafIndex, m.SignatureKey) }
	in := func(ms []channel.Member, m channel.Member) bool {
		return slices.ContainsFunc(ms, func(x channel.Member) bool { return key(x) == key(m) })
	}
	for _, m := range after {
		if !in(before, m) {
			joined = append(joined, m)
		}
	}
	for _, m := range before {
		if !in(after, m) {
			removed = append(removed, m)
		}
	}
	return joined, removed
}

func (f *FakeGroupProvider) RemoveMembers(_ context.Context, gid []byte, leaves []uint32) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, err := f.get(gid)
	if err != nil {
		return nil, err
	}
	members := slices.DeleteFunc(slices.Clone(g.members), func(m channel.Member) bool { return slices.Contains(leaves, m.LeafIndex) })
	return f.commit(gid, g, members), nil
}

func (f *FakeGroupProvider) ProposeLeave(_ context.Context, gid []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, err := f.get(gid)
	if err != nil {
		return nil, err
	}
	return encode(&msg{Kind: "proposal", GroupID: gid, Epoch: g.epoch, Sender: g.members[f.idx(g)], Nonce: nonce(), Removals: []uint32{g.me}}), nil
}

func (f *FakeGroupProvider) SelfUpdate(_ context.Context, gid []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, err := f.get(gid)
	if err != nil {
		return nil, err
	}
	members := slices.DeleteFunc(slices.Clone(g.members), func(m channel.Member) bool { return slices.Contains(g.removals, m.LeafIndex) })
	i := slices.IndexFunc(members, func(m channel.Member) bool { return m.LeafIndex == g.me })
	if i < 0 {
		return nil, errors.New("fake: cannot commit own removal")
	}
	members[i].EncryptionKey = []byte(nonce())
	return f.commit(gid, g, members), nil
}

func (f *FakeGroupProvider) Members(_ context.Context, gid []byte) ([]channel.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, err := f.get(gid)
	if err != nil {
		return nil, err
	}
	return slices.Clone(g.members), nil
}

func (f *FakeGroupProvider) Epoch(_ context.Context, gid []byte) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g, err := f.get(gid)
	if err != nil {
		return 0, err
	}
	return g.epoch, nil
}

func (f *FakeGroupProvider) MessageGroupID(b []byte) ([]byte, error) {
	m, err := decode(b)
	if err != nil {
		return nil, err
	}
	return m.GroupID, nil
}

func (f *FakeGroupProvider) ForgetGroup(_ context.Context, gid []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.get(gid); err != nil {
		return err
	}
	delete(f.groups, string(gid))
	return nil
}
