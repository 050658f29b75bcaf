package mls

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Reinitialization and subgroup branching (RFC 9420 §11.2, §11.3): creating
// a group that continues another, linked to it by a resumption PSK of usage
// reinit or branch, and checking such a group when joining it (§12.4.3.1).
//
// A reinit or branch PSK may appear only in the first commit of the new
// group (§8.6, §12.1.4): ReInitGroup and Branch make that commit; every
// other commit refuses it. A Welcome that carries one is joined only with
// the old group at hand (JoinReInitWelcome, JoinBranchWelcome), which
// supplies the PSK and is what the new group is checked against;
// JoinFromWelcome refuses it with ErrOldGroupRequired.
//
// Members are matched across the two groups by their credential (§11.2,
// §11.3: "according to the application"): two leaves match when their
// encoded credentials are equal — for a basic credential, the same
// identity. Signature and encryption keys are not compared: they change
// with the cipher suite, and every member has a fresh leaf in the new
// group. Leaves are counted, so a client with two leaves in the old group
// has two in the new one (reinit) or at most two (branch). An application
// whose credentials change with the signature key (an X.509 certificate
// bound to it) cannot reinitialize to another suite under this rule.

// Errors of reinitialization and branching. The join errors also wrap
// ErrInvalidWelcome.
var (
	// ErrOldGroupRequired: a Welcome injects a reinit or branch resumption
	// PSK but was not joined with the old group to check it against (from
	// JoinFromWelcome, it also wraps ErrInvalidWelcome).
	ErrOldGroupRequired = errors.New("mls: welcome of a reinitialized or branched group needs the old group (JoinReInitWelcome, JoinBranchWelcome)")
	// ErrNoReInit: the old group's last commit held no ReInit proposal
	// (RFC 9420 §12.4.3.1).
	ErrNoReInit = errors.New("mls: the old group's last commit held no ReInit")
	// ErrSuccessorMismatch: the new group does not match the ReInit or the
	// old group it names: group id, version, cipher suite, extensions,
	// epoch or linking PSK (RFC 9420 §11.2, §11.3, §12.4.3.1).
	ErrSuccessorMismatch = errors.New("mls: new group does not match the group it continues")
	// ErrSuccessorMembers: the new group's members are not those of the old
	// group (reinit) or not a subset of them (branch).
	ErrSuccessorMembers = errors.New("mls: new group's members do not match the old group's")
)

// SuccessorOptions describe the creator's side of a group that continues
// another: its own leaf and the members it adds (ReInitGroup, Branch).
type SuccessorOptions struct {
	// Signer is the creator's signature key in the new group. Nil means
	// its key in the old group, which is allowed only when the cipher
	// suite does not change.
	Signer *suite.Signer
	// Leaf describes the creator's new leaf; a zero Credential means its
	// credential in the old group.
	Leaf LeafOptions
	// Members are the KeyPackages, of the new group's suite, of the other
	// members to add: for a reinit, one for each other leaf of the old
	// group; for a branch, those of the chosen subset.
	Members []*KeyPackage
	// NoPath omits the UpdatePath of the first commit.
	NoPath bool
	// GroupInfoExtensions go into the GroupInfo of the Welcome (as
	// CommitOptions.GroupInfoExtensions).
	GroupInfoExtensions tree.Extensions
}

// ReInitGroup creates the group that reinitializes g once a commit with a
// ReInit proposal has been merged or processed (RFC 9420 §11.2): a new group
// with the ReInit's group_id, version, cipher_suite and extensions, whose
// first commit adds o.Members and injects the resumption PSK of usage reinit
// of g's final epoch. Any member of g may call it, not only the one that
// committed the ReInit. cfg configures the new group.
//
// The result's Welcome goes to the other members, who join with
// JoinReInitWelcome; its Commit has no recipients (nobody else is in the
// new group's epoch 0). State is the new group at epoch 1: persist it, and
// keep g (now frozen) as long as members may still join.
func (g *Group) ReInitGroup(o SuccessorOptions, cfg Config) (*CommitResult, error) {
	if g.removed {
		return nil, ErrNotMember
	}
	ri := g.reinit
	if ri == nil {
		return nil, ErrNoReInit
	}
	if ri.Version != tree.ProtocolVersionMLS10 {
		return nil, fmt.Errorf("%w: ReInit to version %d", ErrUnsupportedVersion, ri.Version)
	}
	s, err := suite.New(ri.CipherSuite)
	if err != nil {
		return nil, fmt.Errorf("%w: ReInit suite: %w", ErrSuccessorMismatch, err)
	}
	res, err := g.createSuccessor(successorParams{usage: schedule.UsageReinit, suite: s,
		groupID: ri.GroupID, extensions: ri.Extensions, pskEpoch: g.ctx.Epoch}, o, cfg)
	if err != nil {
		return nil, err
	}
	if err := matchMembers(g.tree, res.State.tree, schedule.UsageReinit); err != nil {
		return nil, err
	}
	return res, nil
}

