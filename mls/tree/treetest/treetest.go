// Package treetest builds large, valid ratchet trees quickly for tests and
// benchmarks of the tree and of the engine: every node key is derived from a
// seed, so the private keys of any member can be recomputed on demand, and
// the parent hashes form valid chains (RFC 9420 §7.9.2), so the trees pass
// Tree.Validate (leaf signatures included when Options.Sign is set).
package treetest

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Shape selects which parent nodes are set.
type Shape int

const (
	// Full: every leaf and every parent is non-blank; each parent was set by
	// a commit from its leftmost descendant leaf.
	Full Shape = iota
	// Sparse: leaf 0 created the group and added everyone in one commit:
	// leaf 0's direct path is set, every other parent is blank, and the other
	// leaves come from key packages.
	Sparse
)

// Options configure Build.
type Options struct {
	Shape   Shape
	GroupID []byte
	// Seed makes the tree deterministic.
	Seed uint64
	// Sign gives every leaf a real signature key and a valid signature
	// (slower: one signature per leaf). Otherwise signature keys are random
	// bytes and signatures empty.
	Sign bool
}

// Built is a generated tree and what is needed to act as its members.
type Built struct {
	Tree    *tree.Tree
	Suite   *suite.Suite
	GroupID []byte
	opts    Options
	// signers are made once, while building: since Go 1.26 ECDSA key
	// generation ignores a custom random source, so a key cannot be
	// regenerated from a seed.
	signers map[tree.LeafIndex]*suite.Signer
}

// Build returns a tree of n ≥ 1 leaves (rounded up to a power of two, all
// non-blank) for suite s.
func Build(s *suite.Suite, n int, opts Options) (*Built, error) {
	if n < 1 {
		return nil, fmt.Errorf("treetest: %d leaves", n)
	}
	nl := uint32(1)
	for int(nl) < n {
		nl <<= 1
	}
	w := int(tree.NodeWidth(nl))
	b := &Built{Suite: s, GroupID: opts.GroupID, opts: opts}

	// Node public keys, derived in parallel.
	// Leaves n.. are blank. A parent is set when the shape's commits set it:
	// every parent (Full) or leaf 0's direct path (Sparse), except those a
	// committer's filtered direct path skips because the right subtree (the
	// copath child of the leftmost leaf below) has no member (RFC 9420 §4.1.2).
	set := func(x int) bool {
		if x%2 == 0 {
			return x/2 < n
		}
		if opts.Shape != Full && !onLeaf0Path(tree.NodeIndex(x)) {
			return false
		}
		r, _ := tree.Right(tree.NodeIndex(x), nl)
		return leftmostLeaf(r) < n
	}
	pubs := make([][]byte, w)
	var firstErr error
	var mu sync.Mutex
	parallel(w, func(x int) {
		if !set(x) {
			return
		}
		_, pub, err := b.nodeKey(tree.NodeIndex(x))
		if err != nil {
			mu.Lock()
			firstErr = err
			mu.Unlock()
			return
		}
		pubs[x] = pub
	})
	if firstErr != nil {
		return nil, firstErr
	}

	nodes := make(tree.RatchetTreeNodes, w)
	hashes := make([][]byte, w)
	bd := builder{b: b, s: s, nodes: nodes, hashes: hashes, pubs: pubs, n: nl, members: n}
	if err := bd.finalize(tree.Root(nl), nil, true); err != nil {
		return nil, err
	}
	t, err := tree.New(nodes.Trimmed())
	if err != nil {
		return nil, err
	}
	b.Tree = t
	return b, nil
}

// leftmostLeaf is the index of the leftmost leaf under x.
func leftmostLeaf(x tree.NodeIndex) int {
	k := tree.Level(x)
	return int((uint64(x) - (1<<k - 1)) / 2)
}

func onLeaf0Path(x tree.NodeIndex) bool {
	// Leaf 0's ancestors are the nodes 2^k - 1.
	return (x+1)&x == 0
}

// nodeKey derives node x's HPKE key pair from the seed.
func (b *Built) nodeKey(x tree.NodeIndex) (priv, pub []byte, err error) {
	var in [17]byte
	binary.BigEndian.PutUint64(in[:8], b.opts.Seed)
	in[8] = 'k'
	binary.BigEndian.PutUint32(in[9:], uint32(x))
	h := sha256.Sum256(in[:])
	ikm := make([]byte, 0, 64)
	ikm = append(ikm, h[:]...)
	ikm = append(ikm, h[:]...)
	return b.Suite.DeriveKeyPair(ikm)
}

func (b *Built) rng(tag byte, i uint32) *rand.ChaCha8 {
	var in [17]byte
	binary.BigEndian.PutUint64(in[:8], b.opts.Seed)
	in[8] = tag
	binary.BigEndian.PutUint32(in[9:], i)
	return rand.NewChaCha8(sha256.Sum256(in[:]))
}

// Signer returns the signature key of leaf i (Options.Sign only).
func (b *Built) Signer(i tree.LeafIndex) (*suite.Signer, error) {
	if !b.opts.Sign {
		return nil, fmt.Errorf("treetest: tree built without signature keys")
	}
	if sg, ok := b.signers[i]; ok {
		return sg, nil
	}
	if b.Tree != nil {
		return nil, fmt.Errorf("treetest: leaf %d has no signer", i)
	}
	priv, _, err := b.Suite.GenerateSignatureKeyPair(b.rng('s', uint32(i)))
	if err != nil {
		return nil, err
	}
	sg, err := b.Suite.NewSigner(priv)
	if err != nil {
		return nil, err
	}
	if b.signers == nil {
		b.signers = map[tree.LeafIndex]*suite.Signer{}
	}
	b.signers[i] = sg
	return sg, nil
}

