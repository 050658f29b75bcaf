package mls

import (
	"fmt"

	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Message is the top-level message of RFC 9420 §6.
//
//	struct {
//	    ProtocolVersion version = mls10;
//	    WireFormat wire_format;
//	    select (MLSMessage.wire_format) {
//	        case mls_public_message:  PublicMessage public_message;
//	        case mls_private_message: PrivateMessage private_message;
//	        case mls_welcome:         Welcome welcome;
//	        case mls_group_info:      GroupInfo group_info;
//	        case mls_key_package:     KeyPackage key_package;
//	    };
//	} MLSMessage;
//
// WireFormat selects which pointer field is encoded; it must be non-nil.
// Decoding rejects versions other than mls10 (ErrUnsupportedVersion) and
// unknown wire formats (ErrUnknownWireFormat): the select has no length
// prefix, so an unknown body cannot be skipped. Encoding fails unless
// Version is ProtocolVersionMLS10.
type Message struct {
	Version        tree.ProtocolVersion
	WireFormat     WireFormat
	PublicMessage  *PublicMessage
	PrivateMessage *PrivateMessage
	Welcome        *Welcome
	GroupInfo      *GroupInfo
	KeyPackage     *KeyPackage
}

// NewMessage wraps body (a *PublicMessage, *PrivateMessage, *Welcome,
// *GroupInfo or *KeyPackage) in an mls10 MLSMessage.
func NewMessage(body wire.Marshaler) (*Message, error) {
	m := &Message{Version: tree.ProtocolVersionMLS10}
	switch v := body.(type) {
	case *PublicMessage:
		m.WireFormat, m.PublicMessage = WireFormatPublicMessage, v
	case *PrivateMessage:
		m.WireFormat, m.PrivateMessage = WireFormatPrivateMessage, v
	case *Welcome:
		m.WireFormat, m.Welcome = WireFormatWelcome, v
	case *GroupInfo:
		m.WireFormat, m.GroupInfo = WireFormatGroupInfo, v
	case *KeyPackage:
		m.WireFormat, m.KeyPackage = WireFormatKeyPackage, v
	default:
		return nil, fmt.Errorf("%w: %T is not an MLSMessage body", ErrIncompleteValue, body)
	}
	return m, nil
}

// body returns the selected body as a marshaler, or nil when missing.
func (m *Message) body() wire.Marshaler {
	switch m.WireFormat {
	case WireFormatPublicMessage:
		if m.PublicMessage != nil {
			return m.PublicMessage
		}
	case WireFormatPrivateMessage:
		if m.PrivateMessage != nil {
			return m.PrivateMessage
		}
	case WireFormatWelcome:
		if m.Welcome != nil {
			return m.Welcome
		}
	case WireFormatGroupInfo:
		if m.GroupInfo != nil {
			return m.GroupInfo
		}
	case WireFormatKeyPackage:
		if m.KeyPackage != nil {
			return m.KeyPackage
		}
	}
	return nil
}

// MarshalMLS implements wire.Marshaler.
func (m *Message) MarshalMLS(b *wire.Builder) {
	if m.Version != tree.ProtocolVersionMLS10 {
		unsupportedVersion(b, m.Version)
		return
	}
	body := m.body()
	if body == nil {
		incomplete(b, "MLSMessage with wire format %v without its body", m.WireFormat)
		return
	}
	b.AddUint16(uint16(m.Version))
	b.AddUint16(uint16(m.WireFormat))
	body.MarshalMLS(b)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (m *Message) UnmarshalMLS(r *wire.Reader) {
	*m = Message{Version: readVersion(r)}
	m.WireFormat = WireFormat(r.Uint16())
	if r.Err() != nil {
		return
	}
	switch m.WireFormat {
	case WireFormatPublicMessage:
		m.PublicMessage = new(PublicMessage)
		m.PublicMessage.UnmarshalMLS(r)
	case WireFormatPrivateMessage:
		m.PrivateMessage = new(PrivateMessage)
		m.PrivateMessage.UnmarshalMLS(r)
	case WireFormatWelcome:
		m.Welcome = new(Welcome)
		m.Welcome.UnmarshalMLS(r)
	case WireFormatGroupInfo:
		m.GroupInfo = new(GroupInfo)
		m.GroupInfo.UnmarshalMLS(r)
	case WireFormatKeyPackage:
		m.KeyPackage = new(KeyPackage)
		m.KeyPackage.UnmarshalMLS(r)
	default:
		invalid(r, ErrUnknownWireFormat, "%v", m.WireFormat)
	}
}

// UnmarshalMessage decodes one MLSMessage from data (strictly: trailing
// bytes are an error).
func UnmarshalMessage(data []byte) (*Message, error) {
	m := new(Message)
	if err := wire.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("mls: MLSMessage: %w", err)
	}
	return m, nil
}
