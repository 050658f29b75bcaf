package tree

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/spacepanda/spacepanda/mls/internal/parallel"
	"github.com/spacepanda/spacepanda/mls/suite"
)

// updatePathNodeLabel is the EncryptWithLabel label of path secrets (RFC 9420 §7.6).
const updatePathNodeLabel = "UpdatePathNode"

// PrivateKeys holds the HPKE private keys a member knows, by node: its own
// leaf's and those of the parent nodes it holds after commits (RFC 9420 §4.2
// tree invariant). Values are SerializePrivateKey encodings.
type PrivateKeys map[NodeIndex][]byte

// Clone returns a copy of the map (the key bytes are shared; they are never
// modified in place).
func (k PrivateKeys) Clone() PrivateKeys { return maps.Clone(k) }

// Nodes returns the node indexes held, sorted.
func (k PrivateKeys) Nodes() []NodeIndex {
	return slices.Sorted(maps.Keys(k))
}

// Prune drops the keys of nodes that are blank in t or outside it.
func (k PrivateKeys) Prune(t *Tree) {
	for x := range k {
		if t.Node(x) == nil {
			delete(k, x)
		}
	}
}

// CheckPrivateKeys verifies that every key in keys belongs to a non-blank
// node of t whose public key it matches (RFC 9420 §12.4.3.1).
func (t *Tree) CheckPrivateKeys(s *suite.Suite, keys PrivateKeys) error {
	for _, x := range keys.Nodes() {
		pub := t.EncryptionKey(x)
		if pub == nil {
			return fmt.Errorf("%w: node %d is blank", ErrPublicKeyMismatch, x)
		}
		got, err := s.HPKEPublicKey(keys[x])
		if err != nil {
			return fmt.Errorf("%w: node %d: %w", ErrPublicKeyMismatch, x, err)
		}
		if !bytes.Equal(got, pub) {
			return fmt.Errorf("%w: node %d", ErrPublicKeyMismatch, x)
		}
	}
	return nil
}

// deriveNodeKeyPair derives a node's key pair from its path secret:
// node_secret = DeriveSecret(path_secret, "node"), then KEM.DeriveKeyPair
// (RFC 9420 §7.4).
func deriveNodeKeyPair(s *suite.Suite, pathSecret []byte) (priv, pub []byte, err error) {
	ns, err := s.DeriveSecret(pathSecret, "node")
	if err != nil {
		return nil, nil, err
	}
	return s.DeriveKeyPair(ns)
}

// CommitPath is a committer's new path (RFC 9420 §7.4–§7.6, §12.4.1),
// produced in two steps so the engine can follow the RFC's ordering:
// NewCommitPath derives the keys and stages them, with parent hashes and the
// signed leaf, in Tree; once the caller has built the provisional
// GroupContext from Tree.TreeHash, Encrypt produces the UpdatePath.
type CommitPath struct {
	// Tree is a clone of the input tree with the sender's direct path
	// blanked, new keys on its filtered direct path and the new leaf.
	Tree *Tree
	// Sender is the committer's leaf.
	Sender LeafIndex
	// LeafNode is the committer's new, signed leaf node.
	LeafNode *LeafNode
	// CommitSecret is DeriveSecret(last path secret, "path") (§8, §12.4.1).
	CommitSecret []byte
	// PrivateKeys are the private keys of the new leaf and the nodes on the
	// filtered direct path.
	PrivateKeys PrivateKeys

	fdp     []NodeIndex // filtered direct path, leaf to root
	copath  []NodeIndex // copath child of each fdp node
	secrets [][]byte    // path secret of each fdp node
}