// Branch creates a subgroup of g (RFC 9420 §11.3): a new group of the same
// version and cipher suite with groupID (nil: random) and extensions, whose
// first commit adds o.Members — members of g, with new KeyPackages — and
// injects the resumption PSK of usage branch of g's current epoch. g is not
// changed and stays in use. cfg configures the new group.
//
// The result's Welcome goes to the chosen members, who join with
// JoinBranchWelcome; State is the new group at epoch 1.
func (g *Group) Branch(groupID []byte, extensions tree.Extensions, o SuccessorOptions, cfg Config) (*CommitResult, error) {
	if err := g.canSend(); err != nil {
		return nil, err
	}
	if groupID != nil && bytes.Equal(groupID, g.ctx.GroupID) {
		return nil, fmt.Errorf("%w: a branch needs a group id of its own", ErrSuccessorMismatch)
	}
	res, err := g.createSuccessor(successorParams{usage: schedule.UsageBranch, suite: g.suite,
		groupID: groupID, extensions: extensions, pskEpoch: g.ctx.Epoch}, o, cfg)
	if err != nil {
		return nil, err
	}
	if err := matchMembers(g.tree, res.State.tree, schedule.UsageBranch); err != nil {
		return nil, err
	}
	return res, nil
}

// successorParams say what the new group is and which epoch of the old one
// links it.
type successorParams struct {
	usage      schedule.ResumptionPSKUsage
	suite      *suite.Suite
	groupID    []byte // nil: random
	extensions tree.Extensions
	pskEpoch   uint64
}

// createSuccessor makes the new group and its first commit, without the
// membership check.
func (g *Group) createSuccessor(p successorParams, o SuccessorOptions, cfg Config) (*CommitResult, error) {
	link, err := g.successorLink(p.usage, p.pskEpoch)
	if err != nil {
		return nil, err
	}
	g0, err := g.newSuccessorGroup(p, o, cfg)
	if err != nil {
		return nil, err
	}
	return g0.commitSuccessor(link, o)
}

// newSuccessorGroup creates the new group at epoch 0 with the creator alone.
func (g *Group) newSuccessorGroup(p successorParams, o SuccessorOptions, cfg Config) (*Group, error) {
	signer := o.Signer
	if signer == nil {
		if p.suite.ID() != g.suite.ID() {
			return nil, fmt.Errorf("%w: the new suite %v needs a signer of its own (SuccessorOptions.Signer)", ErrSuccessorMismatch, p.suite.ID())
		}
		signer = g.signer
	}
	leaf := o.Leaf
	if leaf.Credential.CredentialType == 0 {
		leaf.Credential = g.tree.Leaf(g.myLeaf).Credential
	}
	groupID := p.groupID
	if groupID != nil {
		groupID = append([]byte{}, groupID...) // an empty id stays empty, not random
	}
	return CreateGroup(p.suite, signer, groupID, leaf, slices.Clone(p.extensions), cfg)
}

// commitSuccessor has g0, a new group, commit the Adds of o with the
// linking PSK: the one commit allowed to inject it.
func (g0 *Group) commitSuccessor(link *successorPSK, o SuccessorOptions) (*CommitResult, error) {
	link.id.Nonce = make([]byte, g0.suite.HashSize()) // §8.4: fresh, KDF.Nh of the new group
	if _, err := io.ReadFull(g0.cfg.rand(), link.id.Nonce); err != nil {
		return nil, err
	}
	g0.successor = link
	defer func() { g0.successor = nil }()
	res, err := g0.Commit(CommitOptions{Add: o.Members, PSKs: []schedule.PreSharedKeyID{link.id}, SkipPending: true,
		NoPath: o.NoPath, GroupInfoExtensions: o.GroupInfoExtensions})
	if err != nil {
		return nil, err
	}
	res.State.successor = nil
	return res, nil
}

