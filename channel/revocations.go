package channel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Revocations travel with the removals they cause. A commit that removes
// a revoked device carries the revocation (signed by the device's user's
// identity key) in its authenticated_data (RFC 9420 §6: sent in the clear,
// covered by the signature and the AEAD), so every member learns it from
// the group itself — not only from a relay directory that may leave it out
// — and refuses the device from then on: its key packages when inviting
// its user, its leaves anywhere. A peer that does not know the label
// ignores the data.

// revocationsLabel starts the authenticated data of such a commit.
var revocationsLabel = []byte("spacepanda revocations v1")

// maxCommitRevocations bounds the revocations one commit carries (and a
// receiver reads): a removal of more revoked devices carries the first.
const maxCommitRevocations = 16

// encodeRevocations is the authenticated data carrying revs (nil: none).
func encodeRevocations(revs []*identity.Revocation) ([]byte, error) {
	if len(revs) == 0 {
		return nil, nil
	}
	return newRevocationsBuilder(revs[:min(len(revs), maxCommitRevocations)]).Bytes()
}

func newRevocationsBuilder(revs []*identity.Revocation) *wire.Builder {
	raw := make([][]byte, 0, len(revs))
	for _, r := range revs {
		enc, err := r.Marshal()
		if err != nil {
			b := wire.NewBuilder(0)
			b.SetError(err)
			return b
		}
		raw = append(raw, enc)
	}
	return newRevocationsBuilderRaw(raw)
}

// newRevocationsBuilderRaw encodes the label and the encoded revocations.
func newRevocationsBuilderRaw(raw [][]byte) *wire.Builder {
	b := wire.NewBuilder(64 + len(raw)*identity.MaxRevocationSize)
	b.AddOpaque(revocationsLabel)
	b.AddVector(func(b *wire.Builder) {
		for _, r := range raw {
			b.AddOpaque(r)
		}
	})
	return b
}

// decodeRevocations reads the revocations of a commit's authenticated data;
// data that is not ours (another label, or none) holds none. The
// revocations are not verified yet.
func decodeRevocations(ad []byte) ([]*identity.Revocation, error) {
	rd := wire.NewReader(ad)
	if !bytes.Equal(rd.Opaque(), revocationsLabel) || rd.Err() != nil {
		return nil, nil
	}
	var out []*identity.Revocation
	rd.Vector(func(r *wire.Reader) {
		for !r.Empty() && r.Err() == nil {
			if len(out) == maxCommitRevocations {
				r.Fail("more than %d revocations", maxCommitRevocations)
				return
			}
			rev, err := identity.ParseRevocation(r.Opaque())
			if err != nil {
				r.SetError(err)
				return
			}
			out = append(out, rev)
		}
	})
	if err := rd.Finish(); err != nil {
		return nil, fmt.Errorf("%w: revocations in a commit: %w", ErrInvalidEncoding, err)
	}
	return out, nil
}

// revocationLearner is implemented by GroupProviders that keep device
// revocations (the MLS adapter: provider.Provider.AddRevocation).
type revocationLearner interface {
	learnRevocations(ctx context.Context, revs []*identity.Revocation) error
}

func (a *mlsGroupProvider) learnRevocations(ctx context.Context, revs []*identity.Revocation) error {
	var errs []error
	for _, r := range revs {
		if err := a.p.AddRevocation(ctx, r); err != nil {
			errs = append(errs, err) // the others are still learned
		}
	}
	return errors.Join(errs...)
}

// revocationsOf are the revocations this member holds for the leaves of
// ms it is about to remove.
func (a *mlsGroupProvider) revocationsOf(ms []Member, leaves []uint32) []*identity.Revocation {
	var out []*identity.Revocation
	known := a.p.Revocations()
	for _, m := range ms {
		if !m.Revoked || !slices.Contains(leaves, m.LeafIndex) {
			continue
		}
		for _, r := range known {
			if r.IdentityKey == m.IdentityKey && r.DeviceID == m.DeviceID {
				out = append(out, r)
			}
		}
	}
	return out
}