// NewCommitPath starts an UpdatePath for sender on (a clone of) t, the tree
// with the commit's proposals applied (RFC 9420 §7.4, §7.5, §12.4.1):
//   - a leaf secret of Nh bytes is read from rand; the leaf key pair is
//     derived from it as from a path secret, and path_secret[0] =
//     DeriveSecret(leaf_secret, "path"), path_secret[n] =
//     DeriveSecret(path_secret[n-1], "path") along the filtered direct path;
//   - the direct path is blanked and the filtered direct path gets the
//     derived public keys, empty unmerged lists and parent hashes;
//   - the new leaf is a copy of leaf (credential, capabilities, extensions,
//     signature key) with encryption_key, leaf_node_source = commit and
//     parent_hash set; sign must sign it (e.g. with LeafNode.Sign for the
//     group id and sender) before it is placed in the tree.
//
// The commit secret is DeriveSecret of the last path secret (of the leaf
// secret when the filtered direct path is empty). t is not modified.
func (t *Tree) NewCommitPath(s *suite.Suite, rand io.Reader, sender LeafIndex, leaf *LeafNode, sign func(*LeafNode) error) (*CommitPath, error) {
	if sender >= LeafIndex(t.nLeaves) {
		return nil, fmt.Errorf("%w: %d", ErrLeafOutOfRange, sender)
	}
	if leaf == nil {
		return nil, ErrInvalidLeafNode
	}
	secret := make([]byte, s.HashSize())
	if _, err := io.ReadFull(rand, secret); err != nil {
		return nil, fmt.Errorf("tree: leaf secret: %w", err)
	}
	nt := t.Clone()
	cp := &CommitPath{Tree: nt, Sender: sender, PrivateKeys: make(PrivateKeys)}
	cp.fdp, cp.copath = t.AppendFilteredDirectPath(nil, nil, sender)

	leafPriv, leafPub, err := deriveNodeKeyPair(s, secret)
	if err != nil {
		return nil, fmt.Errorf("tree: leaf key pair: %w", err)
	}
	cp.PrivateKeys[sender.Node()] = leafPriv

	nt.blankDirectPath(sender)
	cp.secrets = make([][]byte, len(cp.fdp))
	for i, x := range cp.fdp {
		if secret, err = s.DeriveSecret(secret, "path"); err != nil {
			return nil, err
		}
		cp.secrets[i] = secret
		priv, pub, err := deriveNodeKeyPair(s, secret)
		if err != nil {
			return nil, fmt.Errorf("tree: node key pair: %w", err)
		}
		cp.PrivateKeys[x] = priv
		nt.setNode(x, &Node{Parent: &ParentNode{EncryptionKey: pub}})
	}
	if cp.CommitSecret, err = s.DeriveSecret(secret, "path"); err != nil {
		return nil, err
	}

	nl := *leaf
	nl.EncryptionKey = leafPub
	nl.LeafNodeSource = LeafNodeSourceCommit
	nl.Lifetime = Lifetime{}
	nl.ParentHash = nt.setPathParentHashes(s, cp.fdp, cp.copath)
	if nl.ParentHash == nil {
		nl.ParentHash = []byte{}
	}
	nl.Signature = nil
	if err := sign(&nl); err != nil {
		return nil, fmt.Errorf("tree: sign new leaf: %w", err)
	}
	cp.LeafNode = &nl
	nt.setNode(sender.Node(), &Node{Leaf: &nl})
	return cp, nil
}

// FilteredDirectPath returns the committer's filtered direct path.
func (c *CommitPath) FilteredDirectPath() []NodeIndex { return slices.Clone(c.fdp) }

// PathSecretFor returns the path secret a new member at leaf must receive
// in its Welcome: the one of the lowest common ancestor of leaf and the
// committer (RFC 9420 §12.4.3.1). ok is false when that node is not on the
// filtered direct path (leaf is the sender or outside the tree).
func (c *CommitPath) PathSecretFor(leaf LeafIndex) (secret []byte, ok bool) {
	if leaf == c.Sender {
		return nil, false
	}
	a := CommonAncestor(leaf.Node(), c.Sender.Node())
	i := slices.Index(c.fdp, a)
	if i < 0 {
		return nil, false
	}
	return c.secrets[i], true
}

// Encrypt produces the UpdatePath (RFC 9420 §7.6, §12.4.1): each path secret
// is encrypted with EncryptWithLabel(pk, "UpdatePathNode", groupContext,
// path_secret) to every node in the resolution of the copath child, leaving
// out the leaves added by this commit (exclude, any order). groupContext is
// the encoded provisional GroupContext, whose tree_hash is
// c.Tree.TreeHash(s).
func (c *CommitPath) Encrypt(s *suite.Suite, groupContext []byte, exclude []LeafIndex) (*UpdatePath, error) {
	exclude = sortedLeaves(exclude)
	up := &UpdatePath{LeafNode: *c.LeafNode, Nodes: make([]UpdatePathNode, len(c.fdp))}
	var seals []seal
	var res []NodeIndex
	for i, x := range c.fdp {
		res = c.Tree.appendResolution(res[:0], c.copath[i], exclude)
		cts := make([]HPKECiphertext, len(res))
		for j, r := range res {
			seals = append(seals, seal{out: &cts[j], pub: c.Tree.EncryptionKey(r), secret: c.secrets[i], node: r})
		}
		up.Nodes[i] = UpdatePathNode{EncryptionKey: c.Tree.EncryptionKey(x), EncryptedPathSecret: cts}
	}
	if err := runSeals(s, groupContext, seals); err != nil {
		return nil, err
	}
	return up, nil
}

// seal is one HPKE encryption of a path secret to a node.
type seal struct {
	out    *HPKECiphertext
	pub    []byte
	secret []byte
	node   NodeIndex
}

