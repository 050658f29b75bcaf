// Package bench is the engine benchmark behind `spacepanda bench` (see
// shared/BENCHMARKS.md): commit, process, join, send and receive at a given
// group size and tree shape, each beside its crypto floor measured in the
// same run.
//
// The floor of an operation is the time of the signatures, verifications,
// HPKE seals and opens, key-pair derivations and AEAD calls RFC 9420
// requires for it at that size and shape, done with the same primitives and
// spread over the cores the way the operation may spread them. Nothing else
// is in it: encoding, tree bookkeeping and allocation are the engine's to
// make small. The ratio is the operation's median time over its floor.
//
// The members are made directly from a generated tree (package treetest),
// sharing one epoch's secrets as if they had joined it; leaf 0 commits and
// sends, leaf 1 processes and receives, a new member joins.
package bench

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/internal/fromtree"
	"github.com/spacepanda/spacepanda/mls/internal/parallel"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/tree/treetest"
)

// Options select what to measure.
type Options struct {
	Suites  []suite.ID
	Sizes   []int
	Shapes  []string // "sparse", "full"
	Ops     []string // "commit", "process", "join", "send", "receive"
	MinTime time.Duration
	MinRuns int
	// Progress, when set, is told about slow set-up steps.
	Progress func(format string, args ...any)
}

// Row is one measurement.
type Row struct {
	Op      string  `json:"op"`
	Suite   uint16  `json:"suite"`
	Members int     `json:"members"`
	Tree    string  `json:"tree"`
	NsPerOp float64 `json:"ns_per_op"`
	FloorNs float64 `json:"floor_ns_per_op"`
	Ratio   float64 `json:"ratio"`
	Runs    int     `json:"runs"`
}

// ops lists the operations measured.
var ops = []string{"commit", "process", "join", "send", "receive"}

// DefaultOptions are the figures: suites 1 and 2, N = 2 … 10000.
func DefaultOptions() Options {
	return Options{Suites: []suite.ID{1, 2}, Sizes: []int{2, 10, 100, 1000, 10000},
		Shapes: []string{"sparse", "full"}, Ops: slices.Clone(ops), MinTime: 500 * time.Millisecond, MinRuns: 5}
}

// Run runs the benchmark and calls emit with each row as it is measured.
func Run(o Options, emit func(Row)) error {
	if o.MinRuns <= 0 {
		o.MinRuns = 3
	}
	for _, shape := range o.Shapes {
		if shape != "sparse" && shape != "full" {
			return fmt.Errorf("bench: unknown tree shape %q (sparse, full)", shape)
		}
	}
	for _, op := range o.Ops {
		if !slices.Contains(ops, op) {
			return fmt.Errorf("bench: unknown operation %q (%v)", op, ops)
		}
	}
	for _, id := range o.Suites {
		s, err := suite.New(id)
		if err != nil {
			return err
		}
		prims, err := measurePrimitives(s)
		if err != nil {
			return err
		}
		for _, shape := range o.Shapes {
			for _, n := range o.Sizes {
				if err := benchOne(s, n, shape, o, prims, emit); err != nil {
					return fmt.Errorf("bench suite %d %s N=%d: %w", id, shape, n, err)
				}
			}
		}
	}
	return nil
}

// primitives are the per-call costs of the crypto floor, in ns.
type primitives struct {
	sign, verify, seal, open, derive, aeadSeal, aeadOpen float64
}

func medianOf(runs int, f func()) float64 {
	d := make([]time.Duration, runs)
	for i := range d {
		t0 := time.Now()
		f()
		d[i] = time.Since(t0)
	}
	slices.Sort(d)
	return float64(d[len(d)/2].Nanoseconds())
}

// measurePrimitives times each primitive the floors are made of.
func measurePrimitives(s *suite.Suite) (*primitives, error) {
	priv, _, err := s.GenerateSignatureKeyPair(nil)
	if err != nil {
		return nil, err
	}
	sg, err := s.NewSigner(priv)
	if err != nil {
		return nil, err
	}
	msg := make([]byte, 200)
	sig, _ := sg.SignWithLabel("FramedContentTBS", msg)
	hpriv, hpub, err := s.GenerateHPKEKeyPair()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, s.HashSize())
	kem, ct, err := s.EncryptWithLabel(hpub, "UpdatePathNode", msg, secret)
	if err != nil {
		return nil, err
	}
	key, nonce := make([]byte, s.AEADKeySize()), make([]byte, s.AEADNonceSize())
	act, _ := s.Seal(key, nonce, nil, msg)
	const runs = 41
	p := &primitives{
		sign:   medianOf(runs, func() { sg.SignWithLabel("FramedContentTBS", msg) }),
		verify: medianOf(runs, func() { s.VerifyWithLabel(sg.PublicKey(), "FramedContentTBS", msg, sig) }),
		seal:   medianOf(runs, func() { s.EncryptWithLabel(hpub, "UpdatePathNode", msg, secret) }),
		open:   medianOf(runs, func() { s.DecryptWithLabel(hpriv, "UpdatePathNode", msg, kem, ct) }),
		derive: medianOf(runs, func() {
			ns, _ := s.DeriveSecret(secret, "node")
			s.DeriveKeyPair(ns)
		}),
		aeadSeal: medianOf(runs, func() { s.Seal(key, nonce, nil, msg) }),
		aeadOpen: medianOf(runs, func() { s.Open(key, nonce, nil, act) }),
	}
	return p, nil
}

