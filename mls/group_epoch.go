package mls

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// Entering an epoch (RFC 9420 §8, §8.2, §9, §9.2). Every way into an epoch
// ends in setUpEpoch: creating a group, committing, processing a commit,
// joining from a Welcome, joining by external commit (and the first epoch
// of a ReInit or branch successor, which is one of these). The key
// schedule, the confirmation tag, the interim transcript hash, the secret
// tree, the deletion of consumed secrets and the resumption PSKs kept are
// done there and nowhere else.
//
// stageNextEpoch is the one step from a staged commit (proposals applied,
// path merged) to the next epoch's state, shared by the committer (Commit)
// and the receivers (processCommit).

// ErrEpochLimit: the group is at epoch 2^64-1 and cannot advance (the
// epoch counter would wrap to 0, RFC 9420 §12).
var ErrEpochLimit = errors.New("mls: the group is at its last epoch")

// nextEpochNumber returns epoch+1, refusing to wrap.
func nextEpochNumber(epoch uint64) (uint64, error) {
	if epoch == math.MaxUint64 {
		return 0, fmt.Errorf("%w: epoch %d", ErrEpochLimit, epoch)
	}
	return epoch + 1, nil
}

// epochInput is what the key schedule of an epoch starts from (§8).
type epochInput struct {
	// initSecret (the previous epoch's, random for a new group, or the
	// external init secret) and commitSecret (nil: all zero) start a
	// created or committed epoch. joinerSecret, when set, replaces both: a
	// Welcome carries it.
	initSecret, commitSecret, joinerSecret []byte
	pskSecret                              []byte
	// confirmationTag, when set, is the tag the epoch must have (a received
	// commit, a Welcome's GroupInfo); it is verified in constant time. Nil:
	// the tag is computed (creating, committing, joining externally).
	confirmationTag []byte
	// welcome, when set, runs once the epoch is set up, while its
	// joiner_secret and welcome_secret still exist (the committer builds
	// its Welcome there); they are erased when it returns.
	welcome func(g *Group, joinerSecret, welcomeSecret []byte) error
}

// setUpEpoch derives g's epoch from in. g holds the epoch's GroupContext
// (with its confirmed transcript hash) and tree. On return g holds the
// epoch secrets, the confirmation tag, the interim transcript hash and the
// secret tree, and this epoch's resumption PSK among the recent ones. The
// encryption secret, joiner secret and welcome secret are erased (§9.2),
// also when it fails, and so are in.commitSecret and in.pskSecret: they are
// consumed. in.initSecret is left alone: for a commit it belongs to the
// previous epoch's state, which stays usable until the caller adopts the
// new one.
func (g *Group) setUpEpoch(in epochInput) error {
	s := g.suite
	var sec *schedule.EpochSecrets
	var err error
	if in.joinerSecret != nil {
		sec, err = schedule.Derive(s, in.joinerSecret, in.pskSecret, g.ctxBytes)
	} else {
		sec, err = schedule.NewEpoch(s, in.initSecret, in.commitSecret, in.pskSecret, g.ctxBytes)
	}
	if err != nil {
		return err
	}
	defer func() {
		sec.ForgetEncryptionSecret() // the secret tree holds what is needed
		sec.ForgetJoiner()
		clear(in.commitSecret)
		clear(in.pskSecret)
	}()
	confirmed := g.ctx.ConfirmedTranscriptHash
	tag := in.confirmationTag
	if tag == nil {
		tag = s.MAC(sec.ConfirmationKey, confirmed)
	} else if err := verifyConfirmationTag(s, tag, sec.ConfirmationKey, confirmed); err != nil {
		return err
	}
	interim, err := NextInterimTranscriptHash(s, confirmed, tag)
	if err != nil {
		return err
	}
	st, err := schedule.NewSecretTree(s, sec.EncryptionSecret, g.tree.NumLeaves(), g.cfg.SecretTree)
	if err != nil {
		return err
	}
	g.secrets, g.secretTree, g.confirmationTag, g.interim = sec, st, slices.Clone(tag), interim
	g.keepResumptionPSK()
	if in.welcome != nil {
		return in.welcome(g, sec.JoinerSecret, sec.WelcomeSecret)
	}
	return nil
}