// runSeals performs the seals, independent of one another, on up to
// GOMAXPROCS goroutines when there are many (a commit in a sparse tree seals
// to about every member). Errors are reported for the first failing seal.
func runSeals(s *suite.Suite, groupContext []byte, seals []seal) error {
	do := func(k int) error {
		sl := &seals[k]
		kem, ct, err := s.EncryptWithLabel(sl.pub, updatePathNodeLabel, groupContext, sl.secret)
		if err != nil {
			return fmt.Errorf("tree: encrypt path secret to node %d: %w", sl.node, err)
		}
		*sl.out = HPKECiphertext{KEMOutput: kem, Ciphertext: ct}
		return nil
	}
	workers := parallel.SealWorkers(len(seals))
	if workers <= 1 {
		for k := range seals {
			if err := do(k); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, len(seals))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1) - 1)
				if k >= len(seals) {
					return
				}
				errs[k] = do(k)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func sortedLeaves(l []LeafIndex) []LeafIndex {
	if len(l) == 0 || slices.IsSorted(l) {
		return l
	}
	return slices.Sorted(slices.Values(l))
}

// ReceivedPath is an UpdatePath merged into a tree by a receiver
// (RFC 9420 §7.5); Decrypt then recovers the path secrets.
type ReceivedPath struct {
	// Tree is a clone of the input tree with the UpdatePath merged.
	Tree *Tree
	// Sender is the committer's leaf.
	Sender LeafIndex

	path    *UpdatePath
	fdp     []NodeIndex
	copath  []NodeIndex
	exclude []LeafIndex
}

// MergeUpdatePath validates path from sender against t, the tree with the
// commit's proposals applied, and merges it into a clone (RFC 9420 §7.5,
// §12.4.2):
//   - the leaf's source is commit; path has one node per filtered direct
//     path node, each with one ciphertext per node in the resolution of the
//     copath child without the leaves in exclude (those added by the commit);
//   - every public key of the path is an HPKE public key of the suite
//     (suite.ValidateHPKEPublicKey), none appears in t or twice in the path
//     (which also rejects reusing the sender's current encryption key);
//   - after blanking the direct path and setting the new keys with empty
//     unmerged lists, the leaf's parent_hash equals the recomputed one.
//
// The rest of leaf node validation (signature, credential, capabilities) is
// the caller's. Sender's leaf may be blank (an external commit's new leaf).
func (t *Tree) MergeUpdatePath(s *suite.Suite, sender LeafIndex, path *UpdatePath, exclude []LeafIndex) (*ReceivedPath, error) {
	if sender >= LeafIndex(t.nLeaves) {
		return nil, fmt.Errorf("%w: %d", ErrLeafOutOfRange, sender)
	}
	if path.LeafNode.LeafNodeSource != LeafNodeSourceCommit {
		return nil, fmt.Errorf("%w: leaf_node_source is %v", ErrInvalidUpdatePath, path.LeafNode.LeafNodeSource)
	}
	exclude = sortedLeaves(exclude)
	rp := &ReceivedPath{Sender: sender, path: path, exclude: exclude}
	rp.fdp, rp.copath = t.AppendFilteredDirectPath(nil, nil, sender)
	if len(path.Nodes) != len(rp.fdp) {
		return nil, fmt.Errorf("%w: %d nodes for a filtered direct path of %d", ErrInvalidUpdatePath, len(path.Nodes), len(rp.fdp))
	}
	seen := make(map[string]struct{}, len(path.Nodes)+1)
	checkKey := func(k []byte) error {
		if err := s.ValidateHPKEPublicKey(k); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidUpdatePath, err)
		}
		if _, ok := t.FindEncryptionKey(k); ok {
			return fmt.Errorf("%w: update path key already in the tree", ErrDuplicateKey)
		}
		if _, ok := seen[string(k)]; ok {
			return fmt.Errorf("%w: update path repeats a key", ErrDuplicateKey)
		}
		seen[string(k)] = struct{}{}
		return nil
	}
	if err := checkKey(path.LeafNode.EncryptionKey); err != nil {
		return nil, err
	}
	for i := range path.Nodes {
		if err := checkKey(path.Nodes[i].EncryptionKey); err != nil {
			return nil, err
		}
		if got, want := len(path.Nodes[i].EncryptedPathSecret), t.resolutionSize(rp.copath[i], exclude); got != want {
			return nil, fmt.Errorf("%w: node %d has %d ciphertexts for a resolution of %d", ErrInvalidUpdatePath, rp.fdp[i], got, want)
		}
	}

	nt := t.Clone()
	nt.blankDirectPath(sender)
	for i, x := range rp.fdp {
		nt.setNode(x, &Node{Parent: &ParentNode{EncryptionKey: path.Nodes[i].EncryptionKey}})
	}
	ph := nt.setPathParentHashes(s, rp.fdp, rp.copath)
	if !bytes.Equal(ph, path.LeafNode.ParentHash) {
		return nil, fmt.Errorf("%w: committer's leaf parent_hash does not match its path", ErrParentHash)
	}
	leaf := path.LeafNode
	nt.setNode(sender.Node(), &Node{Leaf: &leaf})
	rp.Tree = nt
	return rp, nil
}