// successorPSK is the reinit or branch resumption PSK that the first
// commit of a new group may inject, with its secret from the old group.
type successorPSK struct {
	id     schedule.PreSharedKeyID
	secret []byte
}

// successorLink returns the resumption PSK of usage u of g's epoch.
func (g *Group) successorLink(u schedule.ResumptionPSKUsage, epoch uint64) (*successorPSK, error) {
	sec, ok := g.resumption[epoch]
	if !ok {
		return nil, fmt.Errorf("%w: resumption PSK of epoch %d is not kept", ErrMissingPSK, epoch)
	}
	return &successorPSK{secret: sec, id: schedule.PreSharedKeyID{Type: schedule.PSKTypeResumption, Usage: u,
		PSKGroupID: slices.Clone(g.ctx.GroupID), PSKEpoch: epoch}}, nil
}

// isSuccessorPSK reports whether id is a resumption PSK of usage reinit or
// branch.
func isSuccessorPSK(id *schedule.PreSharedKeyID) bool {
	return id.Type == schedule.PSKTypeResumption && id.Usage != schedule.UsageApplication
}

// successorPSKAllowed reports whether a PreSharedKey proposal for id is
// valid in a commit of g: a reinit or branch PSK only in the first commit of
// a new group made by ReInitGroup or Branch (RFC 9420 §12.1.4).
func (g *Group) successorPSKAllowed(id *schedule.PreSharedKeyID) bool {
	return !isSuccessorPSK(id) || (g.successor != nil && g.successor.id.Equal(id))
}

// successorSecret returns the secret of the linking PSK id while g makes
// its first commit.
func (g *Group) successorSecret(id *schedule.PreSharedKeyID) ([]byte, bool) {
	if g.successor == nil || !g.successor.id.Equal(id) {
		return nil, false
	}
	return g.successor.secret, true
}

// --- joining (§12.4.3.1) ---

// JoinReInitWelcome joins the group that reinitializes old (RFC 9420
// §11.2), as JoinFromWelcome does, with the checks of §12.4.3.1: the
// Welcome's one reinit PSK names old's final epoch, whose commit held a
// ReInit; the new group's group_id, version, cipher_suite and extensions
// are the ReInit's; its epoch is 1; and its members are old's members
// (matched by credential). The PSK's secret comes from old, which is not
// changed. find must hold our KeyPackage of the new suite.
//
// The caller must still check that the group id is not one it is in,
// other than old (§12.4.3.1 MUST), and may then drop old.
func JoinReInitWelcome(w *Welcome, ratchetTree tree.RatchetTreeNodes, find KeyPackageFinder, old *Group, cfg Config) (*Joined, error) {
	return joinSuccessor(w, ratchetTree, find, old, schedule.UsageReinit, cfg)
}

// JoinBranchWelcome joins a subgroup branched from old (RFC 9420 §11.3),
// as JoinFromWelcome does, with the checks of §12.4.3.1: the Welcome's one
// branch PSK names an epoch of old this member still knows; the new group
// has old's version and cipher suite, another group id, epoch 1; and its
// members are a subset of old's members in that epoch (matched by
// credential). old is not changed and stays in use.
func JoinBranchWelcome(w *Welcome, ratchetTree tree.RatchetTreeNodes, find KeyPackageFinder, old *Group, cfg Config) (*Joined, error) {
	return joinSuccessor(w, ratchetTree, find, old, schedule.UsageBranch, cfg)
}

func joinSuccessor(w *Welcome, rt tree.RatchetTreeNodes, find KeyPackageFinder, old *Group, u schedule.ResumptionPSKUsage, cfg Config) (*Joined, error) {
	if old == nil {
		return nil, ErrOldGroupRequired
	}
	if old.removed {
		return nil, welcomeErrorf(ErrSuccessorMembers, "removed from the old group")
	}
	return joinWelcome(w, rt, find, cfg, &successorJoin{old: old, usage: u})
}

