package mls

import (
	"fmt"

	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// WireFormat identifies the kind of an MLSMessage ("MLS Wire Formats"
// registry, RFC 9420 §6, §17.2).
type WireFormat uint16

// Wire formats defined by RFC 9420 §17.2.
const (
	WireFormatPublicMessage  WireFormat = 0x0001
	WireFormatPrivateMessage WireFormat = 0x0002
	WireFormatWelcome        WireFormat = 0x0003
	WireFormatGroupInfo      WireFormat = 0x0004
	WireFormatKeyPackage     WireFormat = 0x0005
)

func (w WireFormat) String() string {
	switch w {
	case WireFormatPublicMessage:
		return "mls_public_message"
	case WireFormatPrivateMessage:
		return "mls_private_message"
	case WireFormatWelcome:
		return "mls_welcome"
	case WireFormatGroupInfo:
		return "mls_group_info"
	case WireFormatKeyPackage:
		return "mls_key_package"
	}
	return fmt.Sprintf("WireFormat(0x%04x)", uint16(w))
}

// ContentType is the kind of content a message carries (RFC 9420 §6).
type ContentType uint8

// ContentType values (RFC 9420 §6).
const (
	ContentTypeApplication ContentType = 1
	ContentTypeProposal    ContentType = 2
	ContentTypeCommit      ContentType = 3
)

func (c ContentType) String() string {
	switch c {
	case ContentTypeApplication:
		return "application"
	case ContentTypeProposal:
		return "proposal"
	case ContentTypeCommit:
		return "commit"
	}
	return fmt.Sprintf("ContentType(%d)", uint8(c))
}

func (c ContentType) valid() bool { return c >= ContentTypeApplication && c <= ContentTypeCommit }

// readContentType reads a ContentType that must be known.
func readContentType(r *wire.Reader) ContentType {
	c := ContentType(r.Uint8())
	if r.Err() == nil && !c.valid() {
		invalid(r, ErrUnknownContentType, "%d", uint8(c))
	}
	return c
}

// SenderType says who sent a message (RFC 9420 §6).
type SenderType uint8

// SenderType values (RFC 9420 §6).
const (
	SenderTypeMember            SenderType = 1
	SenderTypeExternal          SenderType = 2
	SenderTypeNewMemberProposal SenderType = 3
	SenderTypeNewMemberCommit   SenderType = 4
)

func (s SenderType) String() string {
	switch s {
	case SenderTypeMember:
		return "member"
	case SenderTypeExternal:
		return "external"
	case SenderTypeNewMemberProposal:
		return "new_member_proposal"
	case SenderTypeNewMemberCommit:
		return "new_member_commit"
	}
	return fmt.Sprintf("SenderType(%d)", uint8(s))
}

// Sender identifies a message's sender (RFC 9420 §6).
//
//	struct {
//	    SenderType sender_type;
//	    select (Sender.sender_type) {
//	        case member:              uint32 leaf_index;
//	        case external:            uint32 sender_index;
//	        case new_member_commit:
//	        case new_member_proposal: struct{};
//	    };
//	} Sender;
//
// LeafIndex is encoded only for member senders, SenderIndex (an index into
// the external_senders extension) only for external senders.
type Sender struct {
	SenderType  SenderType
	LeafIndex   tree.LeafIndex
	SenderIndex uint32
}

// MemberSender returns a member Sender at leaf index i.
func MemberSender(i tree.LeafIndex) Sender {
	return Sender{SenderType: SenderTypeMember, LeafIndex: i}
}

// MarshalMLS implements wire.Marshaler.
func (s *Sender) MarshalMLS(b *wire.Builder) {
	switch s.SenderType {
	case SenderTypeMember:
		b.AddUint8(uint8(s.SenderType))
		b.AddUint32(uint32(s.LeafIndex))
	case SenderTypeExternal:
		b.AddUint8(uint8(s.SenderType))
		b.AddUint32(s.SenderIndex)
	case SenderTypeNewMemberProposal, SenderTypeNewMemberCommit:
		b.AddUint8(uint8(s.SenderType))
	default:
		incomplete(b, "sender type %d", uint8(s.SenderType))
	}
}

// UnmarshalMLS implements wire.Unmarshaler.
func (s *Sender) UnmarshalMLS(r *wire.Reader) {
	*s = Sender{SenderType: SenderType(r.Uint8())}
	switch {
	case r.Err() != nil:
	case s.SenderType == SenderTypeMember:
		s.LeafIndex = tree.LeafIndex(r.Uint32())
	case s.SenderType == SenderTypeExternal:
		s.SenderIndex = r.Uint32()
	case s.SenderType == SenderTypeNewMemberProposal, s.SenderType == SenderTypeNewMemberCommit:
	default:
		invalid(r, ErrUnknownSenderType, "%d", uint8(s.SenderType))
	}
}

// marshalBody writes the content select shared by FramedContent and
// privateMessageContent:
//
//	select (content_type) {
//	    case application: opaque application_data<V>;
//	    case proposal:    Proposal proposal;
//	    case commit:      Commit commit;
//	};
func marshalBody(b *wire.Builder, ct ContentType, appData []byte, p *Proposal, c *Commit) {
	switch ct {
	case ContentTypeApplication:
		b.AddOpaque(appData)
	case ContentTypeProposal:
		if p == nil {
			incomplete(b, "proposal content without a proposal")
			return
		}
		p.MarshalMLS(b)
	case ContentTypeCommit:
		if c == nil {
			incomplete(b, "commit content without a commit")
			return
		}
		c.MarshalMLS(b)
	default:
		incomplete(b, "content type %d", uint8(ct))
	}
}

// unmarshalBody reads the content select for a known content type.
func unmarshalBody(r *wire.Reader, ct ContentType) (appData []byte, p *Proposal, c *Commit) {
	switch ct {
	case ContentTypeApplication:
		appData = r.OpaqueCopy()
	case ContentTypeProposal:
		p = new(Proposal)
		p.UnmarshalMLS(r)
	case ContentTypeCommit:
		c = new(Commit)
		c.UnmarshalMLS(r)
	default:
		if r.Err() == nil {
			invalid(r, ErrUnknownContentType, "%d", uint8(ct))
		}
	}
	return appData, p, c
}

// FramedContent is the content of a handshake or application message
// (RFC 9420 §6).
//
//	struct {
//	    opaque group_id<V>;
//	    uint64 epoch;
//	    Sender sender;
//	    opaque authenticated_data<V>;
//	    ContentType content_type;
//	    select (FramedContent.content_type) {
//	        case application: opaque application_data<V>;
//	        case proposal:    Proposal proposal;
//	        case commit:      Commit commit;
//	    };
//	} FramedContent;
//
// ContentType selects which of ApplicationData, Proposal and Commit is
// encoded; Proposal or Commit must be non-nil when selected. The decoder
// does not check which sender types may send which content (§6.1); that
// is message validation.
type FramedContent struct {
	GroupID           []byte
	Epoch             uint64
	Sender            Sender
	AuthenticatedData []byte
	ContentType       ContentType
	ApplicationData   []byte
	Proposal          *Proposal
	Commit            *Commit
}

// MarshalMLS implements wire.Marshaler.
func (fc *FramedContent) MarshalMLS(b *wire.Builder) {
	b.AddOpaque(fc.GroupID)
	b.AddUint64(fc.Epoch)
	fc.Sender.MarshalMLS(b)
	b.AddOpaque(fc.AuthenticatedData)
	b.AddUint8(uint8(fc.ContentType))
	marshalBody(b, fc.ContentType, fc.ApplicationData, fc.Proposal, fc.Commit)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (fc *FramedContent) UnmarshalMLS(r *wire.Reader) {
	*fc = FramedContent{}
	fc.GroupID = r.OpaqueCopy()
	fc.Epoch = r.Uint64()
	fc.Sender.UnmarshalMLS(r)
	fc.AuthenticatedData = r.OpaqueCopy()
	fc.ContentType = readContentType(r)
	fc.ApplicationData, fc.Proposal, fc.Commit = unmarshalBody(r, fc.ContentType)
}

// needsGroupContext reports whether FramedContentTBS includes the
// GroupContext for this sender type (RFC 9420 §6.1).
func needsGroupContext(s SenderType) bool {
	return s == SenderTypeMember || s == SenderTypeNewMemberCommit
}

// FramedContentTBS is the input to the FramedContent signature
// (RFC 9420 §6.1). It is encode-only.
//
//	struct {
//	    ProtocolVersion version = mls10;
//	    WireFormat wire_format;
//	    FramedContent content;
//	    select (FramedContentTBS.content.sender.sender_type) {
//	        case member:
//	        case new_member_commit:   GroupContext context;
//	        case external:
//	        case new_member_proposal: struct{};
//	    };
//	} FramedContentTBS;
//
// Context is required (non-nil) for member and new_member_commit senders
// and is ignored for the others, so callers may always pass it.
type FramedContentTBS struct {
	WireFormat WireFormat
	Content    *FramedContent
	Context    *GroupContext
}

// MarshalMLS implements wire.Marshaler.
func (t *FramedContentTBS) MarshalMLS(b *wire.Builder) {
	if t.Content == nil {
		incomplete(b, "FramedContentTBS without content")
		return
	}
	b.AddUint16(uint16(tree.ProtocolVersionMLS10))
	b.AddUint16(uint16(t.WireFormat))
	t.Content.MarshalMLS(b)
	if needsGroupContext(t.Content.Sender.SenderType) {
		if t.Context == nil {
			incomplete(b, "FramedContentTBS for a %v sender needs the GroupContext", t.Content.Sender.SenderType)
			return
		}
		t.Context.MarshalMLS(b)
	}
}

// MarshalTBS returns the FramedContentTBS encoding for content sent with
// wire format wf; ctx is the current GroupContext (see FramedContentTBS).
func (fc *FramedContent) MarshalTBS(wf WireFormat, ctx *GroupContext) ([]byte, error) {
	return wire.Marshal(&FramedContentTBS{WireFormat: wf, Content: fc, Context: ctx})
}

// FramedContentAuthData authenticates a FramedContent (RFC 9420 §6.1).
//
//	struct {
//	    opaque signature<V>;
//	    select (FramedContent.content_type) {
//	        case commit:      MAC confirmation_tag;
//	        case application:
//	        case proposal:    struct{};
//	    };
//	} FramedContentAuthData;
//
// Its encoding depends on the content type, so it has MarshalFor and
// UnmarshalFor instead of the wire interfaces. ConfirmationTag is encoded
// only for commits and must be nil otherwise.
type FramedContentAuthData struct {
	Signature       []byte
	ConfirmationTag []byte
}

// MarshalFor encodes the auth data of content of type ct.
func (a *FramedContentAuthData) MarshalFor(b *wire.Builder, ct ContentType) {
	b.AddOpaque(a.Signature)
	switch {
	case ct == ContentTypeCommit:
		b.AddOpaque(a.ConfirmationTag)
	case a.ConfirmationTag != nil:
		incomplete(b, "confirmation_tag set on %v content", ct)
	}
}

// UnmarshalFor decodes the auth data of content of type ct.
func (a *FramedContentAuthData) UnmarshalFor(r *wire.Reader, ct ContentType) {
	*a = FramedContentAuthData{Signature: r.OpaqueCopy()}
	if ct == ContentTypeCommit {
		a.ConfirmationTag = r.OpaqueCopy()
	}
}

// AuthenticatedContent is a FramedContent with its authentication data and
// the wire format it is (to be) sent with (RFC 9420 §6). Its encoding is
// the input of MakeProposalRef and of the transcript hashes.
//
//	struct {
//	    WireFormat wire_format;
//	    FramedContent content;
//	    FramedContentAuthData auth;
//	} AuthenticatedContent;
//
// WireFormat must be mls_public_message or mls_private_message.
type AuthenticatedContent struct {
	WireFormat WireFormat
	Content    FramedContent
	Auth       FramedContentAuthData
}

// MarshalMLS implements wire.Marshaler.
func (ac *AuthenticatedContent) MarshalMLS(b *wire.Builder) {
	b.AddUint16(uint16(ac.WireFormat))
	ac.Content.MarshalMLS(b)
	ac.Auth.MarshalFor(b, ac.Content.ContentType)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (ac *AuthenticatedContent) UnmarshalMLS(r *wire.Reader) {
	ac.WireFormat = WireFormat(r.Uint16())
	if r.Err() == nil && ac.WireFormat != WireFormatPublicMessage && ac.WireFormat != WireFormatPrivateMessage {
		invalid(r, ErrUnknownWireFormat, "%v in AuthenticatedContent", ac.WireFormat)
		return
	}
	ac.Content.UnmarshalMLS(r)
	ac.Auth.UnmarshalFor(r, ac.Content.ContentType)
}

// TBS returns the FramedContentTBS covered by ac's signature; ctx is the
// GroupContext (see FramedContentTBS).
func (ac *AuthenticatedContent) TBS(ctx *GroupContext) *FramedContentTBS {
	return &FramedContentTBS{WireFormat: ac.WireFormat, Content: &ac.Content, Context: ctx}
}

// AuthenticatedContentTBM is the input to the membership tag MAC
// (RFC 9420 §6.2). It is encode-only.
//
//	struct {
//	  FramedContentTBS content_tbs;
//	  FramedContentAuthData auth;
//	} AuthenticatedContentTBM;
type AuthenticatedContentTBM struct {
	ContentTBS FramedContentTBS
	Auth       *FramedContentAuthData
}

// MarshalMLS implements wire.Marshaler.
func (t *AuthenticatedContentTBM) MarshalMLS(b *wire.Builder) {
	if t.ContentTBS.Content == nil || t.Auth == nil {
		incomplete(b, "AuthenticatedContentTBM without content or auth")
		return
	}
	t.ContentTBS.MarshalMLS(b)
	t.Auth.MarshalFor(b, t.ContentTBS.Content.ContentType)
}

// PublicMessage is a signed, unencrypted message (RFC 9420 §6.2).
//
//	struct {
//	    FramedContent content;
//	    FramedContentAuthData auth;
//	    select (PublicMessage.content.sender.sender_type) {
//	        case member: MAC membership_tag;
//	        case external:
//	        case new_member_commit:
//	        case new_member_proposal: struct{};
//	    };
//	} PublicMessage;
//
// MembershipTag is encoded only for member senders and must be nil
// otherwise.
type PublicMessage struct {
	Content       FramedContent
	Auth          FramedContentAuthData
	MembershipTag []byte
}

// MarshalMLS implements wire.Marshaler.
func (pm *PublicMessage) MarshalMLS(b *wire.Builder) {
	pm.Content.MarshalMLS(b)
	pm.Auth.MarshalFor(b, pm.Content.ContentType)
	switch {
	case pm.Content.Sender.SenderType == SenderTypeMember:
		b.AddOpaque(pm.MembershipTag)
	case pm.MembershipTag != nil:
		incomplete(b, "membership_tag set for a %v sender", pm.Content.Sender.SenderType)
	}
}

// UnmarshalMLS implements wire.Unmarshaler.
func (pm *PublicMessage) UnmarshalMLS(r *wire.Reader) {
	*pm = PublicMessage{}
	pm.Content.UnmarshalMLS(r)
	pm.Auth.UnmarshalFor(r, pm.Content.ContentType)
	if pm.Content.Sender.SenderType == SenderTypeMember {
		pm.MembershipTag = r.OpaqueCopy()
	}
}

// AuthenticatedContent returns the AuthenticatedContent carried by pm
// (sharing its fields).
func (pm *PublicMessage) AuthenticatedContent() *AuthenticatedContent {
	return &AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: pm.Content, Auth: pm.Auth}
}

// PrivateMessage is a signed and encrypted message (RFC 9420 §6.3).
//
//	struct {
//	    opaque group_id<V>;
//	    uint64 epoch;
//	    ContentType content_type;
//	    opaque authenticated_data<V>;
//	    opaque encrypted_sender_data<V>;
//	    opaque ciphertext<V>;
//	} PrivateMessage;
type PrivateMessage struct {
	GroupID             []byte
	Epoch               uint64
	ContentType         ContentType
	AuthenticatedData   []byte
	EncryptedSenderData []byte
	Ciphertext          []byte
}

// MarshalMLS implements wire.Marshaler.
func (pm *PrivateMessage) MarshalMLS(b *wire.Builder) {
	b.AddOpaque(pm.GroupID)
	b.AddUint64(pm.Epoch)
	b.AddUint8(uint8(pm.ContentType))
	b.AddOpaque(pm.AuthenticatedData)
	b.AddOpaque(pm.EncryptedSenderData)
	b.AddOpaque(pm.Ciphertext)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (pm *PrivateMessage) UnmarshalMLS(r *wire.Reader) {
	pm.GroupID = r.OpaqueCopy()
	pm.Epoch = r.Uint64()
	pm.ContentType = readContentType(r)
	pm.AuthenticatedData = r.OpaqueCopy()
	pm.EncryptedSenderData = r.OpaqueCopy()
	pm.Ciphertext = r.OpaqueCopy()
}

// senderDataAAD returns the AAD for pm's sender data encryption.
func (pm *PrivateMessage) senderDataAAD() *senderDataAAD {
	return &senderDataAAD{GroupID: pm.GroupID, Epoch: pm.Epoch, ContentType: pm.ContentType}
}

// ContentAAD returns the AAD for pm's content encryption.
func (pm *PrivateMessage) ContentAAD() *privateContentAAD {
	return &privateContentAAD{GroupID: pm.GroupID, Epoch: pm.Epoch, ContentType: pm.ContentType,
		AuthenticatedData: pm.AuthenticatedData}
}

// privateMessageContent is the plaintext of PrivateMessage.ciphertext
// (RFC 9420 §6.3.1).
//
//	struct {
//	    select (PrivateMessage.content_type) {
//	        case application: opaque application_data<V>;
//	        case proposal:    Proposal proposal;
//	        case commit:      Commit commit;
//	    };
//	    FramedContentAuthData auth;
//	    opaque padding[length_of_padding];
//	} PrivateMessageContent;
//
// ContentType is not encoded: it comes from PrivateMessage.content_type and
// selects the body, as in FramedContent. Padding is the number of zero
// bytes appended. To decode, set ContentType and call wire.Unmarshal, or
// use unmarshalPrivateMessageContent; the decoder takes every byte after
// auth as padding and rejects any non-zero byte (ErrNonZeroPadding).
type privateMessageContent struct {
	ContentType     ContentType
	ApplicationData []byte
	Proposal        *Proposal
	Commit          *Commit
	Auth            FramedContentAuthData
	Padding         int
}

// MarshalMLS implements wire.Marshaler.
func (c *privateMessageContent) MarshalMLS(b *wire.Builder) {
	if c.Padding < 0 {
		incomplete(b, "negative padding")
		return
	}
	marshalBody(b, c.ContentType, c.ApplicationData, c.Proposal, c.Commit)
	c.Auth.MarshalFor(b, c.ContentType)
	b.AddRaw(make([]byte, c.Padding))
}

// UnmarshalMLS implements wire.Unmarshaler. c.ContentType must be set
// beforehand; it consumes all remaining input.
func (c *privateMessageContent) UnmarshalMLS(r *wire.Reader) {
	*c = privateMessageContent{ContentType: c.ContentType}
	c.ApplicationData, c.Proposal, c.Commit = unmarshalBody(r, c.ContentType)
	c.Auth.UnmarshalFor(r, c.ContentType)
	if r.Err() != nil {
		return
	}
	pad := r.Raw(r.Remaining())
	for _, x := range pad {
		if x != 0 {
			invalid(r, ErrNonZeroPadding, "%d padding bytes", len(pad))
			return
		}
	}
	c.Padding = len(pad)
}

// unmarshalPrivateMessageContent decodes the plaintext of a PrivateMessage
// whose content_type is ct.
func unmarshalPrivateMessageContent(data []byte, ct ContentType) (*privateMessageContent, error) {
	c := &privateMessageContent{ContentType: ct}
	if err := wire.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("mls: PrivateMessageContent: %w", err)
	}
	return c, nil
}

// senderDataPlain is the plaintext of PrivateMessage.encrypted_sender_data
// (RFC 9420 §6.3.2).
//
//	struct {
//	    uint32 leaf_index;
//	    uint32 generation;
//	    opaque reuse_guard[4];
//	} SenderData;
type senderDataPlain struct {
	LeafIndex  tree.LeafIndex
	Generation uint32
	ReuseGuard [4]byte
}

// MarshalMLS implements wire.Marshaler.
func (s *senderDataPlain) MarshalMLS(b *wire.Builder) {
	b.AddUint32(uint32(s.LeafIndex))
	b.AddUint32(s.Generation)
	b.AddRaw(s.ReuseGuard[:])
}

// UnmarshalMLS implements wire.Unmarshaler.
func (s *senderDataPlain) UnmarshalMLS(r *wire.Reader) {
	s.LeafIndex = tree.LeafIndex(r.Uint32())
	s.Generation = r.Uint32()
	copy(s.ReuseGuard[:], r.Raw(4))
}

// senderDataAAD is the AAD of the sender data encryption (RFC 9420 §6.3.2).
//
//	struct {
//	    opaque group_id<V>;
//	    uint64 epoch;
//	    ContentType content_type;
//	} SenderDataAAD;
type senderDataAAD struct {
	GroupID     []byte
	Epoch       uint64
	ContentType ContentType
}

// MarshalMLS implements wire.Marshaler.
func (a *senderDataAAD) MarshalMLS(b *wire.Builder) {
	b.AddOpaque(a.GroupID)
	b.AddUint64(a.Epoch)
	b.AddUint8(uint8(a.ContentType))
}

// UnmarshalMLS implements wire.Unmarshaler.
func (a *senderDataAAD) UnmarshalMLS(r *wire.Reader) {
	a.GroupID = r.OpaqueCopy()
	a.Epoch = r.Uint64()
	a.ContentType = readContentType(r)
}

// privateContentAAD is the AAD of the content encryption (RFC 9420 §6.3.1).
//
//	struct {
//	    opaque group_id<V>;
//	    uint64 epoch;
//	    ContentType content_type;
//	    opaque authenticated_data<V>;
//	} PrivateContentAAD;
type privateContentAAD struct {
	GroupID           []byte
	Epoch             uint64
	ContentType       ContentType
	AuthenticatedData []byte
}

// MarshalMLS implements wire.Marshaler.
func (a *privateContentAAD) MarshalMLS(b *wire.Builder) {
	b.AddOpaque(a.GroupID)
	b.AddUint64(a.Epoch)
	b.AddUint8(uint8(a.ContentType))
	b.AddOpaque(a.AuthenticatedData)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (a *privateContentAAD) UnmarshalMLS(r *wire.Reader) {
	a.GroupID = r.OpaqueCopy()
	a.Epoch = r.Uint64()
	a.ContentType = readContentType(r)
	a.AuthenticatedData = r.OpaqueCopy()
}