// PrivateKeys returns the private keys member i holds in the built tree:
// its leaf's and those of its non-blank ancestors.
func (b *Built) PrivateKeys(i tree.LeafIndex) (tree.PrivateKeys, error) {
	keys := make(tree.PrivateKeys)
	t := b.Tree
	x := i.Node()
	for {
		if t.Node(x) != nil {
			priv, _, err := b.nodeKey(x)
			if err != nil {
				return nil, err
			}
			keys[x] = priv
		}
		p, ok := tree.Parent(x, t.NumLeaves())
		if !ok {
			return keys, nil
		}
		x = p
	}
}

type builder struct {
	b       *Built
	s       *suite.Suite
	nodes   tree.RatchetTreeNodes
	hashes  [][]byte
	pubs    [][]byte
	n       uint32 // leaf width (a power of two)
	members int    // leaves 0..members-1 are set
}

// finalize fills the subtree under x, x getting parent_hash ph, bottom-up
// in the order parent hashes need: right subtree first, then its tree hash
// feeds the left child's parent_hash. It records every tree hash.
func (bd *builder) finalize(x tree.NodeIndex, ph []byte, chained bool) error {
	if tree.IsLeaf(x) {
		li, _ := x.Leaf()
		if int(li) >= bd.members {
			bd.hashes[x] = bd.hashLeaf(li, nil)
			return nil
		}
		leaf, err := bd.leaf(li, ph, chained)
		if err != nil {
			return err
		}
		bd.nodes[x] = &tree.Node{Leaf: leaf}
		bd.hashes[x] = bd.hashLeaf(li, leaf)
		return nil
	}
	l, _ := tree.Left(x, bd.n)
	r, _ := tree.Right(x, bd.n)
	var p *tree.ParentNode
	if bd.pubs[x] != nil {
		p = &tree.ParentNode{EncryptionKey: bd.pubs[x], ParentHash: ph}
		if p.ParentHash == nil {
			p.ParentHash = []byte{}
		}
	}
	// The right child heads its own chain.
	if err := bd.finalize(r, nil, false); err != nil {
		return err
	}
	var lph []byte
	if p != nil {
		lph = bd.parentHash(p, bd.hashes[r])
	}
	if err := bd.finalize(l, lph, p != nil); err != nil {
		return err
	}
	if p != nil {
		bd.nodes[x] = &tree.Node{Parent: p}
	}
	bd.hashes[x] = bd.hashParent(p, bd.hashes[l], bd.hashes[r])
	return nil
}

func (bd *builder) leaf(i tree.LeafIndex, ph []byte, chained bool) (*tree.LeafNode, error) {
	s := bd.s
	ln := &tree.LeafNode{
		EncryptionKey: bd.pubs[i.Node()],
		Credential:    tree.NewBasicCredential([]byte(fmt.Sprintf("member-%d", i))),
		Capabilities: tree.Capabilities{
			Versions:     []tree.ProtocolVersion{tree.ProtocolVersionMLS10},
			CipherSuites: []suite.ID{s.ID()},
			Extensions:   []tree.ExtensionType{},
			Proposals:    []tree.ProposalType{},
			Credentials:  []tree.CredentialType{tree.CredentialTypeBasic},
		},
		Extensions: tree.Extensions{},
	}
	if chained {
		ln.LeafNodeSource = tree.LeafNodeSourceCommit
		ln.ParentHash = ph
	} else {
		ln.LeafNodeSource = tree.LeafNodeSourceKeyPackage
		ln.Lifetime = tree.Lifetime{NotBefore: 0, NotAfter: 1<<63 - 1}
	}
	if !bd.b.opts.Sign {
		ln.SignatureKey = make([]byte, 32)
		bd.b.rng('s', uint32(i)).Read(ln.SignatureKey)
		ln.Signature = []byte{}
		return ln, nil
	}
	signer, err := bd.b.Signer(i)
	if err != nil {
		return nil, err
	}
	ln.SignatureKey = signer.PublicKey()
	if err := ln.Sign(s, signer, bd.b.GroupID, i); err != nil {
		return nil, err
	}
	return ln, nil
}

// hashLeaf and hashParent restate RFC 9420 §7.8 independently of package tree.
func (bd *builder) hashLeaf(i tree.LeafIndex, ln *tree.LeafNode) []byte {
	var w wire.Builder
	w.AddUint8(uint8(tree.NodeTypeLeaf))
	w.AddUint32(uint32(i))
	w.AddOptional(ln != nil, func(w *wire.Builder) { ln.MarshalMLS(w) })
	enc, _ := w.Bytes()
	return bd.s.Hash(enc)
}

func (bd *builder) hashParent(p *tree.ParentNode, lh, rh []byte) []byte {
	var w wire.Builder
	w.AddUint8(uint8(tree.NodeTypeParent))
	w.AddOptional(p != nil, func(w *wire.Builder) { p.MarshalMLS(w) })
	w.AddOpaque(lh)
	w.AddOpaque(rh)
	enc, _ := w.Bytes()
	return bd.s.Hash(enc)
}

func (bd *builder) parentHash(p *tree.ParentNode, siblingHash []byte) []byte {
	var w wire.Builder
	w.AddOpaque(p.EncryptionKey)
	w.AddOpaque(p.ParentHash)
	w.AddOpaque(siblingHash)
	enc, _ := w.Bytes()
	return bd.s.Hash(enc)
}

// parallel runs f(0..n-1) on GOMAXPROCS goroutines.
func parallel(n int, f func(i int)) {
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				f(i)
			}
		}()
	}
	wg.Wait()
}
