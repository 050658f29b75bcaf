package conformance

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/internal/access"
	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

type messageProtectionCase struct {
	CipherSuite             uint16   `json:"cipher_suite"`
	GroupID                 hexBytes `json:"group_id"`
	Epoch                   uint64   `json:"epoch"`
	TreeHash                hexBytes `json:"tree_hash"`
	ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
	SignaturePriv           hexBytes `json:"signature_priv"`
	SignaturePub            hexBytes `json:"signature_pub"`
	EncryptionSecret        hexBytes `json:"encryption_secret"`
	SenderDataSecret        hexBytes `json:"sender_data_secret"`
	MembershipKey           hexBytes `json:"membership_key"`
	Proposal                hexBytes `json:"proposal"`
	ProposalPub             hexBytes `json:"proposal_pub"`
	ProposalPriv            hexBytes `json:"proposal_priv"`
	Commit                  hexBytes `json:"commit"`
	CommitPub               hexBytes `json:"commit_pub"`
	CommitPriv              hexBytes `json:"commit_priv"`
	Application             hexBytes `json:"application"`
	ApplicationPriv         hexBytes `json:"application_priv"`
}

func (c *messageProtectionCase) suiteID() uint16 { return c.CipherSuite }

// mpEnv is the state one message-protection case works in.
type mpEnv struct {
	c      *messageProtectionCase
	s      *suite.Suite
	ctx    *mls.GroupContext
	signer *suite.Signer
}

const mpSender = tree.LeafIndex(1)

func (c *messageProtectionCase) check() error {
	s, err := suiteFor(c.CipherSuite)
	if err != nil {
		return err
	}
	signer, err := s.NewSigner(c.SignaturePriv)
	if err != nil {
		return err
	}
	env := &mpEnv{c: c, s: s, signer: signer, ctx: &mls.GroupContext{
		Version: tree.ProtocolVersionMLS10, CipherSuite: suite.ID(c.CipherSuite),
		GroupID: c.GroupID, Epoch: c.Epoch, TreeHash: c.TreeHash,
		ConfirmedTranscriptHash: c.ConfirmedTranscriptHash,
	}}

	var proposal mls.Proposal
	if err := wire.Unmarshal(c.Proposal, &proposal); err != nil {
		return fmt.Errorf("decode proposal: %w", err)
	}
	var commit mls.Commit
	if err := wire.Unmarshal(c.Commit, &commit); err != nil {
		return fmt.Errorf("decode commit: %w", err)
	}
	contents := []struct {
		name      string
		fc        mls.FramedContent
		raw       []byte
		pub, priv []byte
	}{
		{"proposal", mls.FramedContent{ContentType: mls.ContentTypeProposal, Proposal: &proposal}, c.Proposal, c.ProposalPub, c.ProposalPriv},
		{"commit", mls.FramedContent{ContentType: mls.ContentTypeCommit, Commit: &commit}, c.Commit, c.CommitPub, c.CommitPriv},
		{"application", mls.FramedContent{ContentType: mls.ContentTypeApplication, ApplicationData: c.Application}, c.Application, nil, c.ApplicationPriv},
	}
	for _, x := range contents {
		fc := x.fc
		fc.GroupID, fc.Epoch, fc.Sender = c.GroupID, c.Epoch, mls.MemberSender(mpSender)
		if x.pub != nil {
			if err := env.checkPublic(x.pub, x.raw); err != nil {
				return fmt.Errorf("%s_pub: %w", x.name, err)
			}
		}
		if err := env.checkPublicRoundTrip(&fc, x.raw); err != nil {
			return fmt.Errorf("%s public round trip: %w", x.name, err)
		}
		if err := env.checkPrivate(x.priv, x.raw); err != nil {
			return fmt.Errorf("%s_priv: %w", x.name, err)
		}
		if err := env.checkPrivateRoundTrip(&fc, x.raw); err != nil {
			return fmt.Errorf("%s private round trip: %w", x.name, err)
		}
	}
	return nil
}

// rawContent re-encodes the body of an AuthenticatedContent for comparison.
func rawContent(ac *mls.AuthenticatedContent) ([]byte, error) {
	switch ac.Content.ContentType {
	case mls.ContentTypeApplication:
		return ac.Content.ApplicationData, nil
	case mls.ContentTypeProposal:
		return wire.Marshal(ac.Content.Proposal)
	case mls.ContentTypeCommit:
		return wire.Marshal(ac.Content.Commit)
	}
	return nil, errors.New("no content")
}

func (e *mpEnv) unprotectPublic(msgBytes []byte) (*mls.AuthenticatedContent, error) {
	m, err := mls.UnmarshalMessage(msgBytes)
	if err != nil {
		return nil, err
	}
	if m.PublicMessage == nil {
		return nil, fmt.Errorf("not a PublicMessage but %v", m.WireFormat)
	}
	ac, err := mls.UnprotectPublic(e.s, m.PublicMessage, e.ctx, e.c.MembershipKey)
	if err != nil {
		return nil, err
	}
	if err := mls.VerifySignature(e.s, e.c.SignaturePub, ac, e.ctx); err != nil {
		return nil, err
	}
	return ac, nil
}

