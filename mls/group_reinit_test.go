package mls

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Reinitialization and branching (RFC 9420 §11.2, §11.3, §12.4.3.1): the
// honest flows in every suite, and a table of hostile successors, each
// refused by the joiner with a typed error and no change to its old group.

// riOldConfig configures the old groups (gtCreate sends the tree in the
// Welcome); the new groups' configurations vary.
var riOldConfig = Config{RatchetTreeInWelcome: true}

// riExtensions are the extensions the ReInits of these tests ask for.
func riExtensions(t testing.TB) tree.Extensions {
	rc, err := wire.Marshal(&tree.RequiredCapabilities{ExtensionTypes: []tree.ExtensionType{}, ProposalTypes: []tree.ProposalType{},
		CredentialTypes: []tree.CredentialType{tree.CredentialTypeBasic}})
	if err != nil {
		t.Fatal(err)
	}
	return tree.Extensions{{ExtensionType: tree.ExtensionTypeRequiredCapabilities, ExtensionData: rc}}
}

// riNext is m's client in a group of suite s: the same credential, a new
// signature key and a KeyPackage of s.
func riNext(t testing.TB, m *gtMember, s *suite.Suite) *gtMember {
	t.Helper()
	n := &gtMember{name: m.name + "'", s: s, signer: gtSigner(t, s), cred: m.cred}
	n.newKeyPackage(t, KeyPackageOptions{})
	return n
}

// riFixture is a group of three whose member 1 proposed a ReInit to suite
// to and member 2 committed it by reference; next holds each member's
// client for the new group.
type riFixture struct {
	gg   *gtGroup
	ri   *ReInit
	to   *suite.Suite
	next []*gtMember
}

func newRIFixture(t testing.TB, from, to suite.ID) *riFixture {
	t.Helper()
	gg := gtCreate(t, from, riOldConfig, 3)
	f := &riFixture{gg: gg, to: gtSuite(t, to),
		ri: &ReInit{GroupID: []byte(fmt.Sprintf("reinit of %x", gg.ms[0].g.GroupID()[:4])), Version: tree.ProtocolVersionMLS10,
			CipherSuite: to, Extensions: riExtensions(t)}}
	msg, next, err := gg.ms[1].g.Propose(&Proposal{ProposalType: tree.ProposalTypeReInit, ReInit: f.ri})
	if err != nil {
		t.Fatal(err)
	}
	gg.ms[1].g = next
	gg.deliver(1, msg)
	ref := gg.ms[2].g.pending[0].ref
	res, err := gg.ms[2].g.Commit(CommitOptions{ReInitRef: ref})
	if err != nil {
		t.Fatal(err)
	}
	gg.deliverCommit(2, res)
	if len(gg.lastCommit.Proposals) != 1 || gg.lastCommit.Proposals[0].Type != ProposalOrRefTypeReference {
		t.Fatalf("the ReInit was not committed alone by reference: %+v", gg.lastCommit.Proposals)
	}
	for _, m := range gg.ms {
		if m.g.ReInitPending() == nil {
			t.Fatalf("%s: no ReInit pending", m.name)
		}
		f.next = append(f.next, riNext(t, m, f.to))
	}
	return f
}