// world is one group of n members in a given shape: alice (leaf 0) commits,
// bob (leaf 1) processes, carol joins.
type world struct {
	epoch      *fromtree.Epoch
	built      *treetest.Built
	alice, bob *mls.Group
}

// config is the members' configuration: handshakes as PublicMessages (the
// relay's view), the tree in the Welcome.
var config = mls.Config{HandshakeAsPublic: true, RatchetTreeInWelcome: true}

// newWorld builds the group from a generated tree (a 10,000-member group
// is not built with 10,000 commits).
func newWorld(s *suite.Suite, n int, shape string) (*world, error) {
	sh := treetest.Sparse
	if shape == "full" {
		sh = treetest.Full
	}
	gid := make([]byte, 16)
	rand.Read(gid)
	built, err := treetest.Build(s, max(n, 2), treetest.Options{Shape: sh, GroupID: gid, Sign: true, Seed: uint64(n)})
	if err != nil {
		return nil, err
	}
	e := &fromtree.Epoch{Suite: s, Tree: built.Tree, GroupID: gid, Epoch: 1,
		InitSecret: make([]byte, s.HashSize()), ConfirmedTranscriptHash: make([]byte, s.HashSize())}
	rand.Read(e.InitSecret)
	rand.Read(e.ConfirmedTranscriptHash)
	w := &world{epoch: e, built: built}
	if err := w.reset(); err != nil {
		return nil, err
	}
	return w, nil
}

// reset makes alice and bob afresh: both at the epoch's start, their sender
// ratchets at generation 0.
func (w *world) reset() error {
	for i, gp := range []**mls.Group{&w.alice, &w.bob} {
		leaf := tree.LeafIndex(i)
		signer, err := w.built.Signer(leaf)
		if err != nil {
			return err
		}
		keys, err := w.built.PrivateKeys(leaf)
		if err != nil {
			return err
		}
		g, err := fromtree.NewGroup(w.epoch, fromtree.Member{Leaf: leaf, Signer: signer, Keys: keys}, config)
		if err != nil {
			return err
		}
		*gp = g.(*mls.Group)
	}
	return nil
}

// timeOp runs f until both MinTime and MinRuns are reached and returns the
// median duration.
func timeOp(o Options, f func() error) (float64, int, error) {
	var d []time.Duration
	start := time.Now()
	for len(d) < o.MinRuns || time.Since(start) < o.MinTime {
		t0 := time.Now()
		if err := f(); err != nil {
			return 0, 0, err
		}
		d = append(d, time.Since(t0))
		if len(d) >= 100000 {
			break
		}
	}
	slices.Sort(d)
	return float64(d[len(d)/2].Nanoseconds()), len(d), nil
}

