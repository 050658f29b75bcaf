package schedule

import (
	"fmt"

	"github.com/spacepanda/spacepanda/mls/tree"
)

// Sender reservations: persisting a sender ratchet ahead of where it is.
//
// A sender must never reuse a (key, nonce) pair, so its ratchet position has
// to be durable before each ciphertext leaves (RFC 9420 §6.3.1, §9.2). One
// synced write per message costs far more than the crypto. Instead, the
// caller persists a state in which the sender's ratchet stands at a later
// generation (the reservation mark) and then sends every generation below
// the mark from memory without writing. After a crash the sender resumes at
// the mark: the unused generations are skipped, never reused, and receivers
// see a gap, which their out-of-order window absorbs as long as the
// reservation is smaller than Options.MaxForward.

// StateReserving returns the tree's state (as State does) with leaf's rt
// ratchet moved forward to generation mark, as if every generation from the
// current one up to mark-1 had been sent. The tree itself is not changed
// (beyond deriving the leaf's ratchets if it had never used them). A mark
// at or below the current generation changes nothing.
func (t *SecretTree) StateReserving(leaf tree.LeafIndex, rt RatchetType, mark uint32) (*SecretTreeState, error) {
	if _, err := t.ratchet(leaf, rt); err != nil { // derive the leaf's ratchets if unused
		return nil, err
	}
	st := t.State()
	for i := range st.Leaves {
		l := &st.Leaves[i]
		if l.Leaf != leaf {
			continue
		}
		r := &l.Application
		if rt == HandshakeRatchet {
			r = &l.Handshake
		}
		if r.Next >= uint64(mark) || len(r.Secret) == 0 {
			return st, nil
		}
		s := t.suite
		for j := r.Next; j < uint64(mark); j++ {
			next, err := s.DeriveTreeSecret(r.Secret, "secret", uint32(j), s.HashSize())
			if err != nil {
				return nil, err
			}
			clear(r.Secret)
			r.Secret = next
		}
		r.Next = uint64(mark)
		for _, kn := range r.Retained { // a sender keeps no skipped keys of its own
			clear(kn.Key)
			clear(kn.Nonce)
		}
		r.Retained = nil
		r.Floor = uint64(mark)
		return st, nil
	}
	return nil, fmt.Errorf("%w: leaf %d has no ratchet state", ErrInvalidState, leaf)
}
