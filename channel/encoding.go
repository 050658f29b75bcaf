package channel

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/spacepanda/spacepanda/mls/wire"
)

// Encodings. All use the TLS presentation language with MLS varints
// (RFC 9420 §2.1), behind a 4-byte magic and a version byte, and decode
// strictly (trailing bytes, bad lengths, invalid UTF-8 are errors).

// Limits.
const (
	MaxIDLen   = 64
	MaxNameLen = 256
	// MaxBody is the largest chat message body.
	MaxBody = 64 << 10
)

var (
	chatMagic   = []byte("SPcm") // chat message in MLS application data
	inviteMagic = []byte("SPiv") // InviteToken
)

// Versions.
const (
	ChatVersion        = 1
	ChannelInfoVersion = 1
	InviteVersion      = 1
)

// ChatMessage is the payload of a chat message inside MLS application data:
//
//	"SPcm" uint8 version = 1
//	struct {
//	    opaque id<V>;             // 1..64 bytes of UTF-8, unique in the channel
//	    uint64 timestamp;         // sender's clock, Unix milliseconds
//	    opaque body<V>;           // UTF-8 text, at most MaxBody bytes
//	    optional<opaque> reply_to<V>;
//	} ChatMessage;
//
// There is deliberately no sender field: the sender is the authenticated
// MLS credential of the message.
type ChatMessage struct {
	ID        string
	Timestamp time.Time // millisecond precision on the wire
	Body      []byte
	ReplyTo   string // "" when none
}

func validID(s string) bool { return len(s) >= 1 && len(s) <= MaxIDLen && utf8.ValidString(s) }

// MarshalChat encodes m.
func MarshalChat(m *ChatMessage) ([]byte, error) {
	if !validID(m.ID) || (m.ReplyTo != "" && !validID(m.ReplyTo)) {
		return nil, fmt.Errorf("%w: message id", ErrInvalidEncoding)
	}
	if len(m.Body) > MaxBody {
		return nil, ErrBodyTooLarge
	}
	b := wire.NewBuilder(len(m.Body) + 64)
	b.AddRaw(chatMagic)
	b.AddUint8(ChatVersion)
	b.AddOpaque([]byte(m.ID))
	b.AddUint64(uint64(m.Timestamp.UnixMilli()))
	b.AddOpaque(m.Body)
	b.AddOptional(m.ReplyTo != "", func(b *wire.Builder) { b.AddOpaque([]byte(m.ReplyTo)) })
	return b.Bytes()
}

// IsChat reports whether data starts like one of our chat messages (of any
// version).
func IsChat(data []byte) bool { return bytes.HasPrefix(data, chatMagic) }

// UnmarshalChat decodes a chat message. Data that is not a ChatMessage of a
// version we know is an error wrapping ErrInvalidEncoding (the Manager then
// shows it as raw text).
func UnmarshalChat(data []byte) (*ChatMessage, error) {
	if !IsChat(data) {
		return nil, fmt.Errorf("%w: not a chat message", ErrInvalidEncoding)
	}
	r := wire.NewReader(data[len(chatMagic):])
	if v := r.Uint8(); r.Err() == nil && v != ChatVersion {
		return nil, fmt.Errorf("%w: chat message version %d", ErrInvalidEncoding, v)
	}
	id := r.Opaque()
	ts := r.Uint64()
	body := r.OpaqueCopy()
	var reply []byte
	hasReply := r.Optional(func(r *wire.Reader) { reply = r.Opaque() })
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("%w: chat message: %w", ErrInvalidEncoding, err)
	}
	m := &ChatMessage{ID: string(id), Body: body, ReplyTo: string(reply)}
	switch {
	case !validID(m.ID):
		return nil, fmt.Errorf("%w: chat message id", ErrInvalidEncoding)
	case hasReply && !validID(m.ReplyTo):
		return nil, fmt.Errorf("%w: chat message reply_to", ErrInvalidEncoding)
	case len(body) > MaxBody:
		return nil, fmt.Errorf("%w: %w", ErrInvalidEncoding, ErrBodyTooLarge)
	case ts > 1<<62:
		return nil, fmt.Errorf("%w: chat message timestamp", ErrInvalidEncoding)
	}
	m.Timestamp = time.UnixMilli(int64(ts)).UTC()
	return m, nil
}

// Descriptor describes a channel.
type Descriptor struct {
	ID        string // hex of GroupID
	GroupID   []byte
	Name      string
	Public    bool
	CreatedAt time.Time
}

//	struct {
//	    opaque group_id<V>;       // the channel id is its hex encoding
//	    opaque name<V>;           // UTF-8, at most 256 bytes
//	    uint8 public;             // 0 or 1
//	    uint64 created_at;        // Unix milliseconds
//	} ChannelDescriptor;
func (d *Descriptor) marshal(b *wire.Builder) {
	b.AddOpaque(d.GroupID)
	b.AddOpaque([]byte(d.Name))
	b.AddBool(d.Public)
	b.AddUint64(uint64(d.CreatedAt.UnixMilli()))
}

func (d *Descriptor) unmarshal(r *wire.Reader) {
	d.GroupID = r.OpaqueCopy()
	name := r.Opaque()
	d.Public = r.Bool()
	ts := r.Uint64()
	if r.Err() != nil {
		return
	}
	switch {
	case len(d.GroupID) == 0:
		r.Fail("empty group id")
	case len(name) > MaxNameLen || !utf8.Valid(name):
		r.Fail("channel name")
	case ts > 1<<62:
		r.Fail("created_at")
	}
	d.Name = string(name)
	d.ID = fmt.Sprintf("%x", d.GroupID)
	d.CreatedAt = time.UnixMilli(int64(ts)).UTC()
}

