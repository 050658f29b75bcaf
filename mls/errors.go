package mls

import (
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/mls/wire"
)

// Errors of package mls. Decoding errors are returned wrapped together with
// wire.ErrInvalidValue (or another wire error); test with errors.Is.
// Messages never contain secret bytes.
var (
	// ErrUnsupportedVersion: a protocol version other than mls10 where the
	// RFC fixes it (MLSMessage.version, GroupContext.version).
	ErrUnsupportedVersion = errors.New("mls: unsupported protocol version")
	// ErrUnknownWireFormat: a wire_format this implementation cannot parse (RFC 9420 §6, §17.2).
	ErrUnknownWireFormat = errors.New("mls: unknown wire format")
	// ErrUnknownContentType: a content_type outside application/proposal/commit (RFC 9420 §6).
	ErrUnknownContentType = errors.New("mls: unknown content type")
	// ErrUnknownSenderType: a sender_type outside RFC 9420 §6.
	ErrUnknownSenderType = errors.New("mls: unknown sender type")
	// ErrUnknownProposalType: a proposal_type this implementation cannot
	// decode. The Proposal select has no length prefix, so only the seven
	// RFC 9420 types (§12.1) can be parsed; any other is rejected.
	ErrUnknownProposalType = errors.New("mls: unknown proposal type")
	// ErrUnknownProposalOrRefType: a ProposalOrRef type outside proposal/reference (RFC 9420 §12.4).
	ErrUnknownProposalOrRefType = errors.New("mls: unknown ProposalOrRef type")
	// ErrNonZeroPadding: PrivateMessageContent padding holds a non-zero byte (RFC 9420 §6.3.1).
	ErrNonZeroPadding = errors.New("mls: non-zero padding")
	// ErrIncompleteValue: a value cannot be encoded because a field its
	// selector requires is missing (e.g. a Proposal of type add with Add nil),
	// or an optional part is present where its selector forbids it.
	ErrIncompleteValue = errors.New("mls: incomplete value")
)

// invalid records err, wrapped with wire.ErrInvalidValue, on r.
func invalid(r *wire.Reader, err error, format string, args ...any) {
	r.SetError(fmt.Errorf("%w: %s: %w", err, fmt.Sprintf(format, args...), wire.ErrInvalidValue))
}

// wrapf wraps err with a formatted message.
func wrapf(err error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", err, fmt.Sprintf(format, args...))
}

// incomplete records an ErrIncompleteValue on b.
func incomplete(b *wire.Builder, format string, args ...any) {
	b.SetError(wrapf(ErrIncompleteValue, format, args...))
}
