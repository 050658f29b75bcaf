package mls

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/spacepanda/spacepanda/mls/internal/parallel"
	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Message protection (RFC 9420 §6): signing FramedContent into an
// AuthenticatedContent, and protecting it as a PublicMessage (membership tag)
// or a PrivateMessage (sender data and content encryption).

// Errors of message protection.
var (
	// ErrInvalidSignature: a FramedContent signature does not verify (§6.1).
	ErrInvalidSignature = errors.New("mls: invalid signature")
	// ErrInvalidMembershipTag: a PublicMessage membership_tag is wrong (§6.2).
	ErrInvalidMembershipTag = errors.New("mls: invalid membership tag")
	// ErrInvalidConfirmationTag: a commit's confirmation_tag is wrong (§6.1, §8.2).
	ErrInvalidConfirmationTag = errors.New("mls: invalid confirmation tag")
	// ErrDecryption: a PrivateMessage's sender data or content does not decrypt (§6.3).
	ErrDecryption = errors.New("mls: decryption failed")
	// ErrInvalidMessage: a message that is well-formed on the wire but
	// violates a rule of §6 (wrong sender type for the wire format, an
	// application message as a PublicMessage, ...).
	ErrInvalidMessage = errors.New("mls: invalid message")
)

// SignContent signs fc for wire format wf (RFC 9420 §6.1). ctx is the group
// context of the current epoch; it is required for member and
// new_member_commit senders and ignored for the others.
func SignContent(signer *suite.Signer, wf WireFormat, fc *FramedContent, ctx *GroupContext) (*AuthenticatedContent, error) {
	if err := checkSenderContent(wf, fc); err != nil {
		return nil, err
	}
	if !needsGroupContext(fc.Sender.SenderType) {
		ctx = nil
	} else if ctx == nil {
		return nil, wrapf(ErrIncompleteValue, "signing as %v needs the group context", fc.Sender.SenderType)
	}
	tbs, err := fc.MarshalTBS(wf, ctx)
	if err != nil {
		return nil, err
	}
	sig, err := signer.SignWithLabel("FramedContentTBS", tbs)
	if err != nil {
		return nil, err
	}
	return &AuthenticatedContent{WireFormat: wf, Content: *fc, Auth: FramedContentAuthData{Signature: sig}}, nil
}

// VerifySignature checks ac's signature with the sender's signature key
// (RFC 9420 §6.1). The caller picks pub according to the sender type.
func VerifySignature(s *suite.Suite, pub []byte, ac *AuthenticatedContent, ctx *GroupContext) error {
	if !needsGroupContext(ac.Content.Sender.SenderType) {
		ctx = nil
	} else if ctx == nil {
		return wrapf(ErrIncompleteValue, "verifying a %v signature needs the group context", ac.Content.Sender.SenderType)
	}
	tbs, err := ac.Content.MarshalTBS(ac.WireFormat, ctx)
	if err != nil {
		return err
	}
	if err := s.VerifyWithLabel(pub, "FramedContentTBS", tbs, ac.Auth.Signature); err != nil {
		return fmt.Errorf("%w: %v content from %v", ErrInvalidSignature, ac.Content.ContentType, ac.Content.Sender)
	}
	return nil
}

