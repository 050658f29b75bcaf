package conformance

import (
	"fmt"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/internal/access"
	"github.com/spacepanda/spacepanda/mls/wire"
)

type transcriptCase struct {
	CipherSuite                  uint16   `json:"cipher_suite"`
	ConfirmationKey              hexBytes `json:"confirmation_key"`
	AuthenticatedContent         hexBytes `json:"authenticated_content"`
	InterimTranscriptHashBefore  hexBytes `json:"interim_transcript_hash_before"`
	ConfirmedTranscriptHashAfter hexBytes `json:"confirmed_transcript_hash_after"`
	InterimTranscriptHashAfter   hexBytes `json:"interim_transcript_hash_after"`
}

func (c *transcriptCase) suiteID() uint16 { return c.CipherSuite }

func (c *transcriptCase) check() error {
	s, err := suiteFor(c.CipherSuite)
	if err != nil {
		return err
	}
	var ac mls.AuthenticatedContent
	if err := wire.Unmarshal(c.AuthenticatedContent, &ac); err != nil {
		return fmt.Errorf("decode authenticated_content: %w", err)
	}
	if ac.Content.ContentType != mls.ContentTypeCommit {
		return fmt.Errorf("authenticated_content holds %v, not a commit", ac.Content.ContentType)
	}
	if err := mls.Internals(access.Key{}).VerifyConfirmationTag(s, ac.Auth.ConfirmationTag, c.ConfirmationKey, c.ConfirmedTranscriptHashAfter); err != nil {
		return err
	}
	confirmed, err := mls.NextConfirmedTranscriptHash(s, c.InterimTranscriptHashBefore, &ac)
	if err != nil {
		return err
	}
	if err := mismatch("confirmed_transcript_hash_after", confirmed, c.ConfirmedTranscriptHashAfter); err != nil {
		return err
	}
	interim, err := mls.NextInterimTranscriptHash(s, confirmed, ac.Auth.ConfirmationTag)
	if err != nil {
		return err
	}
	return mismatch("interim_transcript_hash_after", interim, c.InterimTranscriptHashAfter)
}