func (e *mpEnv) checkPublic(msgBytes, raw []byte) error {
	ac, err := e.unprotectPublic(msgBytes)
	if err != nil {
		return err
	}
	got, err := rawContent(ac)
	if err != nil {
		return err
	}
	return mismatch("content", got, raw)
}

func (e *mpEnv) checkPublicRoundTrip(fc *mls.FramedContent, raw []byte) error {
	ac, err := mls.SignContent(e.signer, mls.WireFormatPublicMessage, fc, e.ctx)
	if fc.ContentType == mls.ContentTypeApplication {
		if err == nil {
			return errors.New("an application message was accepted as a PublicMessage")
		}
		return nil
	}
	if err != nil {
		return err
	}
	if fc.ContentType == mls.ContentTypeCommit {
		// A commit needs a confirmation tag; any MAC will do for framing.
		mls.Internals(access.Key{}).SetConfirmationTag(e.s, ac, e.c.MembershipKey, e.c.ConfirmedTranscriptHash)
	}
	pm, err := mls.ProtectPublic(e.s, ac, e.ctx, e.c.MembershipKey)
	if err != nil {
		return err
	}
	msg, err := mls.NewMessage(pm)
	if err != nil {
		return err
	}
	enc, err := wire.Marshal(msg)
	if err != nil {
		return err
	}
	if err := e.checkPublic(enc, raw); err != nil {
		return err
	}
	// Tampering with the membership tag must be detected.
	pm.MembershipTag = bytes.Clone(pm.MembershipTag)
	pm.MembershipTag[0] ^= 1
	if _, err := mls.UnprotectPublic(e.s, pm, e.ctx, e.c.MembershipKey); !errors.Is(err, mls.ErrInvalidMembershipTag) {
		return fmt.Errorf("tampered membership tag: got %v", err)
	}
	return nil
}

func (e *mpEnv) keys() (mls.PrivateKeys, error) {
	st, err := schedule.NewSecretTree(e.s, e.c.EncryptionSecret, 2, schedule.Options{})
	if err != nil {
		return mls.PrivateKeys{}, err
	}
	return mls.PrivateKeys{SecretTree: st, SenderDataSecret: e.c.SenderDataSecret}, nil
}

func (e *mpEnv) unprotectPrivate(keys mls.PrivateKeys, msgBytes []byte) (*mls.AuthenticatedContent, error) {
	m, err := mls.UnmarshalMessage(msgBytes)
	if err != nil {
		return nil, err
	}
	if m.PrivateMessage == nil {
		return nil, fmt.Errorf("not a PrivateMessage but %v", m.WireFormat)
	}
	return mls.Internals(access.Key{}).UnprotectPrivate(e.s, m.PrivateMessage, keys, func(ac *mls.AuthenticatedContent) error {
		if leaf, _ := mls.SenderLeaf(ac); leaf != mpSender {
			return fmt.Errorf("sender leaf %d, want %d", leaf, mpSender)
		}
		return mls.VerifySignature(e.s, e.c.SignaturePub, ac, e.ctx)
	})
}

func (e *mpEnv) checkPrivate(msgBytes, raw []byte) error {
	keys, err := e.keys()
	if err != nil {
		return err
	}
	ac, err := e.unprotectPrivate(keys, msgBytes)
	if err != nil {
		return err
	}
	got, err := rawContent(ac)
	if err != nil {
		return err
	}
	if err := mismatch("content", got, raw); err != nil {
		return err
	}
	// A replay of the same message must fail: its key is consumed.
	if _, err := e.unprotectPrivate(keys, msgBytes); !errors.Is(err, schedule.ErrKeyConsumed) {
		return fmt.Errorf("replay: got %v, want ErrKeyConsumed", err)
	}
	return nil
}

func (e *mpEnv) checkPrivateRoundTrip(fc *mls.FramedContent, raw []byte) error {
	ac, err := mls.SignContent(e.signer, mls.WireFormatPrivateMessage, fc, e.ctx)
	if err != nil {
		return err
	}
	if fc.ContentType == mls.ContentTypeCommit {
		mls.Internals(access.Key{}).SetConfirmationTag(e.s, ac, e.c.MembershipKey, e.c.ConfirmedTranscriptHash)
	}
	sendKeys, err := e.keys()
	if err != nil {
		return err
	}
	pm, err := mls.Internals(access.Key{}).ProtectPrivate(e.s, ac, sendKeys, 7, nil)
	if err != nil {
		return err
	}
	msg, err := mls.NewMessage(pm)
	if err != nil {
		return err
	}
	enc, err := wire.Marshal(msg)
	if err != nil {
		return err
	}
	recvKeys, err := e.keys()
	if err != nil {
		return err
	}
	// A bit flip in the ciphertext must fail without consuming the key.
	tampered := *pm
	tampered.Ciphertext = bytes.Clone(pm.Ciphertext)
	tampered.Ciphertext[len(tampered.Ciphertext)-1] ^= 1
	if _, err := mls.Internals(access.Key{}).UnprotectPrivate(e.s, &tampered, recvKeys, nil); !errors.Is(err, mls.ErrDecryption) {
		return fmt.Errorf("tampered ciphertext: got %v, want ErrDecryption", err)
	}
	ac2, err := e.unprotectPrivate(recvKeys, enc)
	if err != nil {
		return err
	}
	got, err := rawContent(ac2)
	if err != nil {
		return err
	}
	return mismatch("content", got, raw)
}
