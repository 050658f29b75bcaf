package mls

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/tree/treetest"
)

// The engine benchmark behind `spacepanda bench` (see shared/BENCHMARKS.md):
// commit, process, join, send and receive at a given group size and tree
// shape, each beside the crypto floor measured in the same run — the
// signatures, verifications, HPKE operations, key derivations and AEAD calls
// RFC 9420 requires for that operation at that size and shape.

// BenchOptions select what to measure.
type BenchOptions struct {
	Suites  []suite.ID
	Sizes   []int
	Shapes  []string // "sparse", "full"
	Ops     []string // "commit", "process", "join", "send", "receive"
	MinTime time.Duration
	MinRuns int
	// Progress, when set, is told about slow set-up steps.
	Progress func(format string, args ...any)
}

// BenchRow is one measurement.
type BenchRow struct {
	Op      string  `json:"op"`
	Suite   uint16  `json:"suite"`
	Members int     `json:"members"`
	Tree    string  `json:"tree"`
	NsPerOp float64 `json:"ns_per_op"`
	FloorNs float64 `json:"floor_ns_per_op"`
	Ratio   float64 `json:"ratio"`
	Runs    int     `json:"runs"`
}

// BenchOps lists the operations measured.
var benchOps = []string{"commit", "process", "join", "send", "receive"}

// DefaultBenchOptions are the figures: suites 1 and 2, N = 2 … 10000.
func DefaultBenchOptions() BenchOptions {
	return BenchOptions{Suites: []suite.ID{1, 2}, Sizes: []int{2, 10, 100, 1000, 10000},
		Shapes: []string{"sparse", "full"}, Ops: slices.Clone(benchOps), MinTime: 500 * time.Millisecond, MinRuns: 5}
}

// RunBench runs the benchmark and calls emit with each row as it is measured.
func RunBench(o BenchOptions, emit func(BenchRow)) error {
	if o.MinRuns <= 0 {
		o.MinRuns = 3
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

// benchWorld is one group of n members in a given shape: alice (leaf 0)
// commits, bob (leaf 1) processes, carol joins.
type benchWorld struct {
	s          *suite.Suite
	alice, bob *Group
	encSecret  []byte // to give both fresh sender ratchets
}

// resetRatchets restarts both members' secret trees at generation 0.
func (w *benchWorld) resetRatchets() error {
	for _, g := range []*Group{w.alice, w.bob} {
		st, err := schedule.NewSecretTree(w.s, w.encSecret, g.tree.NumLeaves(), g.cfg.SecretTree)
		if err != nil {
			return err
		}
		g.secretTree = st
	}
	return nil
}

// newBenchWorld builds the group directly from a generated tree (a 10,000
// member group is not built with 10,000 commits): both members share one
// epoch's secrets as if they had joined it.
func newBenchWorld(s *suite.Suite, n int, shape string) (*benchWorld, error) {
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
	t := built.Tree
	ctx := GroupContext{Version: ProtocolVersionMLS10, CipherSuite: s.ID(), GroupID: gid, Epoch: 1,
		TreeHash: t.TreeHash(s), ConfirmedTranscriptHash: make([]byte, s.HashSize())}
	rand.Read(ctx.ConfirmedTranscriptHash)
	w := &benchWorld{s: s}
	init := make([]byte, s.HashSize())
	rand.Read(init)
	cfg := Config{HandshakeAsPublic: true, RatchetTreeInWelcome: true}
	for i, gp := range []**Group{&w.alice, &w.bob} {
		leaf := tree.LeafIndex(i)
		signer, err := built.Signer(leaf)
		if err != nil {
			return nil, err
		}
		keys, err := built.PrivateKeys(leaf)
		if err != nil {
			return nil, err
		}
		g := &Group{cfg: cfg, suite: s, signer: signer, tree: t.Clone(), myLeaf: leaf, keys: keys}
		if err := g.setContext(ctx); err != nil {
			return nil, err
		}
		if g.secrets, err = schedule.NewEpoch(s, init, nil, nil, g.ctxBytes); err != nil {
			return nil, err
		}
		g.confirmationTag = s.MAC(g.secrets.ConfirmationKey, ctx.ConfirmedTranscriptHash)
		if g.interim, err = NextInterimTranscriptHash(s, ctx.ConfirmedTranscriptHash, g.confirmationTag); err != nil {
			return nil, err
		}
		if g.secretTree, err = schedule.NewSecretTree(s, g.secrets.EncryptionSecret, t.NumLeaves(), cfg.SecretTree); err != nil {
			return nil, err
		}
		g.resumption = map[uint64][]byte{1: g.secrets.ResumptionPSK}
		w.encSecret = g.secrets.EncryptionSecret
		*gp = g
	}
	return w, nil
}

// timeOp runs f until both MinTime and MinRuns are reached and returns the
// median duration.
func timeOp(o BenchOptions, f func() error) (float64, int, error) {
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

func benchOne(s *suite.Suite, n int, shape string, o BenchOptions, p *primitives, emit func(BenchRow)) error {
	progress := func(f string, a ...any) {
		if o.Progress != nil {
			o.Progress(f, a...)
		}
	}
	progress("suite %d %s N=%d: building the group", s.ID(), shape, n)
	w, err := newBenchWorld(s, n, shape)
	if err != nil {
		return err
	}
	a, bob := w.alice, w.bob
	cores := float64(runtime.GOMAXPROCS(0))
	t := a.tree
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
		emit(BenchRow{Op: op, Suite: uint16(s.ID()), Members: n, Tree: shape, NsPerOp: ns, FloorNs: floor, Ratio: ns / floor, Runs: runs})
	}
	want := func(op string) bool { return slices.Contains(o.Ops, op) }

	if want("commit") {
		// An empty commit with an update path (a self-update), signed leaf
		// and content; no GroupInfo is needed without new members.
		// The seals are spread over the cores like CommitPath.Encrypt does.
		floor := 2*p.sign + float64(len(fdp)+1)*p.derive + float64(seals)*p.seal/float64(tree.SealWorkers(seals))
		ns, runs, err := timeOp(o, func() error { _, err := a.Commit(CommitOptions{}); return err })
		if err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		row("commit", ns, floor, runs)
	}
	if want("process") {
		res, err := a.Commit(CommitOptions{})
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
		kp, kpPriv, err := NewKeyPackage(s, nil, carolSigner, tree.NewBasicCredential([]byte("carol")), KeyPackageOptions{})
		if err != nil {
			return err
		}
		res, err := a.Commit(CommitOptions{Add: []*KeyPackage{kp}})
		if err != nil {
			return err
		}
		ref, _ := kp.Ref(s)
		bundle := &KeyPackageBundle{KeyPackage: kp, Private: kpPriv, Signer: carolSigner}
		find := func(r KeyPackageRef) (*KeyPackageBundle, error) {
			if bytes.Equal(r, ref) {
				return bundle, nil
			}
			return nil, ErrKeyPackageNotFound
		}
		nt := res.State.tree
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
			_, err := JoinFromWelcome(res.Welcome, nil, find, Config{})
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
		if err := w.resetRatchets(); err != nil {
			return err
		}
		var queue []*MLSMessage
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
