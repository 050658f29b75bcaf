package mlsclient

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spacepanda/spacepanda/interop/mlsclient/mlspb"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// joinTx is a KeyPackage waiting for its Welcome (a transaction_id).
type joinTx struct {
	mu       sync.Mutex
	identity []byte
	bundle   *mls.KeyPackageBundle
	ref      mls.KeyPackageRef
	psks     pskStore
}

// newSigner makes a fresh signature key of cs.
func newSigner(cs *suite.Suite) (*suite.Signer, []byte, error) {
	priv, _, err := cs.GenerateSignatureKeyPair(nil)
	if err != nil {
		return nil, nil, status.Errorf(codes.Internal, "signature key: %v", err)
	}
	sg, err := cs.NewSigner(priv)
	if err != nil {
		return nil, nil, status.Errorf(codes.Internal, "signature key: %v", err)
	}
	return sg, priv, nil
}

// CreateGroup creates a one-member group with a basic credential.
func (s *Server) CreateGroup(_ context.Context, r *mlspb.CreateGroupRequest) (*mlspb.CreateGroupResponse, error) {
	cs, err := suiteOf(r.CipherSuite)
	if err != nil {
		return nil, err
	}
	signer, _, err := newSigner(cs)
	if err != nil {
		return nil, err
	}
	st := &state{identity: bytes.Clone(r.Identity), suite: cs, signer: signer, encrypt: r.EncryptHandshake,
		psks: pskStore{}, treeInWelcome: true}
	g, err := mls.CreateGroup(cs, signer, r.GroupId, mls.LeafOptions{Credential: tree.NewBasicCredential(r.Identity)}, nil,
		s.config(st, st.treeInWelcome))
	if err != nil {
		return nil, engineError("create group", err)
	}
	st.groupID = g.GroupID()
	return &mlspb.CreateGroupResponse{StateId: s.newState(st, g)}, nil
}

// newKeyPackage makes a KeyPackage of cs for identity with a fresh
// signature key, and registers the pending join.
func (s *Server) newKeyPackage(cs *suite.Suite, identity []byte) (*joinTx, uint32, []byte, error) {
	signer, sigPriv, err := newSigner(cs)
	if err != nil {
		return nil, 0, nil, err
	}
	kp, priv, err := mls.NewKeyPackage(cs, nil, signer, tree.NewBasicCredential(identity), mls.KeyPackageOptions{})
	if err != nil {
		return nil, 0, nil, engineError("key package", err)
	}
	ref, err := kp.Ref(cs)
	if err != nil {
		return nil, 0, nil, engineError("key package", err)
	}
	tx := &joinTx{identity: bytes.Clone(identity), ref: ref, psks: pskStore{},
		bundle: &mls.KeyPackageBundle{KeyPackage: kp, Private: priv, Signer: signer}}
	return tx, s.add(tx), sigPriv, nil
}

// CreateKeyPackage makes a KeyPackage (as an MLSMessage) and returns its
// private keys with the transaction id JoinGroup takes.
func (s *Server) CreateKeyPackage(_ context.Context, r *mlspb.CreateKeyPackageRequest) (*mlspb.CreateKeyPackageResponse, error) {
	cs, err := suiteOf(r.CipherSuite)
	if err != nil {
		return nil, err
	}
	tx, id, sigPriv, err := s.newKeyPackage(cs, r.Identity)
	if err != nil {
		return nil, err
	}
	kp, err := encodeMessage(tx.bundle.KeyPackage)
	if err != nil {
		return nil, err
	}
	return &mlspb.CreateKeyPackageResponse{TransactionId: id, KeyPackage: kp,
		InitPriv: tx.bundle.Private.InitKey, EncryptionPriv: tx.bundle.Private.EncryptionKey, SignaturePriv: sigPriv}, nil
}

