package mls

import (
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
	b := wire.NewBuilder(256)
	b.AddUint16(uint16(ac.WireFormat))
	ac.Content.MarshalMLS(b)
	b.AddOpaque(ac.Auth.Signature)
	return b.Bytes()
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
// FramedContent encoding of ac already at hand (enc.fc); nil enc encodes it.
func nextConfirmedTranscriptHashEnc(s *suite.Suite, interimBefore []byte, ac *AuthenticatedContent, enc *contentEncoding) ([]byte, error) {
	if enc == nil {
		return NextConfirmedTranscriptHash(s, interimBefore, ac)
	}
	if ac.Content.ContentType != ContentTypeCommit {
		return nil, wrapf(ErrInvalidMessage, "transcript hash input from %v content", ac.Content.ContentType)
	}
	b := wire.NewBuilder(len(ac.Auth.Signature) + 8)
	b.AddOpaque(ac.Auth.Signature)
	sig, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	wf := []byte{byte(ac.WireFormat >> 8), byte(ac.WireFormat)}
	return s.Hash(interimBefore, wf, enc.fc, sig), nil
}