// successorJoin is what a Welcome of a reinitialized or branched group is
// checked against: the old group and the usage expected. A nil
// *successorJoin is a plain join.
type successorJoin struct {
	old   *Group
	usage schedule.ResumptionPSKUsage
	// found is set once the Welcome's linking PSK has been seen; epoch is
	// the old group's epoch it names.
	found bool
	epoch uint64
}

// psk returns the secret of a PSK listed in a Welcome's GroupSecrets. A
// reinit or branch PSK is taken from the old group, and only when there is
// one; any other is looked up through cfg.PSKs.
func (j *successorJoin) psk(id *schedule.PreSharedKeyID, cfg Config) ([]byte, error) {
	if !isSuccessorPSK(id) {
		if cfg.PSKs == nil {
			return nil, fmt.Errorf("%w: welcome needs a PSK and none are configured", ErrMissingPSK)
		}
		sec, err := cfg.PSKs(id)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMissingPSK, err)
		}
		return sec, nil
	}
	if j == nil {
		return nil, welcomeErrorf(ErrOldGroupRequired, "it holds a %v PSK", id.Usage)
	}
	old := j.old
	// decryptGroupSecrets let through at most one such PSK (§12.4.3.1).
	switch {
	case id.Usage != j.usage:
		return nil, welcomeErrorf(ErrSuccessorMismatch, "a %v PSK, joined as %v", id.Usage, j.usage)
	case !bytes.Equal(id.PSKGroupID, old.ctx.GroupID):
		return nil, welcomeErrorf(ErrSuccessorMismatch, "the PSK names another group than the old one")
	}
	if j.usage == schedule.UsageReinit {
		if old.reinit == nil {
			return nil, &welcomeError{ErrNoReInit}
		}
		// §11.2: "the epoch after the Commit covering the ReInit", which
		// is the old group's last (it processes no commit after it).
		if id.PSKEpoch != old.ctx.Epoch {
			return nil, welcomeErrorf(ErrSuccessorMismatch, "reinit PSK of epoch %d, the ReInit was committed into epoch %d",
				id.PSKEpoch, old.ctx.Epoch)
		}
	}
	sec, ok := old.resumption[id.PSKEpoch]
	if !ok {
		return nil, fmt.Errorf("%w: resumption PSK of the old group's epoch %d is not kept", ErrMissingPSK, id.PSKEpoch)
	}
	j.found, j.epoch = true, id.PSKEpoch
	return sec, nil
}

// check runs the checks of RFC 9420 §12.4.3.1 on the joined group's context
// gc and tree t (a nil j checks nothing).
func (j *successorJoin) check(gc *GroupContext, t *tree.Tree) error {
	if j == nil {
		return nil
	}
	if err := j.checkContext(gc); err != nil {
		return &welcomeError{err}
	}
	oldTree := j.old.treeOfEpoch(j.epoch)
	if oldTree == nil {
		return welcomeErrorf(ErrSuccessorMembers, "the members of the old group's epoch %d are no longer kept", j.epoch)
	}
	if err := matchMembers(oldTree, t, j.usage); err != nil {
		return &welcomeError{err}
	}
	return nil
}

// welcomeError is a refused reinit or branch Welcome: it is both
// ErrInvalidWelcome and the reason's sentinel, with one "mls:" prefix.
type welcomeError struct{ err error }

func welcomeErrorf(sentinel error, format string, args ...any) error {
	return &welcomeError{fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))}
}

func (e *welcomeError) Error() string {
	return ErrInvalidWelcome.Error() + ": " + strings.TrimPrefix(e.err.Error(), "mls: ")
}

func (e *welcomeError) Unwrap() []error { return []error{ErrInvalidWelcome, e.err} }