// checkSenderContent enforces the pairings of §6 and §6.1: an external
// sender may only send proposals, new_member_commit only commits,
// new_member_proposal only proposals; application data only from members in
// a PrivateMessage; non-member senders only in a PublicMessage.
func checkSenderContent(wf WireFormat, fc *FramedContent) error {
	st, ct := fc.Sender.SenderType, fc.ContentType
	switch st {
	case SenderTypeMember:
	case SenderTypeExternal, SenderTypeNewMemberProposal:
		if ct != ContentTypeProposal {
			return wrapf(ErrInvalidMessage, "%v sender with %v content", st, ct)
		}
		if st == SenderTypeNewMemberProposal && (fc.Proposal == nil || fc.Proposal.ProposalType != tree.ProposalTypeAdd) {
			return wrapf(ErrInvalidMessage, "new_member_proposal must carry an Add proposal")
		}
	case SenderTypeNewMemberCommit:
		if ct != ContentTypeCommit {
			return wrapf(ErrInvalidMessage, "%v sender with %v content", st, ct)
		}
	default:
		return wrapf(ErrInvalidMessage, "sender type %v", st)
	}
	switch wf {
	case WireFormatPublicMessage:
		if ct == ContentTypeApplication {
			return wrapf(ErrInvalidMessage, "application data must be sent as a PrivateMessage (§6)")
		}
	case WireFormatPrivateMessage:
		if st != SenderTypeMember {
			return wrapf(ErrInvalidMessage, "a PrivateMessage sender must be a member (§6.3.2)")
		}
	default:
		return wrapf(ErrInvalidMessage, "wire format %v cannot carry content", wf)
	}
	return nil
}

// setConfirmationTag sets ac's confirmation_tag = MAC(confirmation_key,
// confirmed_transcript_hash) (RFC 9420 §6.1).
func setConfirmationTag(s *suite.Suite, ac *AuthenticatedContent, confirmationKey, confirmedTranscriptHash []byte) {
	ac.Auth.ConfirmationTag = s.MAC(confirmationKey, confirmedTranscriptHash)
}

// verifyConfirmationTag checks a confirmation tag in constant time.
func verifyConfirmationTag(s *suite.Suite, tag, confirmationKey, confirmedTranscriptHash []byte) error {
	if !s.VerifyMAC(confirmationKey, confirmedTranscriptHash, tag) {
		return ErrInvalidConfirmationTag
	}
	return nil
}

// --- PublicMessage (§6.2) ---

// ProtectPublic encodes ac as a PublicMessage. For member senders the
// membership_tag is MAC(membership_key, AuthenticatedContentTBM); ctx and
// membershipKey are then required.
func ProtectPublic(s *suite.Suite, ac *AuthenticatedContent, ctx *GroupContext, membershipKey []byte) (*PublicMessage, error) {
	if ac.WireFormat != WireFormatPublicMessage {
		return nil, wrapf(ErrInvalidMessage, "content signed for %v, not a PublicMessage", ac.WireFormat)
	}
	if err := checkSenderContent(ac.WireFormat, &ac.Content); err != nil {
		return nil, err
	}
	pm := &PublicMessage{Content: ac.Content, Auth: ac.Auth}
	if ac.Content.Sender.SenderType == SenderTypeMember {
		tag, err := membershipTag(s, ac, ctx, membershipKey)
		if err != nil {
			return nil, err
		}
		pm.MembershipTag = tag
	}
	return pm, nil
}

func membershipTag(s *suite.Suite, ac *AuthenticatedContent, ctx *GroupContext, membershipKey []byte) ([]byte, error) {
	if ctx == nil {
		return nil, wrapf(ErrIncompleteValue, "membership tag needs the group context")
	}
	tbm, err := wire.Marshal(&AuthenticatedContentTBM{ContentTBS: *ac.TBS(ctx), Auth: &ac.Auth})
	if err != nil {
		return nil, err
	}
	return s.MAC(membershipKey, tbm), nil
}

// UnprotectPublic turns a PublicMessage into an AuthenticatedContent,
// checking the membership tag of member senders (§6.2). It does not verify
// the signature: the caller looks up the sender's key and calls
// VerifySignature.
func UnprotectPublic(s *suite.Suite, pm *PublicMessage, ctx *GroupContext, membershipKey []byte) (*AuthenticatedContent, error) {
	ac := pm.AuthenticatedContent()
	if err := checkSenderContent(WireFormatPublicMessage, &ac.Content); err != nil {
		return nil, err
	}
	if ac.Content.Sender.SenderType == SenderTypeMember {
		want, err := membershipTag(s, ac, ctx, membershipKey)
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare(want, pm.MembershipTag) != 1 {
			return nil, ErrInvalidMembershipTag
		}
	}
	return ac, nil
}

// --- PrivateMessage (§6.3) ---