// JoinGroup joins from a Welcome with the KeyPackage of a transaction,
// which it consumes.
func (s *Server) JoinGroup(_ context.Context, r *mlspb.JoinGroupRequest) (*mlspb.JoinGroupResponse, error) {
	tx, err := lookup[*joinTx](s, r.TransactionId, "transaction")
	if err != nil {
		return nil, err
	}
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.bundle == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "transaction %d was used", r.TransactionId)
	}
	m, err := decodeMessage(r.Welcome, mls.WireFormatWelcome)
	if err != nil {
		return nil, err
	}
	rt, err := decodeTree(r.RatchetTree)
	if err != nil {
		return nil, err
	}
	st := &state{identity: tx.identity, suite: suite.MustNew(tx.bundle.KeyPackage.CipherSuite), signer: tx.bundle.Signer,
		encrypt: r.EncryptHandshake, psks: maps.Clone(tx.psks), treeInWelcome: true}
	find := func(ref mls.KeyPackageRef) (*mls.KeyPackageBundle, error) {
		if bytes.Equal(ref, tx.ref) {
			return tx.bundle, nil
		}
		return nil, mls.ErrKeyPackageNotFound
	}
	j, err := mls.JoinFromWelcome(m.Welcome, rt, find, s.config(st, st.treeInWelcome))
	if err != nil {
		return nil, engineError("join", err)
	}
	// RFC 9420 §12.4.3.1 forbids a client to join a group it is in. Here a
	// transaction is a client of its own (the harness's actor), new to
	// every group; an actor's earlier states are other clients.
	st.groupID = j.Group.GroupID()
	tx.bundle = nil
	s.remove(r.TransactionId)
	return &mlspb.JoinGroupResponse{StateId: s.newState(st, j.Group), EpochAuthenticator: j.Group.EpochAuthenticator()}, nil
}

// ExternalJoin joins by external commit (RFC 9420 §12.4.3.2) under a
// fresh signature key. With remove_prior the commit removes the member
// whose basic credential has the joiner's identity (a resync, §12.2); psks
// are external PSKs the commit injects (and the new state keeps).
func (s *Server) ExternalJoin(_ context.Context, r *mlspb.ExternalJoinRequest) (*mlspb.ExternalJoinResponse, error) {
	gi, t, err := verifiedGroupInfo(r.GroupInfo, r.RatchetTree)
	if err != nil {
		return nil, err
	}
	cs := suite.MustNew(gi.GroupContext.CipherSuite)
	rt, err := decodeTree(r.RatchetTree)
	if err != nil {
		return nil, err
	}
	signer, _, err := newSigner(cs)
	if err != nil {
		return nil, err
	}
	st := &state{identity: bytes.Clone(r.Identity), suite: cs, signer: signer, encrypt: r.EncryptHandshake,
		psks: pskStore{}, treeInWelcome: true, groupID: gi.GroupContext.GroupID}
	var o mls.ExternalCommitOptions
	if r.RemovePrior {
		prior, err := proposalScope{members: treeMembers(t)}.leafOf(r.Identity)
		if err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "external join: remove_prior: %v", status.Convert(err).Message())
		}
		o.RemovePrior = &prior
	}
	for _, p := range r.Psks {
		if len(p.PskId) == 0 {
			return nil, status.Error(codes.InvalidArgument, "external join: a PSK without psk_id")
		}
		st.psks[string(p.PskId)] = bytes.Clone(p.PskSecret)
		o.PSKs = append(o.PSKs, schedule.PreSharedKeyID{Type: schedule.PSKTypeExternal, PSKID: bytes.Clone(p.PskId)})
	}
	commit, g, err := mls.JoinByExternalCommitWith(cs, signer, gi, rt, mls.LeafOptions{Credential: tree.NewBasicCredential(r.Identity)},
		s.config(st, st.treeInWelcome), o)
	if err != nil {
		return nil, engineError("external join", err)
	}
	b, err := encodeMessage(commit)
	if err != nil {
		return nil, err
	}
	return &mlspb.ExternalJoinResponse{StateId: s.newState(st, g), Commit: b, EpochAuthenticator: g.EpochAuthenticator()}, nil
}