func (j *successorJoin) checkContext(gc *GroupContext) error {
	if !j.found {
		return fmt.Errorf("%w: the welcome holds no %v PSK", ErrSuccessorMismatch, j.usage)
	}
	if gc.Epoch != 1 {
		return fmt.Errorf("%w: a %v group starts at epoch 1, not %d", ErrSuccessorMismatch, j.usage, gc.Epoch)
	}
	old := j.old
	if j.usage == schedule.UsageBranch {
		switch {
		case gc.Version != old.ctx.Version || gc.CipherSuite != old.ctx.CipherSuite:
			return fmt.Errorf("%w: a branch keeps version and suite (%d, %v), not (%d, %v)",
				ErrSuccessorMismatch, old.ctx.Version, old.ctx.CipherSuite, gc.Version, gc.CipherSuite)
		case bytes.Equal(gc.GroupID, old.ctx.GroupID):
			return fmt.Errorf("%w: a branch has the old group's id", ErrSuccessorMismatch)
		}
		return nil
	}
	ri := old.reinit
	switch {
	case !bytes.Equal(gc.GroupID, ri.GroupID):
		return fmt.Errorf("%w: group id is not the ReInit's", ErrSuccessorMismatch)
	case gc.Version != ri.Version:
		return fmt.Errorf("%w: version %d, the ReInit's is %d", ErrSuccessorMismatch, gc.Version, ri.Version)
	case gc.CipherSuite != ri.CipherSuite:
		return fmt.Errorf("%w: suite %v, the ReInit's is %v", ErrSuccessorMismatch, gc.CipherSuite, ri.CipherSuite)
	}
	a, err1 := wire.Marshal(&gc.Extensions)
	b, err2 := wire.Marshal(&ri.Extensions)
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
		return fmt.Errorf("%w: extensions are not the ReInit's", ErrSuccessorMismatch)
	}
	return nil
}

// treeOfEpoch returns g's ratchet tree in epoch e, the current or a kept
// past one (nil: not kept).
func (g *Group) treeOfEpoch(e uint64) *tree.Tree {
	if e == g.ctx.Epoch {
		return g.tree
	}
	for _, pe := range g.past {
		if pe.ctx.Epoch == e {
			return pe.tree
		}
	}
	return nil
}

// matchMembers checks the new group's leaves against the old group's:
// the same clients for a reinit (§11.2: "all the members of the old group
// are also members of the new group", and no one else: "the same
// membership"), a subset for a branch (§11.3). Leaves match by encoded
// credential (see the top of this file).
func matchMembers(oldTree, newTree *tree.Tree, u schedule.ResumptionPSKUsage) error {
	left := map[string]int{}
	for i := range tree.LeafIndex(oldTree.NumLeaves()) {
		if l := oldTree.Leaf(i); l != nil {
			k, err := wire.Marshal(&l.Credential)
			if err != nil {
				return err
			}
			left[string(k)]++
		}
	}
	for i := range tree.LeafIndex(newTree.NumLeaves()) {
		l := newTree.Leaf(i)
		if l == nil {
			continue
		}
		k, err := wire.Marshal(&l.Credential)
		if err != nil {
			return err
		}
		if left[string(k)] == 0 {
			return fmt.Errorf("%w: leaf %d of the new group matches no (remaining) member of the old one", ErrSuccessorMembers, i)
		}
		left[string(k)]--
	}
	if u == schedule.UsageReinit {
		missing := 0
		for _, n := range left {
			missing += n
		}
		if missing > 0 {
			return fmt.Errorf("%w: %d member(s) of the old group left out of the reinitialized group", ErrSuccessorMembers, missing)
		}
	}
	return nil
}

// --- the old group ---

// checkNotFrozen refuses a proposal or commit received after a committed
// ReInit: the group waits for the new one (RFC 9420 §12.1.5), and its last
// commit stays the one that held the ReInit (§12.4.3.1).
func (g *Group) checkNotFrozen(ct ContentType) error {
	if g.reinit != nil && ct != ContentTypeApplication {
		return fmt.Errorf("%w: a %v after the committed ReInit", ErrReInitPending, ct)
	}
	return nil
}

// checkReInitRef checks that ref names a cached ReInit proposal
// (CommitOptions.ReInitRef).
func (g *Group) checkReInitRef(ref []byte) error {
	i := slices.IndexFunc(g.pending, func(pp *pendingProposal) bool { return bytes.Equal(pp.ref, ref) })
	if i < 0 {
		return fmt.Errorf("%w: %x", ErrUnknownProposal, ref)
	}
	if t := g.pending[i].proposal.ProposalType; t != tree.ProposalTypeReInit {
		return fmt.Errorf("%w: ReInitRef names a %v proposal", ErrInvalidProposal, t)
	}
	return nil
}
