package mls

import (
	"bytes"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Transcript hashes (RFC 9420 §8.2).

// ConfirmedTranscriptHashInput encodes struct { WireFormat wire_format;
// FramedContent content; opaque signature<V>; } for a commit.
func confirmedTranscriptHashInput(ac *AuthenticatedContent) ([]byte, error) {
	if ac.Content.ContentType != ContentTypeCommit {
		return nil, wrapf(ErrInvalidMessage, "transcript hash input from %v content", ac.Content.ContentType)
	}
	return wire.Build(func(b *wire.Builder) {
		b.AddUint16(uint16(ac.WireFormat))
		ac.Content.MarshalMLS(b)
		b.AddOpaque(ac.Auth.Signature)
	})
}

// NextConfirmedTranscriptHash computes
// confirmed_transcript_hash_[epoch] = Hash(interim_transcript_hash_[epoch-1] || ConfirmedTranscriptHashInput_[epoch]).
func NextConfirmedTranscriptHash(s *suite.Suite, interimBefore []byte, ac *AuthenticatedContent) ([]byte, error) {
	in, err := confirmedTranscriptHashInput(ac)
	if err != nil {
		return nil, err
	}
	return s.Hash(interimBefore, in), nil
}

// NextInterimTranscriptHash computes
// interim_transcript_hash_[epoch] = Hash(confirmed_transcript_hash_[epoch] || InterimTranscriptHashInput_[epoch]),
// where InterimTranscriptHashInput is struct { MAC confirmation_tag; }.
func NextInterimTranscriptHash(s *suite.Suite, confirmed, confirmationTag []byte) ([]byte, error) {
	b := wire.NewBuilder(len(confirmationTag) + 4)
	b.AddOpaque(confirmationTag)
	in, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	return s.Hash(confirmed, in), nil
}

// nextConfirmedTranscriptHashEnc is NextConfirmedTranscriptHash with the
// encoding of ac already at hand; nil enc encodes it. When authenticate
// started the hash from the same interim hash, its result is taken (waited
// for, or computed here if no helper has started it).
func nextConfirmedTranscriptHashEnc(s *suite.Suite, interimBefore []byte, ac *AuthenticatedContent, enc *contentEncoding) ([]byte, error) {
	if enc == nil || enc.buf == nil { // none, or closed
		return NextConfirmedTranscriptHash(s, interimBefore, ac)
	}
	if ac.Content.ContentType != ContentTypeCommit {
		return nil, wrapf(ErrInvalidMessage, "transcript hash input from %v content", ac.Content.ContentType)
	}
	if enc.transcript != nil && bytes.Equal(enc.transcriptFrom, interimBefore) && enc.transcript.Wait() {
		return enc.confirmed, nil
	}
	return enc.transcriptHash(s, interimBefore), nil
}