// ChannelInfo is the content of the ExtensionTypeChannelInfo GroupInfo
// extension: signed by the committer and encrypted to the joiners, so it is
// authenticated, unlike the outer fields of an InviteToken.
//
//	uint8 version = 1;
//	ChannelDescriptor channel;
//	uint64 invite_expires_at;     // Unix milliseconds, 0: no expiry
type ChannelInfo struct {
	Channel         Descriptor
	InviteExpiresAt time.Time // zero: none
}

func unixMilliOrZero(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixMilli())
}

func timeOrZero(ms uint64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms)).UTC()
}

// MarshalChannelInfo encodes ci.
func MarshalChannelInfo(ci *ChannelInfo) ([]byte, error) {
	b := wire.NewBuilder(64)
	b.AddUint8(ChannelInfoVersion)
	ci.Channel.marshal(b)
	b.AddUint64(unixMilliOrZero(ci.InviteExpiresAt))
	return b.Bytes()
}

// UnmarshalChannelInfo decodes a ChannelInfo.
func UnmarshalChannelInfo(data []byte) (*ChannelInfo, error) {
	r := wire.NewReader(data)
	if v := r.Uint8(); r.Err() == nil && v != ChannelInfoVersion {
		return nil, fmt.Errorf("%w: channel info version %d", ErrInvalidEncoding, v)
	}
	ci := &ChannelInfo{}
	ci.Channel.unmarshal(r)
	exp := r.Uint64()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("%w: channel info: %w", ErrInvalidEncoding, err)
	}
	if exp > 1<<62 {
		return nil, fmt.Errorf("%w: channel info expiry", ErrInvalidEncoding)
	}
	ci.InviteExpiresAt = timeOrZero(exp)
	return ci, nil
}

// InviteToken is what an inviter hands a joiner: the channel, the Welcome
// and the ratchet tree.
//
//	"SPiv" uint8 version = 1
//	struct {
//	    ChannelDescriptor channel;
//	    opaque welcome<V>;        // MLSMessage (wire format welcome)
//	    opaque ratchet_tree<V>;   // RatchetTreeNodes, empty: in the Welcome
//	    uint64 created_at;        // Unix milliseconds
//	    uint64 expires_at;        // Unix milliseconds, 0: none
//	} InviteToken;
//
// Only the Welcome is authenticated; the joiner trusts the channel
// descriptor and expiry carried in the Welcome's GroupInfo (ChannelInfo)
// over these, and checks that the two agree on the group.
type InviteToken struct {
	Channel     Descriptor
	Welcome     []byte
	RatchetTree []byte
	CreatedAt   time.Time
	ExpiresAt   time.Time // zero: none
}

// MarshalBinary encodes the token.
func (t *InviteToken) MarshalBinary() ([]byte, error) {
	b := wire.NewBuilder(len(t.Welcome) + len(t.RatchetTree) + 128)
	b.AddRaw(inviteMagic)
	b.AddUint8(InviteVersion)
	t.Channel.marshal(b)
	b.AddOpaque(t.Welcome)
	b.AddOpaque(t.RatchetTree)
	b.AddUint64(unixMilliOrZero(t.CreatedAt))
	b.AddUint64(unixMilliOrZero(t.ExpiresAt))
	return b.Bytes()
}

// UnmarshalBinary decodes a token strictly.
func (t *InviteToken) UnmarshalBinary(data []byte) error {
	if !bytes.HasPrefix(data, inviteMagic) {
		return fmt.Errorf("%w: not an invite token", ErrInvalidInvite)
	}
	r := wire.NewReader(data[len(inviteMagic):])
	if v := r.Uint8(); r.Err() == nil && v != InviteVersion {
		return fmt.Errorf("%w: invite version %d", ErrInvalidInvite, v)
	}
	var out InviteToken
	out.Channel.unmarshal(r)
	out.Welcome = r.OpaqueCopy()
	out.RatchetTree = r.OpaqueCopy()
	created, expires := r.Uint64(), r.Uint64()
	if err := r.Finish(); err != nil {
		return fmt.Errorf("%w: %w: %w", ErrInvalidInvite, ErrInvalidEncoding, err)
	}
	if len(out.Welcome) == 0 || created > 1<<62 || expires > 1<<62 {
		return fmt.Errorf("%w: empty welcome or bad time", ErrInvalidInvite)
	}
	if len(out.RatchetTree) == 0 {
		out.RatchetTree = nil
	}
	out.CreatedAt, out.ExpiresAt = timeOrZero(created), timeOrZero(expires)
	*t = out
	return nil
}

// MarshalText encodes the token as unpadded base64url of MarshalBinary (for
// URLs and JSON).
func (t *InviteToken) MarshalText() ([]byte, error) {
	b, err := t.MarshalBinary()
	if err != nil {
		return nil, err
	}
	out := make([]byte, base64.RawURLEncoding.EncodedLen(len(b)))
	base64.RawURLEncoding.Encode(out, b)
	return out, nil
}

// UnmarshalText decodes the MarshalText form.
func (t *InviteToken) UnmarshalText(text []byte) error {
	b := make([]byte, base64.RawURLEncoding.DecodedLen(len(text)))
	n, err := base64.RawURLEncoding.Decode(b, text)
	if err != nil {
		return fmt.Errorf("%w: base64: %w", ErrInvalidInvite, err)
	}
	return t.UnmarshalBinary(b[:n])
}