// Decrypt recovers the path secrets for the member at leaf me holding keys
// (RFC 9420 §7.5): it finds the filtered direct path node whose copath child
// holds me, decrypts the path secret with the key of a node of that child's
// resolution that keys holds, derives the secrets up to the root and checks
// every derived public key against the path. It returns the commit secret,
// the decrypted path secret and the member's new private keys: keys without
// those of the sender's direct path and of nodes blank in rp.Tree, plus the
// derived ones.
func (rp *ReceivedPath) Decrypt(s *suite.Suite, groupContext []byte, me LeafIndex, keys PrivateKeys) (commitSecret, pathSecret []byte, newKeys PrivateKeys, err error) {
	if me == rp.Sender || me >= LeafIndex(rp.Tree.nLeaves) {
		return nil, nil, nil, fmt.Errorf("%w: leaf %d cannot decrypt a path from leaf %d", ErrNoPrivateKey, me, rp.Sender)
	}
	k := slices.Index(rp.fdp, CommonAncestor(me.Node(), rp.Sender.Node()))
	if k < 0 {
		return nil, nil, nil, fmt.Errorf("%w: leaf %d is not under the path", ErrNoPrivateKey, me)
	}
	res := rp.Tree.appendResolution(nil, rp.copath[k], rp.exclude)
	j := slices.IndexFunc(res, func(x NodeIndex) bool { return keys[x] != nil })
	if j < 0 {
		return nil, nil, nil, fmt.Errorf("%w: none held for the resolution of node %d", ErrNoPrivateKey, rp.copath[k])
	}
	ct := rp.path.Nodes[k].EncryptedPathSecret[j]
	pathSecret, err = s.DecryptWithLabel(keys[res[j]], updatePathNodeLabel, groupContext, ct.KEMOutput, ct.Ciphertext)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("tree: decrypt path secret: %w", err)
	}
	derived, commitSecret, err := rp.Tree.derivePath(s, rp.fdp[k:], pathSecret)
	if err != nil {
		return nil, nil, nil, err
	}
	newKeys = make(PrivateKeys, len(keys)+len(derived))
	w := rp.Tree.w()
	root := rp.Tree.Root()
	for x, v := range keys {
		if rp.Tree.Node(x) != nil {
			newKeys[x] = v
		}
	}
	for x := rp.Sender.Node(); x != root; {
		x = parent(x, w)
		delete(newKeys, x)
	}
	for x, v := range derived {
		newKeys[x] = v
	}
	return commitSecret, pathSecret, newKeys, nil
}

// derivePath derives the key pairs of nodes (a filtered direct path suffix)
// from the path secret of nodes[0], checks each public key against the tree,
// and returns the private keys and the commit secret.
func (t *Tree) derivePath(s *suite.Suite, nodes []NodeIndex, secret []byte) (PrivateKeys, []byte, error) {
	keys := make(PrivateKeys, len(nodes))
	for i, x := range nodes {
		if i > 0 {
			var err error
			if secret, err = s.DeriveSecret(secret, "path"); err != nil {
				return nil, nil, err
			}
		}
		priv, pub, err := deriveNodeKeyPair(s, secret)
		if err != nil {
			return nil, nil, fmt.Errorf("tree: node key pair: %w", err)
		}
		if !bytes.Equal(pub, t.EncryptionKey(x)) {
			return nil, nil, fmt.Errorf("%w: node %d", ErrPublicKeyMismatch, x)
		}
		keys[x] = priv
	}
	cs, err := s.DeriveSecret(secret, "path")
	if err != nil {
		return nil, nil, err
	}
	return keys, cs, nil
}

// DerivePathKeys is the joiner's side of a Welcome's path_secret (RFC 9420
// §12.4.3.1): from the path secret of node start (the lowest common
// ancestor of the joiner's and the committer's leaves), it derives the key
// pairs of start and of every non-blank ancestor in turn — after a commit
// those are exactly the rest of the committer's filtered direct path —
// checking each public key against the tree. It returns the private keys
// and the commit secret.
func (t *Tree) DerivePathKeys(s *suite.Suite, start NodeIndex, pathSecret []byte) (PrivateKeys, []byte, error) {
	if IsLeaf(start) || t.Node(start) == nil {
		return nil, nil, fmt.Errorf("%w: node %d is not a non-blank parent", ErrPublicKeyMismatch, start)
	}
	nodes := []NodeIndex{start}
	w := t.w()
	root := t.Root()
	for x := start; x != root; {
		x = parent(x, w)
		if t.nodes.get(int(x)) != nil {
			nodes = append(nodes, x)
		}
	}
	return t.derivePath(s, nodes, pathSecret)
}
