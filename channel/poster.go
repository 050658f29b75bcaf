package channel

import (
	"context"
	"fmt"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Two-step commits for a delivery service that orders commits (RFC 9750
// §5.2, strongly consistent delivery): a commit is created, handed to a
// CommitPoster, and merged only if the poster returns nil. If the poster
// fails the group stays in its epoch (the provider keeps the unmerged
// commit as its pending commit until the next commit or processed commit
// replaces it), and the caller may process the winning commit and retry.

// OutgoingCommit is a commit created but not merged yet.
type OutgoingCommit struct {
	ChannelID string
	GroupID   []byte
	// Epoch is the epoch the commit is sent in (the group's current one);
	// merging it starts Epoch+1.
	Epoch       uint64
	Commit      []byte // MLSMessage
	Welcome     []byte // MLSMessage(Welcome), nil when nobody is added
	RatchetTree []byte // the new epoch's tree (RatchetTreeNodes), for Welcomes
	// GroupInfo is the new epoch's signed GroupInfo (MLSMessage) with
	// external_pub and the ratchet tree, for external joins (RFC 9420 §12.4.3.2).
	GroupInfo []byte
	// Added and Removed are the members the commit adds and removes.
	Added, Removed []Member
}

// CommitPoster delivers a commit before it is merged. Returning an error
// aborts the merge; the error reaches the caller of the Manager method. It
// is fixed when the Manager is made (Options.CommitPoster), never switched
// per call.
type CommitPoster func(ctx context.Context, c *OutgoingCommit) error

// commit creates a commit and merges it, posting it in between when the
// adapter has a CommitPoster (Options.CommitPoster).
func (a *mlsGroupProvider) commit(ctx context.Context, groupID []byte, o mls.CommitOptions) (*mls.CommitResult, error) {
	post := a.post
	if post == nil {
		return a.p.CommitNow(ctx, groupID, o)
	}
	before, err := a.snapshot(ctx, groupID)
	if err != nil {
		return nil, err
	}
	pc, err := a.p.Commit(ctx, groupID, o)
	if err != nil {
		return nil, err
	}
	res := pc.Result
	oc := &OutgoingCommit{ChannelID: ChannelID(groupID), GroupID: groupID, Epoch: res.State.Epoch() - 1}
	if oc.Commit, err = wire.Marshal(res.Commit); err != nil {
		return nil, err
	}
	if res.Welcome != nil {
		if oc.Welcome, err = marshalMessage(res.Welcome); err != nil {
			return nil, err
		}
		if oc.RatchetTree, err = wire.Marshal(res.RatchetTree.Trimmed()); err != nil {
			return nil, err
		}
	}
	// Not res.GroupInfo: that one is the Welcome's, which may carry the
	// channel info and lacks the tree. The relay gets the public one.
	gi, err := res.State.GroupInfo(true)
	if err != nil {
		return nil, fmt.Errorf("channel: group info: %w", err)
	}
	if oc.GroupInfo, err = marshalMessage(gi); err != nil {
		return nil, err
	}
	oc.Added, oc.Removed = a.diffMembers(before, snapshotOf(res.State))
	if err := post(ctx, oc); err != nil {
		return nil, err
	}
	// Accepted: merge even if the caller gave up meanwhile, or the group
	// would stay behind the delivery service.
	if err := a.p.MergeCommit(context.WithoutCancel(ctx), pc); err != nil {
		return nil, fmt.Errorf("channel: merge posted commit: %w", err)
	}
	return res, nil
}