// NewMemberAddProposal makes a KeyPackage for the group a GroupInfo
// describes and proposes adding it, signed by the joiner itself (a
// new_member_proposal sender, RFC 9420 §12.1.8). JoinGroup with the
// returned transaction id completes the join.
func (s *Server) NewMemberAddProposal(_ context.Context, r *mlspb.NewMemberAddProposalRequest) (*mlspb.NewMemberAddProposalResponse, error) {
	gi, _, err := verifiedGroupInfo(r.GroupInfo, nil)
	if err != nil {
		return nil, err
	}
	cs := suite.MustNew(gi.GroupContext.CipherSuite)
	tx, id, sigPriv, err := s.newKeyPackage(cs, r.Identity)
	if err != nil {
		return nil, err
	}
	p := &mls.Proposal{ProposalType: tree.ProposalTypeAdd, Add: &mls.Add{KeyPackage: *tx.bundle.KeyPackage}}
	msg, err := externalProposal(cs, tx.bundle.Signer, &gi.GroupContext, mls.Sender{SenderType: mls.SenderTypeNewMemberProposal}, p)
	if err != nil {
		s.remove(id)
		return nil, err
	}
	return &mlspb.NewMemberAddProposalResponse{TransactionId: id, Proposal: msg,
		InitPriv: tx.bundle.Private.InitKey, EncryptionPriv: tx.bundle.Private.EncryptionKey, SignaturePriv: sigPriv}, nil
}

// verifiedGroupInfo decodes a GroupInfo, checks its signature against the
// signer's leaf in the ratchet tree (out of band, or else the ratchet_tree
// extension) and the tree against the signed tree_hash (RFC 9420 §12.4.3),
// and returns both. The signer vouches for the tree through its hash, so
// the leaves' own signatures are not checked again here.
func verifiedGroupInfo(b, rtBytes []byte) (*mls.GroupInfo, *tree.Tree, error) {
	m, err := decodeMessage(b, mls.WireFormatGroupInfo)
	if err != nil {
		return nil, nil, err
	}
	gi := m.GroupInfo
	cs, err := suiteOf(uint32(gi.GroupContext.CipherSuite))
	if err != nil {
		return nil, nil, err
	}
	rt, err := decodeTree(rtBytes)
	if err != nil {
		return nil, nil, err
	}
	if rt == nil {
		ext := gi.Extensions.Find(tree.ExtensionTypeRatchetTree)
		if ext == nil {
			return nil, nil, status.Error(codes.InvalidArgument, "group info: no ratchet tree to verify it with")
		}
		if rt, err = decodeTree(ext.ExtensionData); err != nil {
			return nil, nil, err
		}
	}
	t, err := tree.New(rt)
	if err != nil {
		return nil, nil, status.Errorf(codes.InvalidArgument, "group info: ratchet tree: %v", err)
	}
	if !bytes.Equal(t.TreeHash(cs), gi.GroupContext.TreeHash) {
		return nil, nil, status.Error(codes.InvalidArgument, "group info: the ratchet tree does not match the tree hash")
	}
	if gi.Signer >= tree.LeafIndex(t.NumLeaves()) || t.Leaf(gi.Signer) == nil {
		return nil, nil, status.Errorf(codes.InvalidArgument, "group info: signer %d is not a member", gi.Signer)
	}
	if err := mls.VerifyGroupInfo(cs, gi, t.Leaf(gi.Signer).SignatureKey); err != nil {
		return nil, nil, status.Errorf(codes.InvalidArgument, "group info: %v", err)
	}
	return gi, t, nil
}

// externalProposal signs p from a non-member sender as a PublicMessage of
// the epoch ctx describes (RFC 9420 §6.1, §12.1.8).
func externalProposal(cs *suite.Suite, signer *suite.Signer, ctx *mls.GroupContext, from mls.Sender, p *mls.Proposal) ([]byte, error) {
	fc := &mls.FramedContent{GroupID: ctx.GroupID, Epoch: ctx.Epoch, Sender: from, ContentType: mls.ContentTypeProposal, Proposal: p}
	ac, err := mls.SignContent(signer, mls.WireFormatPublicMessage, fc, ctx)
	if err != nil {
		return nil, engineError("external proposal", err)
	}
	pm, err := mls.ProtectPublic(cs, ac, ctx, nil)
	if err != nil {
		return nil, engineError("external proposal", fmt.Errorf("protect: %w", err))
	}
	return encodeMessage(pm)
}