// PrivateKeys are the per-epoch secrets PrivateMessage protection needs.
type PrivateKeys struct {
	SecretTree       *schedule.SecretTree
	SenderDataSecret []byte
}

func ratchetFor(ct ContentType) schedule.RatchetType {
	if ct == ContentTypeApplication {
		return schedule.ApplicationRatchet
	}
	return schedule.HandshakeRatchet
}

// protectPrivate encrypts ac as a PrivateMessage (§6.3), advancing the
// sender's ratchet in keys.SecretTree. padding zero bytes are appended to the
// content. rnd supplies the reuse guard (nil means crypto/rand).
func protectPrivate(s *suite.Suite, ac *AuthenticatedContent, keys PrivateKeys, padding int, rnd io.Reader) (*PrivateMessage, error) {
	fc := &ac.Content
	if ac.WireFormat != WireFormatPrivateMessage {
		return nil, wrapf(ErrInvalidMessage, "content signed for %v, not a PrivateMessage", ac.WireFormat)
	}
	if err := checkSenderContent(ac.WireFormat, fc); err != nil {
		return nil, err
	}
	if padding < 0 {
		return nil, wrapf(ErrIncompleteValue, "negative padding")
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	// Encode the plaintext before touching the ratchet, so a bad value burns no generation.
	content := &privateMessageContent{
		ContentType: fc.ContentType, ApplicationData: fc.ApplicationData,
		Proposal: fc.Proposal, Commit: fc.Commit, Auth: ac.Auth, Padding: padding,
	}
	pt, err := wire.Marshal(content)
	if err != nil {
		return nil, err
	}
	pm := &PrivateMessage{
		GroupID: fc.GroupID, Epoch: fc.Epoch, ContentType: fc.ContentType,
		AuthenticatedData: fc.AuthenticatedData,
	}
	aad, err := wire.Marshal(pm.ContentAAD())
	if err != nil {
		return nil, err
	}
	var sd senderDataPlain
	sd.LeafIndex = fc.Sender.LeafIndex
	if _, err := io.ReadFull(rnd, sd.ReuseGuard[:]); err != nil {
		return nil, fmt.Errorf("mls: reuse guard: %w", err)
	}
	kn, err := keys.SecretTree.NextSenderKey(fc.Sender.LeafIndex, ratchetFor(fc.ContentType))
	if err != nil {
		return nil, err
	}
	sd.Generation = kn.Generation
	nonce := applyReuseGuard(kn.Nonce, sd.ReuseGuard)
	if pm.Ciphertext, err = s.Seal(kn.Key, nonce, aad, pt); err != nil {
		return nil, err
	}
	sdKey, sdNonce, err := schedule.SenderDataKeyNonce(s, keys.SenderDataSecret, pm.Ciphertext)
	if err != nil {
		return nil, err
	}
	sdPlain, err := wire.Marshal(&sd)
	if err != nil {
		return nil, err
	}
	sdAAD, err := wire.Marshal(pm.senderDataAAD())
	if err != nil {
		return nil, err
	}
	if pm.EncryptedSenderData, err = s.Seal(sdKey, sdNonce, sdAAD, sdPlain); err != nil {
		return nil, err
	}
	return pm, nil
}

// decryptSenderData recovers the SenderData of a PrivateMessage (§6.3.2).
func decryptSenderData(s *suite.Suite, pm *PrivateMessage, senderDataSecret []byte) (*senderDataPlain, error) {
	sdKey, sdNonce, err := schedule.SenderDataKeyNonce(s, senderDataSecret, pm.Ciphertext)
	if err != nil {
		return nil, err
	}
	sdAAD, err := wire.Marshal(pm.senderDataAAD())
	if err != nil {
		return nil, err
	}
	plain, err := s.Open(sdKey, sdNonce, sdAAD, pm.EncryptedSenderData)
	if err != nil {
		return nil, fmt.Errorf("%w: sender data", ErrDecryption)
	}
	var sd senderDataPlain
	if err := wire.Unmarshal(plain, &sd); err != nil {
		return nil, fmt.Errorf("%w: sender data: %w", ErrDecryption, err)
	}
	return &sd, nil
}

// unprotectPrivate decrypts a PrivateMessage (§6.3). verify is called with
// the decrypted AuthenticatedContent and must check everything that makes it
// acceptable (the sender leaf is non-blank, the signature, for commits the
// caller's further rules); only when it returns nil is the ratchet key
// consumed, so a forged or tampered message leaves the secret tree as it was.
func unprotectPrivate(s *suite.Suite, pm *PrivateMessage, keys PrivateKeys, verify func(*AuthenticatedContent) error) (*AuthenticatedContent, error) {
	if !pm.ContentType.valid() {
		return nil, wrapf(ErrUnknownContentType, "%d", pm.ContentType)
	}
	sd, err := decryptSenderData(s, pm, keys.SenderDataSecret)
	if err != nil {
		return nil, err
	}
	if uint32(sd.LeafIndex) >= keys.SecretTree.LeafCount() {
		return nil, wrapf(ErrInvalidMessage, "sender leaf %d outside the tree", sd.LeafIndex)
	}
	aad, err := wire.Marshal(pm.ContentAAD())
	if err != nil {
		return nil, err
	}
	var ac *AuthenticatedContent
	err = keys.SecretTree.OpenWith(sd.LeafIndex, ratchetFor(pm.ContentType), sd.Generation, func(kn schedule.KeyNonce) error {
		pt, err := s.Open(kn.Key, applyReuseGuard(kn.Nonce, sd.ReuseGuard), aad, pm.Ciphertext)
		if err != nil {
			return fmt.Errorf("%w: content", ErrDecryption)
		}
		content, err := unmarshalPrivateMessageContent(pt, pm.ContentType)
		if err != nil {
			return fmt.Errorf("%w: content: %w", ErrDecryption, err)
		}
		a := &AuthenticatedContent{
			WireFormat: WireFormatPrivateMessage,
			Content: FramedContent{
				GroupID: pm.GroupID, Epoch: pm.Epoch,
				Sender:            MemberSender(sd.LeafIndex),
				AuthenticatedData: pm.AuthenticatedData,
				ContentType:       pm.ContentType,
				ApplicationData:   content.ApplicationData,
				Proposal:          content.Proposal,
				Commit:            content.Commit,
			},
			Auth: content.Auth,
		}
		if verify != nil {
			if err := verify(a); err != nil {
				return err
			}
		}
		ac = a
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ac, nil
}

func applyReuseGuard(nonce []byte, guard [4]byte) []byte {
	out := make([]byte, len(nonce))
	copy(out, nonce)
	for i := 0; i < 4 && i < len(out); i++ {
		out[i] ^= guard[i]
	}
	return out
}

// SenderLeaf is a helper for verify callbacks: the leaf index of a member sender.
func SenderLeaf(ac *AuthenticatedContent) (tree.LeafIndex, bool) {
	if ac.Content.Sender.SenderType != SenderTypeMember {
		return 0, false
	}
	return ac.Content.Sender.LeafIndex, true
}

// contentEncoding is the encoding of one message's FramedContentTBS followed
// by its FramedContentAuthData — the AuthenticatedContentTBM — computed once
// from the decoded content and reused for the signature (§6.1), the
// membership tag (§6.2) and the confirmed transcript hash (§8.2), so a large
// commit is encoded once per processed message. It is always built from the
// values acted on, never taken from the raw input.
//
// The three are hashes of the whole message under different keys and
// prefixes, so none can reuse another's work; for a large message they run
// on different cores (see authenticate).
type contentEncoding struct {
	buf []byte // headroom for the SignContent header, then tbm
	at  int    // where tbm (and tbs) start in buf
	tbm []byte // FramedContentTBS || FramedContentAuthData
	tbs []byte // FramedContentTBS, a prefix of tbm
	fc  []byte // FramedContent, inside tbs
	wf  []byte // the wire format, just before fc
	sig []byte // opaque signature<V>, the start of FramedContentAuthData

	// For a large commit, the confirmed transcript hash is computed in the
	// background from transcriptFrom (the interim hash it started from).
	tasks          *parallel.Tasks
	transcript     *parallel.Later
	transcriptFrom []byte
	confirmed      []byte
}

// signatureLabel is the SignWithLabel label of FramedContentTBS (§6.1).
const signatureLabel = "FramedContentTBS"

// encodeContent encodes ac with ctxBytes, the encoded GroupContext (used
// only for the sender types whose TBS includes it), in one buffer of the
// exact size with room in front for the SignContent header, so that the
// signature is checked without copying the message.
func encodeContent(ac *AuthenticatedContent, ctxBytes []byte) (*contentEncoding, error) {
	fc := &ac.Content
	withCtx := needsGroupContext(fc.Sender.SenderType)
	if withCtx && ctxBytes == nil {
		return nil, wrapf(ErrIncompleteValue, "encoding a %v message needs the group context", fc.Sender.SenderType)
	}
	room := suite.LabelHeadroom(signatureLabel)
	var at, fcStart, fcEnd, tbsEnd int
	buf, err := wire.AppendBuild(recycledBuffer(), func(b *wire.Builder) {
		b.AddRaw(make([]byte, room))
		at = b.Len()
		b.AddUint16(uint16(tree.ProtocolVersionMLS10))
		b.AddUint16(uint16(ac.WireFormat))
		fcStart = b.Len()
		fc.MarshalMLS(b)
		fcEnd = b.Len()
		if withCtx {
			b.AddRaw(ctxBytes)
		}
		tbsEnd = b.Len()
		ac.Auth.MarshalFor(b, fc.ContentType)
	})
	if err != nil {
		return nil, err
	}
	// FramedContentAuthData starts with opaque signature<V>.
	r := wire.NewReader(buf[tbsEnd:])
	r.Opaque()
	sigEnd := len(buf) - r.Remaining()
	return &contentEncoding{buf: buf, at: at, tbm: buf[at:], tbs: buf[at:tbsEnd:tbsEnd],
		fc: buf[fcStart:fcEnd:fcEnd], wf: buf[fcStart-2 : fcStart : fcStart], sig: buf[tbsEnd:sigEnd:sigEnd]}, nil
}

// authChecks are what protects one message's content.
type authChecks struct {
	// The membership tag (§6.2), when checkTag: a member's PublicMessage.
	checkTag           bool
	membershipKey, tag []byte
	// The sender's signature key (§6.1), or why it could not be found.
	pub    []byte
	keyErr error
	// For a commit, the interim transcript hash its confirmed transcript
	// hash starts from (§8.2).
	interim []byte
}

// authenticate checks the membership tag, then the signature, and reports
// the first failure in that order (a tag failure before a missing sender
// key). For a large commit it also starts the confirmed transcript hash,
// which nextConfirmedTranscriptHashEnc picks up. On a large message the
// hashes run concurrently, and the transcript hash may still be running
// when authenticate returns: the caller must call enc.close once done.
func (enc *contentEncoding) authenticate(s *suite.Suite, ac *AuthenticatedContent, c authChecks) error {
	var tagErr, sigErr error
	checkTag := func() {
		if subtle.ConstantTimeCompare(s.MAC(c.membershipKey, enc.tbm), c.tag) != 1 {
			tagErr = ErrInvalidMembershipTag
		}
	}
	checkSig := func() {
		if err := s.VerifyWithLabelAt(c.pub, signatureLabel, enc.buf[:enc.at+len(enc.tbs)], enc.at, ac.Auth.Signature); err != nil {
			sigErr = fmt.Errorf("%w: %v content from %v", ErrInvalidSignature, ac.Content.ContentType, ac.Content.Sender)
		}
	}
	if len(enc.tbm) < parallel.HashBytes {
		if c.checkTag {
			checkTag()
		}
		if c.keyErr == nil && tagErr == nil {
			checkSig()
		}
	} else {
		t := new(parallel.Tasks)
		if c.keyErr == nil {
			t.Go(checkSig) // the longest (EdDSA hashes with SHA-512) goes first
		}
		if c.checkTag {
			t.Go(checkTag)
		}
		if ac.Content.ContentType == ContentTypeCommit && c.interim != nil && c.keyErr == nil {
			from := slices.Clone(c.interim)
			enc.transcriptFrom = from
			enc.transcript = t.Later(func() { enc.confirmed = enc.transcriptHash(s, from) })
		}
		enc.tasks = t
		t.Run()
	}
	for _, err := range []error{tagErr, c.keyErr, sigErr} {
		if err != nil {
			enc.close()
			return err
		}
	}
	return nil
}

// transcriptHash is Hash(interim || ConfirmedTranscriptHashInput), the
// input being struct { WireFormat wire_format; FramedContent content;
// opaque signature<V>; } (§8.2), all three already in the encoding.
func (enc *contentEncoding) transcriptHash(s *suite.Suite, interim []byte) []byte {
	return s.Hash(interim, enc.wf, enc.fc, enc.sig)
}

// close stops background work on enc that nobody waits for any more and
// recycles its buffer: enc's byte slices must not be used after it. It
// returns once nothing of enc is running. nil-safe and idempotent.
func (enc *contentEncoding) close() {
	if enc == nil || enc.buf == nil {
		return
	}
	if enc.tasks != nil {
		enc.tasks.Close()
	}
	recycleBuffer(enc.buf)
	*enc = contentEncoding{confirmed: enc.confirmed}
}

// Buffers of large encodings are recycled: for an 800 KB commit (a
// 10,000-member sparse tree) allocating and clearing the buffer costs
// several times more than encoding into it.
var encodingBuffers sync.Pool // of *[]byte

const (
	minRecycled = parallel.HashBytes
	maxRecycled = 16 << 20
)

// recycledBuffer returns an empty buffer, with room if one was recycled.
func recycledBuffer() []byte {
	if p, ok := encodingBuffers.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return nil
}

// recycleBuffer keeps b for a later encoding if it is worth keeping.
func recycleBuffer(b []byte) {
	if c := cap(b); c >= minRecycled && c <= maxRecycled {
		b = b[:0]
		encodingBuffers.Put(&b)
	}
}

// authenticatePublic turns a PublicMessage into a verified
// AuthenticatedContent: the sender/content pairing (§6), the membership tag
// of a member sender (§6.2) and the signature (§6.1), failing in that order.
// The caller must call enc.close once done with enc.
func (g *Group) authenticatePublic(pm *PublicMessage) (*AuthenticatedContent, *contentEncoding, error) {
	ac := pm.AuthenticatedContent()
	if err := checkSenderContent(WireFormatPublicMessage, &ac.Content); err != nil {
		return nil, nil, err
	}
	enc, err := encodeContent(ac, g.ctxBytes)
	if err != nil {
		return nil, nil, err
	}
	c := authChecks{interim: g.interim}
	// A PublicGroup has no membership key: it checks the signature only.
	if ac.Content.Sender.SenderType == SenderTypeMember && !g.public {
		c.checkTag, c.membershipKey, c.tag = true, g.secrets.MembershipKey, pm.MembershipTag
	}
	c.pub, c.keyErr = g.senderSignatureKey(ac)
	if err := enc.authenticate(g.suite, ac, c); err != nil {
		return nil, nil, err
	}
	return ac, enc, nil
}

// authenticateContent encodes ac (decrypted from a PrivateMessage) and
// checks its signature with pub (§6.1). The caller must call enc.close once
// done with enc.
func (g *Group) authenticateContent(ac *AuthenticatedContent, pub []byte) (*contentEncoding, error) {
	enc, err := encodeContent(ac, g.ctxBytes)
	if err != nil {
		return nil, err
	}
	if err := enc.authenticate(g.suite, ac, authChecks{pub: pub, interim: g.interim}); err != nil {
		return nil, err
	}
	return enc, nil
}
