package tree

import (
	"bytes"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/spacepanda/spacepanda/mls/suite"
)

// parallelLeafThreshold is the leaf count from which leaf signatures are
// verified by a worker pool.
const parallelLeafThreshold = 64

// Validate checks the integrity of a received ratchet tree as a joiner must
// (RFC 9420 §12.4.3.1) as far as the tree alone can tell:
//   - the root tree hash equals treeHash (skipped when treeHash is nil);
//   - every unmerged_leaves list is sorted, names non-blank leaves under the
//     node, and every non-blank node in between lists them too (§7.1);
//   - encryption keys are unique across the tree and signature keys across
//     the leaves (§7.3);
//   - every non-blank parent node is parent-hash valid (§7.9.2);
//   - every node's encryption_key is an HPKE public key of the suite
//     (suite.ValidateHPKEPublicKey: RFC 9420 §5.1.1, §7.3), and every leaf
//     signature verifies for (groupID, leaf index) (§7.3), on several cores
//     for large trees.
//
// The rest of leaf node validation (credentials, capabilities against the
// group's required_capabilities and other members, lifetime, extensions)
// needs group context and is the caller's.
func (t *Tree) Validate(s *suite.Suite, groupID, treeHash []byte) error {
	if treeHash != nil && !bytes.Equal(t.TreeHash(s), treeHash) {
		return ErrTreeHashMismatch
	}
	if err := t.CheckUnmergedLeaves(); err != nil {
		return err
	}
	if err := t.CheckKeysUnique(); err != nil {
		return err
	}
	if err := t.VerifyParentHashes(s); err != nil {
		return err
	}
	return t.eachLeaf(func(i LeafIndex) error {
		if err := t.checkNodeKeys(s, i); err != nil {
			return err
		}
		return t.verifyLeaf(s, groupID, i)
	})
}

// checkNodeKeys validates the HPKE public keys of leaf i and of the parent
// node right of it (node 2i+1), so that one pass over the leaves covers
// every node. It reads only immutable data.
func (t *Tree) checkNodeKeys(s *suite.Suite, i LeafIndex) error {
	for _, x := range [2]NodeIndex{i.Node(), i.Node() + 1} {
		if t.Node(x) == nil {
			continue
		}
		if err := s.ValidateHPKEPublicKey(t.EncryptionKey(x)); err != nil {
			return fmt.Errorf("tree: encryption key of node %d: %w", x, err)
		}
	}
	return nil
}

// CheckUnmergedLeaves checks every parent's unmerged_leaves (RFC 9420 §7.1,
// §12.4.3.1): strictly increasing, each a non-blank leaf that descends from
// the node, and listed by every non-blank parent between that leaf and the
// node.
func (t *Tree) CheckUnmergedLeaves() error {
	w := t.w()
	for i := 1; i < t.nodes.len(); i += 2 {
		n := t.nodes.get(i)
		if n == nil {
			continue
		}
		x := NodeIndex(i)
		ul := n.Parent.UnmergedLeaves
		for j, u := range ul {
			if j > 0 && ul[j-1] >= u {
				return fmt.Errorf("%w: node %d: list not strictly increasing", ErrUnmergedLeaves, x)
			}
			if u >= LeafIndex(t.nLeaves) || !IsInSubtree(u.Node(), x) {
				return fmt.Errorf("%w: node %d: leaf %d is not a descendant", ErrUnmergedLeaves, x, u)
			}
			if t.nodes.get(int(u.Node())) == nil {
				return fmt.Errorf("%w: node %d: leaf %d is blank", ErrUnmergedLeaves, x, u)
			}
			for y := parent(u.Node(), w); y != x; y = parent(y, w) {
				if m := t.nodes.get(int(y)); m != nil {
					if _, ok := slices.BinarySearch(m.Parent.UnmergedLeaves, u); !ok {
						return fmt.Errorf("%w: node %d lists leaf %d but node %d does not", ErrUnmergedLeaves, x, u, y)
					}
				}
			}
		}
	}
	return nil
}

// CheckKeysUnique checks that no HPKE encryption key appears in two nodes
// and no signature key in two leaves (RFC 9420 §7.3, §12.4.3.1).
func (t *Tree) CheckKeysUnique() error {
	enc := make(map[string]struct{}, t.nodes.len())
	sig := make(map[string]struct{}, t.nodes.len()/2+1)
	for i := 0; i < t.nodes.len(); i++ {
		n := t.nodes.get(i)
		if n == nil {
			continue
		}
		var ek []byte
		if n.Leaf != nil {
			ek = n.Leaf.EncryptionKey
			if _, dup := sig[string(n.Leaf.SignatureKey)]; dup {
				return fmt.Errorf("%w: signature key of leaf %d", ErrDuplicateKey, i/2)
			}
			sig[string(n.Leaf.SignatureKey)] = struct{}{}
		} else {
			ek = n.Parent.EncryptionKey
		}
		if _, dup := enc[string(ek)]; dup {
			return fmt.Errorf("%w: encryption key of node %d", ErrDuplicateKey, i)
		}
		enc[string(ek)] = struct{}{}
	}
	return nil
}

// VerifyLeafSignatures verifies the signature of every non-blank leaf for
// (groupID, leaf index) (RFC 9420 §7.3). With many leaves the work is spread
// over a pool of GOMAXPROCS goroutines. The error names the lowest failing
// leaf and wraps ErrLeafSignature.
func (t *Tree) VerifyLeafSignatures(s *suite.Suite, groupID []byte) error {
	return t.eachLeaf(func(i LeafIndex) error { return t.verifyLeaf(s, groupID, i) })
}

// eachLeaf runs check for every leaf index, on a pool of GOMAXPROCS
// goroutines when there are many leaves; check must only read the tree. It
// returns the error of the lowest failing leaf.
func (t *Tree) eachLeaf(check func(LeafIndex) error) error {
	n := int(t.nLeaves)
	workers := runtime.GOMAXPROCS(0)
	if n < parallelLeafThreshold || workers < 2 {
		for i := 0; i < n; i++ {
			if err := check(LeafIndex(i)); err != nil {
				return err
			}
		}
		return nil
	}
	const chunk = 16
	var (
		next    atomic.Int64
		mu      sync.Mutex
		firstAt = n
		first   error
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				lo := int(next.Add(chunk)) - chunk
				if lo >= n {
					return
				}
				mu.Lock()
				stop := lo > firstAt
				mu.Unlock()
				if stop {
					return
				}
				for i := lo; i < min(lo+chunk, n); i++ {
					if err := check(LeafIndex(i)); err != nil {
						mu.Lock()
						if i < firstAt {
							firstAt, first = i, err
						}
						mu.Unlock()
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// verifyLeaf reads only immutable data, so it is safe to call concurrently.
func (t *Tree) verifyLeaf(s *suite.Suite, groupID []byte, i LeafIndex) error {
	n := t.nodes.get(int(i.Node()))
	if n == nil {
		return nil
	}
	return n.Leaf.Verify(s, groupID, i)
}