// keepResumptionPSK records this epoch's resumption PSK (§8.6) and drops
// those older than the epochs kept (at least one back).
func (g *Group) keepResumptionPSK() {
	epoch := g.ctx.Epoch
	if g.resumption == nil {
		g.resumption = map[uint64][]byte{}
	}
	g.resumption[epoch] = g.secrets.ResumptionPSK
	keep := uint64(max(g.cfg.maxPast(), 1))
	for e := range g.resumption {
		if e > epoch || epoch-e > keep {
			delete(g.resumption, e)
		}
	}
}

// stagedCommit is a commit between its proposals and its new epoch.
type stagedCommit struct {
	*applied
	pskSecret []byte
	// tree is the new epoch's tree (proposals applied, path merged) and
	// keys the member's private keys in it.
	tree *tree.Tree
	keys tree.PrivateKeys
	// commitSecret comes from the path (nil: none); initSecret is the
	// previous epoch's, or the external init secret.
	commitSecret, initSecret []byte
	// confirmationTag is the received commit's (nil when committing).
	confirmationTag []byte
	// welcome builds the committer's Welcome (see epochInput.welcome).
	welcome func(g *Group, joinerSecret, welcomeSecret []byte) error
}

// provisionalContext is the GroupContext of the next epoch before its
// transcript hash (§12.4.1, §12.4.2): next epoch, new extensions, the tree
// hash of t, the current confirmed transcript hash.
func (g *Group) provisionalContext(ext tree.Extensions, t *tree.Tree) (GroupContext, error) {
	ctx := g.ctx
	var err error
	if ctx.Epoch, err = nextEpochNumber(g.ctx.Epoch); err != nil {
		return ctx, err
	}
	ctx.Extensions = ext
	ctx.TreeHash = t.TreeHash(g.suite)
	return ctx, nil
}

// nextContext is the GroupContext of the epoch a staged commit starts
// (§12.4.1, §12.4.2, §8.2): next epoch, new extensions, the new tree's
// hash, the confirmed transcript hash over ac (enc, when not nil, is its
// encoding). Shared with PublicGroup.ProcessCommit.
func (g *Group) nextContext(ac *AuthenticatedContent, enc *contentEncoding, sc *stagedCommit) (GroupContext, error) {
	ctx, err := g.provisionalContext(sc.extensions, sc.tree)
	if err != nil {
		return ctx, err
	}
	ctx.ConfirmedTranscriptHash, err = nextConfirmedTranscriptHashEnc(g.suite, g.interim, ac, enc)
	return ctx, err
}

// stageNextEpoch builds the state of the epoch a commit starts (§12.4.1,
// §12.4.2): the new GroupContext with the transcript hash over ac (enc, when
// not nil, is its encoding), the key schedule (setUpEpoch), and what a new
// epoch resets: pending proposals, own updates, the send reservation, the
// past epochs kept for late messages. g is not modified.
func (g *Group) stageNextEpoch(ac *AuthenticatedContent, enc *contentEncoding, sc *stagedCommit) (*Group, error) {
	ctx, err := g.nextContext(ac, enc, sc)
	if err != nil {
		return nil, err
	}
	next := g.clone()
	next.tree, next.keys = sc.tree, sc.keys
	if err := next.setContext(ctx); err != nil {
		return nil, err
	}
	if err := next.setUpEpoch(epochInput{initSecret: sc.initSecret, commitSecret: sc.commitSecret, pskSecret: sc.pskSecret,
		confirmationTag: sc.confirmationTag, welcome: sc.welcome}); err != nil {
		return nil, err
	}
	next.pending, next.ownUpdates = nil, nil
	next.sendMark, next.sendNeedsSave = 0, false // a new secret tree: nothing reserved yet
	if sc.reinit != nil {
		next.reinit = sc.reinit
	}
	// Keep this epoch to open late application messages (§14), bounded.
	if max := g.cfg.maxPast(); max > 0 {
		next.past = append(next.past, &pastEpoch{ctx: g.ctx, ctxBytes: g.ctxBytes, tree: g.tree,
			secretTree: g.secretTree, senderData: g.secrets.SenderDataSecret})
		if len(next.past) > max {
			next.past = slices.Clone(next.past[len(next.past)-max:])
		}
	}
	return next, nil
}
