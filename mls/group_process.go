package mls

import (
	"bytes"
	"fmt"

	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Processing received messages (RFC 9420 §6, §12.1, §12.4.2, §15).

// Processed is the outcome of a received message.
type Processed struct {
	ContentType ContentType
	// Epoch the message was sent in.
	Epoch uint64
	// Sender and, for members, the sender's credential in that epoch.
	Sender     Sender
	Credential *tree.Credential
	// AuthenticatedData is the message's unencrypted authenticated data.
	AuthenticatedData []byte
	// ApplicationData for application messages.
	ApplicationData []byte
	// Proposal and its reference, for proposals (now cached in State).
	Proposal    *Proposal
	ProposalRef []byte
	// Commit for commits; State is then in the new epoch.
	Commit *Commit
	// State is the group after this message. For a commit or proposal it is
	// a new value and the receiver is unchanged; for an application message
	// it is the receiver itself (its ratchet advanced in place).
	State *Group
}

// Process unprotects, verifies and applies one message (a PublicMessage or
// PrivateMessage). A rejected message leaves the group as it was and returns
// an error wrapping one of the package's sentinels.
func (g *Group) Process(m *Message) (*Processed, error) {
	if m.Version != tree.ProtocolVersionMLS10 {
		return nil, ErrUnsupportedVersion
	}
	switch m.WireFormat {
	case WireFormatPublicMessage:
		return g.processPublic(m.PublicMessage)
	case WireFormatPrivateMessage:
		return g.processPrivate(m.PrivateMessage)
	default:
		return nil, fmt.Errorf("%w: a group processes public and private messages, not %v", ErrInvalidMessage, m.WireFormat)
	}
}

// ProcessBytes decodes an MLSMessage and processes it.
func (g *Group) ProcessBytes(b []byte) (*Processed, error) {
	m, err := UnmarshalMessage(b)
	if err != nil {
		return nil, err
	}
	return g.Process(m)
}

func (g *Group) checkGroupEpoch(groupID []byte, epoch uint64) error {
	if !bytes.Equal(groupID, g.ctx.GroupID) {
		return ErrWrongGroup
	}
	if epoch != g.ctx.Epoch {
		return fmt.Errorf("%w: message epoch %d, group epoch %d", ErrWrongEpoch, epoch, g.ctx.Epoch)
	}
	return nil
}

func (g *Group) processPublic(pm *PublicMessage) (*Processed, error) {
	if g.removed {
		return nil, ErrNotMember
	}
	if err := g.checkGroupEpoch(pm.Content.GroupID, pm.Content.Epoch); err != nil {
		return nil, err
	}
	// The content is encoded once for the membership tag, the signature
	// and the transcript hash.
	ac, enc, err := g.authenticatePublic(pm)
	if err != nil {
		return nil, err
	}
	defer enc.close()
	return g.processContent(ac, enc)
}

func (g *Group) processPrivate(pm *PrivateMessage) (*Processed, error) {
	if g.removed {
		return nil, ErrNotMember
	}
	if !bytes.Equal(pm.GroupID, g.ctx.GroupID) {
		return nil, ErrWrongGroup
	}
	if pm.Epoch != g.ctx.Epoch {
		// A late application message of a recent epoch (§14).
		if pm.Epoch < g.ctx.Epoch && pm.ContentType == ContentTypeApplication {
			return g.processPastApplication(pm)
		}
		return nil, fmt.Errorf("%w: message epoch %d, group epoch %d", ErrWrongEpoch, pm.Epoch, g.ctx.Epoch)
	}
	if pm.ContentType == ContentTypeApplication && len(g.pending) > 0 {
		// Tolerated: the sender may not have seen the proposals yet.
	}
	if pm.ContentType == ContentTypeCommit {
		// Our own commit echoed back cannot be opened (its key is used);
		// say what it is rather than report a replay.
		if sd, err := decryptSenderData(g.suite, pm, g.secrets.SenderDataSecret); err == nil && sd.LeafIndex == g.myLeaf {
			return nil, ErrOwnCommit
		}
	}
	var out *Processed
	keys := PrivateKeys{SecretTree: g.secretTree, SenderDataSecret: g.secrets.SenderDataSecret}
	_, err := unprotectPrivate(g.suite, pm, keys, func(ac *AuthenticatedContent) error {
		pub, err := leafSignatureKey(g.tree, ac.Content.Sender.LeafIndex)
		if err != nil {
			return err
		}
		enc, err := g.authenticateContent(ac, pub)
		if err != nil {
			return err
		}
		defer enc.close()
		// Everything the message changes is staged before the key counts
		// as consumed, so a valid-looking but invalid commit burns nothing.
		out, err = g.processContent(ac, enc)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// processPastApplication opens an application message of a kept past epoch.
func (g *Group) processPastApplication(pm *PrivateMessage) (*Processed, error) {
	for _, pe := range g.past {
		if pe.ctx.Epoch != pm.Epoch {
			continue
		}
		var out *Processed
		keys := PrivateKeys{SecretTree: pe.secretTree, SenderDataSecret: pe.senderData}
		_, err := unprotectPrivate(g.suite, pm, keys, func(ac *AuthenticatedContent) error {
			pub, err := leafSignatureKey(pe.tree, ac.Content.Sender.LeafIndex)
			if err != nil {
				return err
			}
			if err := VerifySignature(g.suite, pub, ac, &pe.ctx); err != nil {
				return err
			}
			if err := g.policyCheckApplication(&pe.ctx, pe.tree, ac.Content.Sender); err != nil {
				return err
			}
			out = g.applicationResult(ac, pe.tree)
			return nil
		})
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: epoch %d is no longer kept (current %d)", ErrWrongEpoch, pm.Epoch, g.ctx.Epoch)
}

// senderSignatureKey picks the key that must have signed ac (§6.1).
func (g *Group) senderSignatureKey(ac *AuthenticatedContent) ([]byte, error) {
	fc := &ac.Content
	switch fc.Sender.SenderType {
	case SenderTypeMember:
		return leafSignatureKey(g.tree, fc.Sender.LeafIndex)
	case SenderTypeExternal:
		ext := g.ctx.Extensions.Find(tree.ExtensionTypeExternalSenders)
		if ext == nil {
			return nil, fmt.Errorf("%w: external sender but no external_senders extension", ErrUnknownSender)
		}
		var senders tree.ExternalSenders
		if err := wire.Unmarshal(ext.ExtensionData, &senders); err != nil {
			return nil, fmt.Errorf("%w: external_senders: %w", ErrUnknownSender, err)
		}
		if int(fc.Sender.SenderIndex) >= len(senders) {
			return nil, fmt.Errorf("%w: external sender %d of %d", ErrUnknownSender, fc.Sender.SenderIndex, len(senders))
		}
		return senders[fc.Sender.SenderIndex].SignatureKey, nil
	case SenderTypeNewMemberCommit:
		if fc.Commit == nil || fc.Commit.Path == nil {
			return nil, fmt.Errorf("%w: external commit without a path", ErrInvalidCommit)
		}
		return fc.Commit.Path.LeafNode.SignatureKey, nil
	case SenderTypeNewMemberProposal:
		if fc.Proposal == nil || fc.Proposal.Add == nil {
			return nil, fmt.Errorf("%w: new_member_proposal without an Add", ErrInvalidMessage)
		}
		return fc.Proposal.Add.KeyPackage.LeafNode.SignatureKey, nil
	}
	return nil, fmt.Errorf("%w: %v", ErrUnknownSender, fc.Sender.SenderType)
}

// processContent applies verified content. It does not modify g. enc is
// the encoding of ac the signature was verified over.
func (g *Group) processContent(ac *AuthenticatedContent, enc *contentEncoding) (*Processed, error) {
	fc := &ac.Content
	if err := g.checkNotFrozen(fc.ContentType); err != nil {
		return nil, err
	}
	switch fc.ContentType {
	case ContentTypeApplication:
		if ac.WireFormat != WireFormatPrivateMessage {
			return nil, fmt.Errorf("%w: application data in a PublicMessage", ErrInvalidMessage)
		}
		if err := g.policyCheckApplication(&g.ctx, g.tree, fc.Sender); err != nil {
			return nil, err
		}
		return g.applicationResult(ac, g.tree), nil
	case ContentTypeProposal:
		return g.processProposal(ac)
	case ContentTypeCommit:
		next, err := g.processCommit(ac, enc)
		if err != nil {
			return nil, err
		}
		return &Processed{ContentType: ContentTypeCommit, Epoch: fc.Epoch, Sender: fc.Sender,
			Credential: credentialOf(g.tree, fc.Sender), AuthenticatedData: fc.AuthenticatedData,
			Commit: fc.Commit, State: next}, nil
	}
	return nil, fmt.Errorf("%w: content type %v", ErrInvalidMessage, fc.ContentType)
}

func (g *Group) applicationResult(ac *AuthenticatedContent, t *tree.Tree) *Processed {
	fc := &ac.Content
	return &Processed{ContentType: ContentTypeApplication, Epoch: fc.Epoch, Sender: fc.Sender,
		Credential: credentialOf(t, fc.Sender), AuthenticatedData: fc.AuthenticatedData,
		ApplicationData: fc.ApplicationData, State: g}
}

func credentialOf(t *tree.Tree, s Sender) *tree.Credential {
	if s.SenderType != SenderTypeMember || uint32(s.LeafIndex) >= t.NumLeaves() {
		return nil
	}
	if l := t.Leaf(s.LeafIndex); l != nil {
		c := l.Credential
		return &c
	}
	return nil
}

// processProposal caches a well-formed, authentic proposal by reference
// in the returned state (§12.1): its sender may send it, and it passes the
// checks of its type that do not depend on the commit that will include it
// (checkProposal). Whether it fits with the rest of a commit's list is
// judged when a commit references it (§12.2).
func (g *Group) processProposal(ac *AuthenticatedContent) (*Processed, error) {
	fc := &ac.Content
	p := fc.Proposal
	if fc.Sender.SenderType == SenderTypeNewMemberCommit {
		return nil, fmt.Errorf("%w: proposal from a new_member_commit sender", ErrInvalidProposal)
	}
	if err := g.checkProposal(p, fc.Sender, true); err != nil {
		return nil, err
	}
	if err := g.policyCheckProposal(p, fc.Sender); err != nil {
		return nil, err
	}
	ref, err := g.proposalRef(ac)
	if err != nil {
		return nil, err
	}
	for _, pp := range g.pending {
		if bytes.Equal(pp.ref, ref) {
			return nil, fmt.Errorf("%w: proposal already received", ErrInvalidProposal)
		}
	}
	next := g.clone()
	next.pending = append(next.pending, &pendingProposal{ref: ref, proposal: p, sender: fc.Sender})
	return &Processed{ContentType: ContentTypeProposal, Epoch: fc.Epoch, Sender: fc.Sender,
		Credential: credentialOf(g.tree, fc.Sender), AuthenticatedData: fc.AuthenticatedData,
		Proposal: p, ProposalRef: ref, State: next}, nil
}

// --- sending proposals (§12.1) ---

// Propose sends a proposal (to be committed later, by anyone) and returns
// the new state with the proposal cached. p is checked as the receivers
// check it on arrival, on its own: whether it fits with the rest of a
// commit is judged by the commit (a default Commit leaves out a pending
// proposal that fits none). For an Update, the new leaf's private key is
// kept until a commit includes it.
func (g *Group) Propose(p *Proposal) (*Message, *Group, error) {
	if err := g.canSend(); err != nil {
		return nil, nil, err
	}
	if err := g.checkProposal(p, MemberSender(g.myLeaf), true); err != nil {
		return nil, nil, err
	}
	if err := g.policyCheckProposal(p, MemberSender(g.myLeaf)); err != nil {
		return nil, nil, err
	}
	fc := &FramedContent{GroupID: g.ctx.GroupID, Epoch: g.ctx.Epoch, Sender: MemberSender(g.myLeaf),
		ContentType: ContentTypeProposal, Proposal: p}
	ac, err := SignContent(g.signer, g.handshakeWireFormat(), fc, &g.ctx)
	if err != nil {
		return nil, nil, err
	}
	ref, err := g.proposalRef(ac)
	if err != nil {
		return nil, nil, err
	}
	msg, err := g.protectSigned(ac)
	if err != nil {
		return nil, nil, err
	}
	next := g.clone()
	next.pending = append(next.pending, &pendingProposal{ref: ref, proposal: p, sender: fc.Sender})
	return msg, next, nil
}

// ProposeUpdate proposes a new leaf for this member (fresh encryption key).
func (g *Group) ProposeUpdate() (*Message, *Group, error) {
	if err := g.canSend(); err != nil {
		return nil, nil, err
	}
	priv, pub, err := newHPKEKeyPair(g.suite, g.cfg.rand())
	if err != nil {
		return nil, nil, err
	}
	cur := *g.tree.Leaf(g.myLeaf)
	cur.EncryptionKey = pub
	cur.LeafNodeSource = tree.LeafNodeSourceUpdate
	cur.Lifetime = tree.Lifetime{}
	cur.ParentHash = nil
	if err := cur.Sign(g.suite, g.signer, g.ctx.GroupID, g.myLeaf); err != nil {
		return nil, nil, err
	}
	msg, next, err := g.Propose(&Proposal{ProposalType: tree.ProposalTypeUpdate, Update: &Update{LeafNode: cur}})
	if err != nil {
		return nil, nil, err
	}
	if next.ownUpdates == nil {
		next.ownUpdates = map[string][]byte{}
	}
	next.ownUpdates[string(next.pending[len(next.pending)-1].ref)] = priv
	return msg, next, nil
}