// create has member i create the new group with the others' KeyPackages.
func (f *riFixture) create(t testing.TB, i int, cfg Config) *CommitResult {
	t.Helper()
	res, err := f.gg.ms[i].g.ReInitGroup(SuccessorOptions{Signer: f.next[i].signer, Members: f.othersKPs(i)}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (f *riFixture) othersKPs(i int) []*KeyPackage {
	var kps []*KeyPackage
	for j, n := range f.next {
		if j != i {
			kps = append(kps, n.kp)
		}
	}
	return kps
}

// riWelcome is res's Welcome after a trip through the wire, and the tree
// to join with (nil when the Welcome carries it).
func riWelcome(t testing.TB, res *CommitResult, cfg Config) (*Welcome, tree.RatchetTreeNodes) {
	t.Helper()
	if res.Welcome == nil {
		t.Fatal("no Welcome")
	}
	b, err := wire.Marshal(res.Welcome)
	if err != nil {
		t.Fatal(err)
	}
	w := new(Welcome)
	if err := wire.Unmarshal(b, w); err != nil {
		t.Fatal(err)
	}
	if cfg.RatchetTreeInWelcome {
		return w, nil
	}
	return w, res.RatchetTree
}

// riSucceed joins every member but the creator to the group res created
// and returns the new group (members in old order).
func riSucceed(t testing.TB, res *CommitResult, creator int, olds []*gtMember, next []*gtMember, u schedule.ResumptionPSKUsage, cfg Config) *gtGroup {
	t.Helper()
	join := JoinReInitWelcome
	if u == schedule.UsageBranch {
		join = JoinBranchWelcome
	}
	gg := &gtGroup{t: t, s: next[0].s, cfg: cfg}
	for i, n := range next {
		if i == creator {
			n.g = res.State
		} else {
			w, rt := riWelcome(t, res, cfg)
			jd, err := join(w, rt, n.finder(t), olds[i].g, cfg)
			if err != nil {
				t.Fatalf("%s joins: %v", n.name, err)
			}
			n.g = jd.Group
		}
		gg.ms = append(gg.ms, n)
	}
	return gg
}

// TestReInit: a ReInit proposed by one member and committed by another;
// a third creates the new group (in the next suite, so the suite changes)
// and the others join it from the Welcome. They agree on the new epoch
// (authenticator, exporter, tree), talk, and commit; the old group stays
// frozen; a plain JoinFromWelcome is refused.
func TestReInit(t *testing.T) {
	for _, from := range gtAllSuites() {
		to := from%7 + 1
		t.Run(fmt.Sprintf("%v to %v", from, to), func(t *testing.T) {
			cfg := Config{RatchetTreeInWelcome: from%2 == 0}
			f := newRIFixture(t, from, to)
			res := f.create(t, 0, cfg)
			ctx := res.State.Context()
			if !bytes.Equal(ctx.GroupID, f.ri.GroupID) || ctx.CipherSuite != to || ctx.Epoch != 1 ||
				!bytes.Equal(gtEnc(t, &ctx.Extensions), gtEnc(t, &f.ri.Extensions)) {
				t.Fatalf("new group context %+v does not match the ReInit %+v", ctx, f.ri)
			}

			// Without the old group the Welcome is refused, even when the
			// PSK itself could be found (as a provider's store would).
			w, rt := riWelcome(t, res, cfg)
			have := func(id *schedule.PreSharedKeyID) ([]byte, error) { return f.gg.ms[1].g.resumption[id.PSKEpoch], nil }
			_, err := JoinFromWelcome(w, rt, f.next[1].finder(t), Config{PSKs: have})
			gtExpectErr(t, err, ErrOldGroupRequired)
			gtExpectErr(t, err, ErrInvalidWelcome)

			ng := riSucceed(t, res, 0, f.gg.ms, f.next, schedule.UsageReinit, cfg)
			ng.check()
			ng.appAll("after reinit")
			ng.commit(1, CommitOptions{})
			ng.check()
			ng.appAll("epoch 2")

			for _, m := range f.gg.ms {
				_, err := m.g.Encrypt([]byte("x"), nil)
				gtExpectErr(t, err, ErrReInitPending)
			}
		})
	}
}

// TestReInitSameSuite: a ReInit that keeps the suite, its new group made by
// the member that committed it with its old signature key and credential.
func TestReInitSameSuite(t *testing.T) {
	cfg := Config{}
	f := newRIFixture(t, 1, 1)
	res, err := f.gg.ms[2].g.ReInitGroup(SuccessorOptions{Members: f.othersKPs(2)}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.next[2].signer = f.gg.ms[2].signer
	ng := riSucceed(t, res, 2, f.gg.ms, f.next, schedule.UsageReinit, cfg)
	ng.check()
	ng.appAll("same suite")
}

// TestReInitAfterReload: the old group's state keeps the committed ReInit
// and the final resumption PSK across MarshalEpochState/LoadGroup, so a
// member restarted between the ReInit and the Welcome still joins.
func TestReInitAfterReload(t *testing.T) {
	cfg := Config{RatchetTreeInWelcome: true}
	f := newRIFixture(t, 3, 2)
	for _, m := range f.gg.ms {
		es, err := m.g.MarshalEpochState()
		if err != nil {
			t.Fatal(err)
		}
		rs, err := m.g.MarshalRatchetState()
		if err != nil {
			t.Fatal(err)
		}
		if m.g, err = LoadGroup(es, rs, m.signer, cfg); err != nil {
			t.Fatal(err)
		}
		if m.g.ReInitPending() == nil {
			t.Fatalf("%s: ReInit lost on reload", m.name)
		}
	}
	res := f.create(t, 1, cfg)
	ng := riSucceed(t, res, 1, f.gg.ms, f.next, schedule.UsageReinit, cfg)
	ng.check()
	ng.appAll("after reload")
}

// TestReInitFrozen: once the ReInit is committed the old group accepts no
// proposal or commit, so its last commit stays the ReInit's (§12.4.3.1).
func TestReInitFrozen(t *testing.T) {
	f := newRIFixture(t, 1, 3)
	gg := f.gg
	// Member 1 behaves as if there were no ReInit: its commit and
	// proposal are otherwise valid.
	rogue := gg.ms[1].g.clone()
	rogue.reinit = nil
	res, err := rogue.Commit(CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gtReject(t, gg.ms[0].g, res.Commit, ErrReInitPending)
	msg, _, err := rogue.ProposeUpdate()
	if err != nil {
		t.Fatal(err)
	}
	gtReject(t, gg.ms[2].g, msg, ErrReInitPending)
}

// TestReInitCreatorChecks: ReInitGroup refuses what the joiners would.
func TestReInitCreatorChecks(t *testing.T) {
	f := newRIFixture(t, 1, 3)
	g := f.gg.ms[1].g
	outsider := gtNewMember(t, f.to, "outsider")
	_, err := g.ReInitGroup(SuccessorOptions{Signer: f.next[1].signer, Members: append(f.othersKPs(1), outsider.kp)}, Config{})
	gtExpectErr(t, err, ErrSuccessorMembers)
	_, err = g.ReInitGroup(SuccessorOptions{Signer: f.next[1].signer, Members: f.othersKPs(1)[:1]}, Config{})
	gtExpectErr(t, err, ErrSuccessorMembers)
	_, err = g.ReInitGroup(SuccessorOptions{Members: f.othersKPs(1)}, Config{})
	gtExpectErr(t, err, ErrSuccessorMismatch) // the suite changes: a signer of the new suite is needed

	plain := gtCreate(t, 1, riOldConfig, 2)
	_, err = plain.ms[0].g.ReInitGroup(SuccessorOptions{}, Config{})
	gtExpectErr(t, err, ErrNoReInit)
}

// TestReInitRef: CommitOptions.ReInitRef commits only a cached ReInit (its
// use, a ReInit committed alone by reference, is in newRIFixture).
func TestReInitRef(t *testing.T) {
	gg := gtCreate(t, 1, riOldConfig, 3)
	gg.deliver(1, gtProposeUpdate(t, gg, 1))
	_, err := gg.ms[0].g.Commit(CommitOptions{ReInitRef: gg.ms[0].g.pending[0].ref})
	gtExpectErr(t, err, ErrInvalidProposal)
	_, err = gg.ms[0].g.Commit(CommitOptions{ReInitRef: []byte("no such proposal")})
	gtExpectErr(t, err, ErrUnknownProposal)
}

// TestBranch: a member branches a subgroup of two of four; the joiner
// joins after the old group moved on (the PSK's epoch is a past one it
// keeps); both groups keep working.
func TestBranch(t *testing.T) {
	for _, id := range gtAllSuites() {
		t.Run(id.String(), func(t *testing.T) {
			cfg := Config{RatchetTreeInWelcome: id%2 == 1}
			gg := gtCreate(t, id, riOldConfig, 4)
			sub := []*gtMember{gg.ms[1], gg.ms[3]}
			next := []*gtMember{riNext(t, sub[0], gg.s), riNext(t, sub[1], gg.s)}
			res, err := sub[0].g.Branch(nil, riExtensions(t), SuccessorOptions{Members: []*KeyPackage{next[1].kp}}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			next[0].signer = sub[0].signer
			if bytes.Equal(res.State.GroupID(), gg.ms[0].g.GroupID()) || res.State.Epoch() != 1 {
				t.Fatalf("branch: group id %x epoch %d", res.State.GroupID(), res.State.Epoch())
			}
			gg.commit(2, CommitOptions{}) // the old group moves on first

			w, rt := riWelcome(t, res, cfg)
			_, err = JoinFromWelcome(w, rt, next[1].finder(t), cfg)
			gtExpectErr(t, err, ErrOldGroupRequired)
			_, err = JoinReInitWelcome(w, rt, next[1].finder(t), sub[1].g, cfg)
			gtExpectErr(t, err, ErrSuccessorMismatch)

			ng := riSucceed(t, res, 0, sub, next, schedule.UsageBranch, cfg)
			ng.check()
			ng.appAll("in the branch")
			gg.check()
			gg.appAll("in the old group")
		})
	}
}

// TestBranchRefusals: the creator's own checks.
func TestBranchRefusals(t *testing.T) {
	gg := gtCreate(t, 2, riOldConfig, 3)
	g := gg.ms[0].g
	outsider := gtNewMember(t, gg.s, "outsider")
	_, err := g.Branch(nil, nil, SuccessorOptions{Members: []*KeyPackage{outsider.kp}}, Config{})
	gtExpectErr(t, err, ErrSuccessorMembers)
	_, err = g.Branch(g.GroupID(), nil, SuccessorOptions{}, Config{})
	gtExpectErr(t, err, ErrSuccessorMismatch)
}

// TestSuccessorPSKOutsideItsCommit: a reinit or branch resumption PSK in an
// ordinary commit is invalid (RFC 9420 §8.6, §12.1.4): when committing,
// when received, and in a new group past its first commit.
func TestSuccessorPSKOutsideItsCommit(t *testing.T) {
	gg := gtCreate(t, 1, riOldConfig, 3)
	g := gg.ms[1].g
	for _, u := range []schedule.ResumptionPSKUsage{schedule.UsageReinit, schedule.UsageBranch} {
		id := schedule.PreSharedKeyID{Type: schedule.PSKTypeResumption, Usage: u, PSKGroupID: g.GroupID(), PSKEpoch: g.Epoch(),
			Nonce: bytes.Repeat([]byte{7}, gg.s.HashSize())}
		_, err := g.Commit(CommitOptions{PSKs: []schedule.PreSharedKeyID{id}})
		gtExpectErr(t, err, ErrInvalidProposal)
		gtReject(t, gg.ms[2].g, gtForgeCommit(t, g, byValue(&Proposal{ProposalType: tree.ProposalTypePSK, PreSharedKey: &PreSharedKey{PSK: id}})), ErrInvalidProposal)
	}

	// The branch's creator cannot inject the link a second time.
	next := riNext(t, gg.ms[2], gg.s)
	res, err := g.Branch(nil, nil, SuccessorOptions{Members: []*KeyPackage{next.kp}}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	again := schedule.PreSharedKeyID{Type: schedule.PSKTypeResumption, Usage: schedule.UsageBranch, PSKGroupID: g.GroupID(), PSKEpoch: g.Epoch()}
	_, err = res.State.Commit(CommitOptions{PSKs: []schedule.PreSharedKeyID{again}})
	gtExpectErr(t, err, ErrInvalidProposal)
}

// successorAttack builds a hostile successor: the Welcome, the tree, the
// joiner's client for the new group and its old group.
type successorAttack struct {
	name string
	// usage is how the victim joins.
	usage schedule.ResumptionPSKUsage
	run   func(t *testing.T, cfg Config) (res *CommitResult, victim *gtMember, old *Group)
	want  []error
}

// riAttack has member 0 of a ReInit fixture (1 to 3) build a successor
// with params changed by tweak; member 1 is the victim. kps gives the
// Adds (nil: the honest ones).
func riAttack(t *testing.T, cfg Config, tweak func(f *riFixture, p *successorParams), kps func(f *riFixture) []*KeyPackage) (*CommitResult, *gtMember, *Group) {
	f := newRIFixture(t, 1, 3)
	p := successorParams{usage: schedule.UsageReinit, suite: f.to, groupID: f.ri.GroupID, extensions: f.ri.Extensions, pskEpoch: f.gg.ms[0].g.Epoch()}
	victim := f.next[1]
	if tweak != nil {
		tweak(f, &p)
		if p.suite != f.to { // the victim's KeyPackage must be of the Welcome's suite
			victim = riNext(t, f.gg.ms[1], p.suite)
			f.next[1], f.next[2] = victim, riNext(t, f.gg.ms[2], p.suite)
		}
	}
	o := SuccessorOptions{Signer: gtSigner(t, p.suite), Members: f.othersKPs(0)}
	if kps != nil {
		o.Members = kps(f)
	}
	res, err := f.gg.ms[0].g.createSuccessor(p, o, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res, victim, f.gg.ms[1].g
}

// branchAttack: member 0 of a group of four branches with members 1 and 2
// (plus what kps adds); member 1 is the victim.
func branchAttack(t *testing.T, cfg Config, tweak func(gg *gtGroup, p *successorParams), extra func(gg *gtGroup) []*KeyPackage) (*CommitResult, *gtMember, *Group) {
	gg := gtCreate(t, 1, riOldConfig, 4)
	p := successorParams{usage: schedule.UsageBranch, suite: gg.s, pskEpoch: gg.ms[0].g.Epoch()}
	if tweak != nil {
		tweak(gg, &p)
	}
	victim, other := riNext(t, gg.ms[1], p.suite), riNext(t, gg.ms[2], p.suite)
	o := SuccessorOptions{Signer: gtSigner(t, p.suite), Members: []*KeyPackage{victim.kp, other.kp}}
	if extra != nil {
		o.Members = append(o.Members, extra(gg)...)
	}
	res, err := gg.ms[0].g.createSuccessor(p, o, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res, victim, gg.ms[1].g
}

// atEpoch2 creates the new group, commits once, and only then makes the
// linking commit: a Welcome of epoch 2.
func atEpoch2(t *testing.T, old *Group, p successorParams, o SuccessorOptions, cfg Config) *CommitResult {
	link, err := old.successorLink(p.usage, p.pskEpoch)
	if err != nil {
		t.Fatal(err)
	}
	g0, err := old.newSuccessorGroup(p, o, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := g0.Commit(CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r1.State.commitSuccessor(link, o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func successorAttacks() []successorAttack {
	reinit, branch := schedule.UsageReinit, schedule.UsageBranch
	mismatch := []error{ErrInvalidWelcome, ErrSuccessorMismatch}
	members := []error{ErrInvalidWelcome, ErrSuccessorMembers}
	return []successorAttack{
		{"reinit: group id differs from the ReInit", reinit, func(t *testing.T, cfg Config) (*CommitResult, *gtMember, *Group) {
			return riAttack(t, cfg, func(f *riFixture, p *successorParams) { p.groupID = []byte("another id") }, nil)
		}, mismatch},
		{"reinit: suite differs from the ReInit", reinit, func(t *testing.T, cfg Config) (*CommitResult, *gtMember, *Group) {
			return riAttack(t, cfg, func(f *riFixture, p *successorParams) { p.suite = gtSuite(t, 2) }, nil)
		}, mismatch},
		{"reinit: extensions differ from the ReInit", reinit, func(t *testing.T, cfg Config) (*CommitResult, *gtMember, *Group) {
			return riAttack(t, cfg, func(f *riFixture, p *successorParams) { p.extensions = nil }, nil)
		}, mismatch},
		{"reinit: PSK of the epoch before the ReInit", reinit, func(t *testing.T, cfg Config) (*CommitResult, *gtMember, *Group) {
			return riAttack(t, cfg, func(f *riFixture, p *successorParams) { p.pskEpoch-- }, nil)
		}, mismatch},
		{"reinit: PSK of another usage", reinit, func(t *testing.T, cfg Config) (*CommitResult, *gtMember, *Group) {
			return riAttack(t, cfg, func(f *riFixture, p *successorParams) { p.usage = branch }, nil)
		}, mismatch},
		{"reinit: old group's last commit held no ReInit", reinit, func(t *testing.T, cfg Config) (*CommitResult, *gtMember, *Group) {
			gg := gtCreate(t, 1, riOldConfig, 3)
			s3 := gtSuite(t, 3)
			victim, other := riNext(t, gg.ms[1], s3), riNext(t, gg.ms[2], s3)
			p := successorParams{usage: reinit, suite: s3, groupID: []byte("new"), pskEpoch: gg.ms[0].g.Epoch()}
			res, err := gg.ms[0].g.createSuccessor(p, SuccessorOptions{Signer: gtSigner(t, s3), Members: []*KeyPackage{victim.kp, other.kp}}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			return res, victim, gg.ms[1].g
		}, []error{ErrInvalidWelcome, ErrNoReInit}},
		{"reinit: adds a client that was not in the old group", reinit, func(t *testing.T, cfg Config) (*CommitResult, *gtMember, *Group) {
			return riAttack(t, cfg, nil, func(f *riFixture) []*KeyPackage {
				return append(f.othersKPs(0), gtNewMember(t, f.to, "mallory").kp)
			})
		}, members},
		{"reinit: leaves a member out", reinit, func(t *testing.T, cfg Config) (*CommitResult, *gtMember, *Group) {
			return riAttack(t, cfg, nil, func(f *riFixture) []*KeyPackage { return []*KeyPackage{f.next[1].kp} })
		}, members},
		{"reinit: one member twice, another left out", reinit, func(t *testing.T, cfg Config) (*CommitResult, *gtMember, *Group) {
			return riAttack(t, cfg, nil, func(f *riFixture) []*KeyPackage {
				return []*KeyPackage{f.next[1].kp, riNext(t, f.gg.ms[1], f.to).kp}
			})
		}, members},
		{"reinit: epoch 2", reinit, func(t *testing.T, cfg Config) (*CommitResult, *gtMember, *Group) {
			f := newRIFixture(t, 1, 3)
			p := successorParams{usage: reinit, suite: f.to, groupID: f.ri.GroupID, extensions: f.ri.Extensions, pskEpoch: f.gg.ms[0].g.Epoch()}
			return atEpoch2(t, f.gg.ms[0].g, p, SuccessorOptions{Signer: f.next[0].signer, Members: f.othersKPs(0)}, cfg), f.next[1], f.gg.ms[1].g
		}, mismatch},
		{"reinit: PSK names another group", reinit, func(t *testing.T, cfg Config) (*CommitResult, *gtMember, *Group) {
			f := newRIFixture(t, 1, 3)
			old := f.gg.ms[0].g
			p := successorParams{usage: reinit, suite: f.to, groupID: f.ri.GroupID, extensions: f.ri.Extensions, pskEpoch: old.Epoch()}
			link, err := old.successorLink(reinit, old.Epoch())
			if err != nil {
				t.Fatal(err)
			}
			link.id.PSKGroupID = []byte("some other group")
			o := SuccessorOptions{Signer: f.next[0].signer, Members: f.othersKPs(0)}
			g0, err := old.newSuccessorGroup(p, o, cfg)
			if err != nil {
				t.Fatal(err)
			}
			res, err := g0.commitSuccessor(link, o)
			if err != nil {
				t.Fatal(err)
			}
			return res, f.next[1], f.gg.ms[1].g
		}, mismatch},
		{"reinit: an ordinary Welcome, without the reinit PSK", reinit, func(t *testing.T, cfg Config) (*CommitResult, *gtMember, *Group) {
			f := newRIFixture(t, 1, 3)
			c := riNext(t, f.gg.ms[0], f.to)
			g, err := CreateGroup(f.to, c.signer, f.ri.GroupID, LeafOptions{Credential: c.cred}, f.ri.Extensions, cfg)
			if err != nil {
				t.Fatal(err)
			}
			res, err := g.Commit(CommitOptions{Add: f.othersKPs(0)})
			if err != nil {
				t.Fatal(err)
			}
			return res, f.next[1], f.gg.ms[1].g
		}, mismatch},
		{"reinit: Welcome joined as a branch", branch, func(t *testing.T, cfg Config) (*CommitResult, *gtMember, *Group) {
			return riAttack(t, cfg, nil, nil)
		}, mismatch},
		{"branch: adds a client that was not in the old group", branch, func(t *testing.T, cfg Config) (*CommitResult, *gtMember, *Group) {
			return branchAttack(t, cfg, nil, func(gg *gtGroup) []*KeyPackage { return []*KeyPackage{gtNewMember(t, gg.s, "mallory").kp} })
		}, members},
		{"branch: another suite", branch, func(t *testing.T, cfg Config) (*CommitResult, *gtMember, *Group) {
			return branchAttack(t, cfg, func(gg *gtGroup, p *successorParams) { p.suite = gtSuite(t, 3) }, nil)
		}, mismatch},
		{"branch: the old group's id", branch, func(t *testing.T, cfg Config) (*CommitResult, *gtMember, *Group) {
			return branchAttack(t, cfg, func(gg *gtGroup, p *successorParams) { p.groupID = gg.ms[0].g.GroupID() }, nil)
		}, mismatch},
		{"branch: PSK of an epoch the joiner does not know", branch, func(t *testing.T, cfg Config) (*CommitResult, *gtMember, *Group) {
			return branchAttack(t, cfg, func(gg *gtGroup, p *successorParams) {
				// Member 0 keeps the epoch; the victim's copy moves on past retention.
				keep := gg.ms[0].g
				for range DefaultMaxPastEpochs + 2 {
					gg.commit(1, CommitOptions{})
				}
				gg.ms[0].g = keep
			}, nil)
		}, []error{ErrMissingPSK}},
		{"branch: epoch 2", branch, func(t *testing.T, cfg Config) (*CommitResult, *gtMember, *Group) {
			gg := gtCreate(t, 1, riOldConfig, 3)
			victim, other := riNext(t, gg.ms[1], gg.s), riNext(t, gg.ms[2], gg.s)
			p := successorParams{usage: branch, suite: gg.s, pskEpoch: gg.ms[0].g.Epoch()}
			return atEpoch2(t, gg.ms[0].g, p, SuccessorOptions{Members: []*KeyPackage{victim.kp, other.kp}}, cfg), victim, gg.ms[1].g
		}, mismatch},
		{"branch: Welcome joined as a reinit", reinit, func(t *testing.T, cfg Config) (*CommitResult, *gtMember, *Group) {
			return branchAttack(t, cfg, nil, nil)
		}, mismatch},
	}
}

// TestSuccessorAttacks: each hostile successor Welcome is refused by the
// joiner with the sentinels listed, and the old group is unchanged.
func TestSuccessorAttacks(t *testing.T) {
	for _, c := range successorAttacks() {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{RatchetTreeInWelcome: true}
			res, victim, old := c.run(t, cfg)
			snap := gtSnapshot(old)
			w, rt := riWelcome(t, res, cfg)
			join := JoinReInitWelcome
			if c.usage == schedule.UsageBranch {
				join = JoinBranchWelcome
			}
			_, err := join(w, rt, victim.finder(t), old, cfg)
			for _, want := range c.want {
				gtExpectErr(t, err, want)
			}
			if !snap.equal(gtSnapshot(old)) {
				t.Fatal("the old group changed")
			}
		})
	}
}

// TestSuccessorTwoLinkPSKs: a Welcome listing two reinit/branch PSKs is
// refused before anything else is opened (RFC 9420 §12.4.3.1).
func TestSuccessorTwoLinkPSKs(t *testing.T) {
	cfg := Config{RatchetTreeInWelcome: true}
	f := newRIFixture(t, 1, 3)
	res := f.create(t, 0, cfg)
	old := f.gg.ms[1].g
	s := f.to
	ids := make([]schedule.PreSharedKeyID, 2)
	for i, u := range []schedule.ResumptionPSKUsage{schedule.UsageReinit, schedule.UsageBranch} {
		ids[i] = schedule.PreSharedKeyID{Type: schedule.PSKTypeResumption, Usage: u, PSKGroupID: old.GroupID(), PSKEpoch: old.Epoch(), Nonce: make([]byte, s.HashSize())}
		rand.Read(ids[i].Nonce)
	}
	secret := make([]byte, s.HashSize())
	rand.Read(secret)
	w, err := newWelcome(s, res.GroupInfo, secret, secret, ids, []welcomeRecipient{{KeyPackage: f.next[1].kp}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = JoinReInitWelcome(w, nil, f.next[1].finder(t), old, cfg)
	gtExpectErr(t, err, schedule.ErrInvalidPSK)
	_, err = JoinReInitWelcome(w, nil, f.next[1].finder(t), nil, cfg)
	gtExpectErr(t, err, ErrOldGroupRequired)
}

func gtEnc(t testing.TB, v wire.Marshaler) []byte {
	t.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzJoinReInitWelcome: a mangled reinit Welcome never panics, never
// changes the old group, and is refused unless it is the honest one.
func FuzzJoinReInitWelcome(f *testing.F) {
	fx := newRIFixture(f, 1, 3)
	res := fx.create(f, 0, riOldConfig)
	honest := gtEnc(f, res.Welcome)
	f.Add(honest)
	f.Add(honest[:len(honest)/2])
	old := fx.gg.ms[1].g
	find := fx.next[1].finder(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		snap := gtSnapshot(old)
		var w Welcome
		if err := wire.Unmarshal(data, &w); err != nil {
			return
		}
		_, err := JoinReInitWelcome(&w, nil, find, old, riOldConfig)
		if err != nil && bytes.Equal(data, honest) {
			t.Fatalf("honest welcome refused: %v", err)
		}
		if !snap.equal(gtSnapshot(old)) {
			t.Fatal("the old group changed")
		}
	})
}