func benchOne(s *suite.Suite, n int, shape string, o Options, p *primitives, emit func(Row)) error {
	progress := func(f string, a ...any) {
		if o.Progress != nil {
			o.Progress(f, a...)
		}
	}
	progress("suite %d %s N=%d: building the group", s.ID(), shape, n)
	w, err := newWorld(s, n, shape)
	if err != nil {
		return err
	}
	a, bob := w.alice, w.bob
	cores := float64(runtime.GOMAXPROCS(0))
	t := w.epoch.Tree
	fdp, copath := t.AppendFilteredDirectPath(nil, nil, 0)
	seals := 0
	for _, c := range copath {
		seals += len(t.Resolution(c))
	}
	// Nodes bob derives after decrypting: from the lowest common ancestor
	// of leaves 0 and 1 up, on alice's filtered direct path.
	ca := tree.CommonAncestor(tree.LeafIndex(0).Node(), tree.LeafIndex(1).Node())
	bobDerives := len(fdp) - slices.Index(fdp, ca)

	row := func(op string, ns, floor float64, runs int) {
		emit(Row{Op: op, Suite: uint16(s.ID()), Members: n, Tree: shape, NsPerOp: ns, FloorNs: floor, Ratio: ns / floor, Runs: runs})
	}
	want := func(op string) bool { return slices.Contains(o.Ops, op) }

	if want("commit") {
		// An empty commit with an update path (a self-update), signed leaf
		// and content; no GroupInfo is needed without new members.
		// The seals are spread over the cores like the tree's path
		// encryption spreads them.
		floor := 2*p.sign + float64(len(fdp)+1)*p.derive + float64(seals)*p.seal/float64(parallel.SealWorkers(seals))
		ns, runs, err := timeOp(o, func() error { _, err := a.Commit(mls.CommitOptions{}); return err })
		if err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		row("commit", ns, floor, runs)
	}
	if want("process") {
		res, err := a.Commit(mls.CommitOptions{})
		if err != nil {
			return err
		}
		floor := 2*p.verify + p.open + float64(bobDerives)*p.derive
		ns, runs, err := timeOp(o, func() error { _, err := bob.Process(res.Commit); return err })
		if err != nil {
			return fmt.Errorf("process: %w", err)
		}
		row("process", ns, floor, runs)
	}
	if want("join") {
		progress("suite %d %s N=%d: adding a joiner", s.ID(), shape, n)
		priv, _, err := s.GenerateSignatureKeyPair(nil)
		if err != nil {
			return err
		}
		carolSigner, _ := s.NewSigner(priv)
		kp, kpPriv, err := mls.NewKeyPackage(s, nil, carolSigner, tree.NewBasicCredential([]byte("carol")), mls.KeyPackageOptions{})
		if err != nil {
			return err
		}
		res, err := a.Commit(mls.CommitOptions{Add: []*mls.KeyPackage{kp}})
		if err != nil {
			return err
		}
		ref, _ := kp.Ref(s)
		bundle := &mls.KeyPackageBundle{KeyPackage: kp, Private: kpPriv, Signer: carolSigner}
		find := func(r mls.KeyPackageRef) (*mls.KeyPackageBundle, error) {
			if bytes.Equal(r, ref) {
				return bundle, nil
			}
			return nil, mls.ErrKeyPackageNotFound
		}
		nt, err := tree.NewTree(res.State.RatchetTree())
		if err != nil {
			return err
		}
		carol := res.Added[0]
		carolDerives := 0
		if cfdp := nt.FilteredDirectPath(0); len(cfdp) > 0 {
			if i := slices.Index(cfdp, tree.CommonAncestor(carol.Node(), 0)); i >= 0 {
				carolDerives = len(cfdp) - i
			}
		}
		leaves := float64(nt.MemberCount())
		verifyLeaves := leaves * p.verify
		if leaves >= 64 {
			verifyLeaves /= cores // tree validation spreads over the cores
		}
		floor := p.verify + verifyLeaves + p.open + p.aeadOpen + float64(carolDerives)*p.derive
		ns, runs, err := timeOp(o, func() error {
			_, err := mls.JoinFromWelcome(res.Welcome, nil, find, mls.Config{})
			return err
		})
		if err != nil {
			return fmt.Errorf("join: %w", err)
		}
		row("join", ns, floor, runs)
	}
	body := make([]byte, 200)
	if want("send") {
		floor := p.sign + 2*p.aeadSeal
		ns, runs, err := timeOp(o, func() error { _, err := a.Encrypt(body, nil); return err })
		if err != nil {
			return fmt.Errorf("send: %w", err)
		}
		row("send", ns, floor, runs)
	}
	if want("receive") {
		floor := p.verify + 2*p.aeadOpen
		if err := w.reset(); err != nil {
			return err
		}
		a, bob = w.alice, w.bob
		var queue []*mls.MLSMessage
		var d []time.Duration
		start := time.Now()
		for len(d) < o.MinRuns || time.Since(start) < o.MinTime {
			if len(queue) == 0 {
				for i := 0; i < 64; i++ {
					m, err := a.Encrypt(body, nil)
					if err != nil {
						return err
					}
					queue = append(queue, m)
				}
			}
			m := queue[0]
			queue = queue[1:]
			t0 := time.Now()
			if _, err := bob.Process(m); err != nil {
				return fmt.Errorf("receive: %w", err)
			}
			d = append(d, time.Since(t0))
		}
		slices.Sort(d)
		row("receive", float64(d[len(d)/2].Nanoseconds()), floor, len(d))
	}
	return nil
}
