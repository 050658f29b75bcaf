// Package bench is the engine benchmark behind `spacepanda bench` (see
// shared/BENCHMARKS.md): commit, process, join, send and receive at a given
// group size and tree shape, each beside its crypto floor measured in the
// same run.
//
// The floor of an operation is the time of the signatures, verifications,
// HPKE seals and opens, key-pair derivations and AEAD calls RFC 9420
// requires for it at that size and shape, done with the same primitives and
// spread over the cores the way the operation may spread them. The ratio
// is the operation's median time over its floor.
//
// A commit's signature, membership tag and confirmed transcript hash are
// each a hash of the whole message (RFC 9420 §6.1, §6.2, §8.2), and in a
// sparse tree the message holds about one HPKE ciphertext per member:
// 820 KB at 10,000 members (suite 1). For commit and process the floor
// times these three at the message's real size instead of at 200 bytes:
// SignWithLabel/VerifyWithLabel over FramedContentTBS (Ed25519 hashes it
// with SHA-512 inside, twice when signing; ECDSA with the suite's hash),
// the MAC over AuthenticatedContentTBM, and the suite's hash over the
// interim transcript hash and ConfirmedTranscriptHashInput. They are
// irreducible: none may be skipped or computed over less than the whole
// message, and none can reuse another's work — each is an iterated hash
// that starts from a different prefix (the SignContent label, the HMAC key
// block, the interim hash), with SHA-512 beside SHA-256 in suite 1, so
// their states differ from the first block on; and each is sequential, so
// one pass cannot be split over cores. The three are independent, so from
// 32 KB on (where a receiving member spreads them) the floor spreads them
// over the cores: the longest, or their sum over the number of cores if
// that is more; below, they add up. Nothing else is in the floor: encoding,
// tree bookkeeping and allocation are the engine's to make small. (Join's
// GroupInfo signature and AEAD, which also cover the whole tree, are still
// timed at 200 bytes: its floor errs low.)
//
// The primitives are timed (medians) at each size and shape just before
// its operations. The members are made directly from a generated tree (package treetest),
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
	"github.com/spacepanda/spacepanda/mls/internal/access"
	"github.com/spacepanda/spacepanda/mls/internal/fromtree"
	"github.com/spacepanda/spacepanda/mls/internal/parallel"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/tree/treetest"
	"github.com/spacepanda/spacepanda/mls/wire"
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
		for _, shape := range o.Shapes {
			for _, n := range o.Sizes {
				if err := benchOne(s, n, shape, o, emit); err != nil {
					return fmt.Errorf("bench suite %d %s N=%d: %w", id, shape, n, err)
				}
			}
		}
	}
	return nil
}

// primitives are the per-call costs of the crypto floor, in ns, and what
// is needed to time the size-dependent ones at a message's size.
type primitives struct {
	sign, verify, seal, open, derive, aeadSeal, aeadOpen float64

	s      *suite.Suite
	signer *suite.Signer
}

// messageCosts are the three passes over a commit (see the package doc),
// in ns, for the committer (sign) and a receiver (verify).
type messageCosts struct {
	sign, verify, mac, hash float64
	cores                   float64 // they may be spread over
}

// commitSizes are the lengths of the encodings a commit's three passes
// read (RFC 9420 §6.1, §6.2, §8.2).
type commitSizes struct {
	tbs int // FramedContentTBS
	tbm int // AuthenticatedContentTBM: FramedContentTBS || FramedContentAuthData
	cti int // interim_transcript_hash || ConfirmedTranscriptHashInput
}

// sizesOf measures the encodings of the commit in m, sent by a member of
// a group whose context is ctx.
func sizesOf(s *suite.Suite, m *mls.Message, ctx mls.GroupContext) (commitSizes, error) {
	pm := m.PublicMessage
	if pm == nil {
		return commitSizes{}, fmt.Errorf("the commit is not a PublicMessage")
	}
	fc, err := wire.Marshal(&pm.Content)
	if err != nil {
		return commitSizes{}, err
	}
	gc, err := wire.Marshal(&ctx)
	if err != nil {
		return commitSizes{}, err
	}
	opaque := func(v []byte) int {
		var b wire.Builder
		b.AddOpaque(v)
		return b.Len()
	}
	tbs := 2 + 2 + len(fc) + len(gc)
	sig := opaque(pm.Auth.Signature)
	return commitSizes{tbs: tbs, tbm: tbs + sig + opaque(pm.Auth.ConfirmationTag),
		cti: s.HashSize() + 2 + len(fc) + sig}, nil
}

// messageCosts times the three passes at the sizes z. Below
// parallel.HashBytes the engine runs them one after the other, and so does
// the floor.
func (p *primitives) messageCosts(z commitSizes) (*messageCosts, error) {
	s := p.s
	runs := 41
	if z.tbm > 64<<10 {
		runs = 11
	}
	tbs := make([]byte, z.tbs)
	rand.Read(tbs)
	sig, err := p.signer.SignWithLabel("FramedContentTBS", tbs)
	if err != nil {
		return nil, err
	}
	room := suite.LabelHeadroom("FramedContentTBS")
	buf := append(make([]byte, room), tbs...)
	if err := s.VerifyWithLabelAt(p.signer.PublicKey(), "FramedContentTBS", buf, room, sig); err != nil {
		return nil, err
	}
	cores := 1
	if z.tbm >= parallel.HashBytes {
		cores = runtime.GOMAXPROCS(0)
	}
	key, tbm, cti := make([]byte, s.HashSize()), make([]byte, z.tbm), make([]byte, z.cti)
	return &messageCosts{
		cores:  float64(cores),
		sign:   medianOf(runs, func() { p.signer.SignWithLabel("FramedContentTBS", tbs) }),
		verify: medianOf(runs, func() { s.VerifyWithLabelAt(p.signer.PublicKey(), "FramedContentTBS", buf, room, sig) }),
		mac:    medianOf(runs, func() { s.MAC(key, tbm) }),
		hash:   medianOf(runs, func() { s.Hash(cti) }),
	}, nil
}

// spread is the time of independent tasks on c cores, each running on one
// core at a time: the longest task, or their total divided among the cores
// if that is more.
func spread(c float64, tasks ...float64) float64 {
	var longest, total float64
	for _, t := range tasks {
		longest, total = max(longest, t), total+t
	}
	return max(longest, total/c)
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
		s:        s,
		signer:   sg,
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
	// A member's tree caches which subtrees are occupied; after its first
	// commit in the group every state it moves to has them cached (the
	// next tree is the one the commit was checked against). Start there.
	built.Tree.FilteredDirectPath(0)
	built.Tree.FilteredDirectPath(1)
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
		g, err := mls.Internals(access.Key{}).GroupFromTree(w.epoch, fromtree.Member{Leaf: leaf, Signer: signer, Keys: keys}, config)
		if err != nil {
			return err
		}
		*gp = g
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

func benchOne(s *suite.Suite, n int, shape string, o Options, emit func(Row)) error {
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
	// The primitives are timed just before the operations, in the same
	// conditions as far as a shared machine allows.
	p, err := measurePrimitives(s)
	if err != nil {
		return err
	}
	a, bob := w.alice, w.bob
	want := func(op string) bool { return slices.Contains(o.Ops, op) }
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

	// The commit measured (a self-update; alice commits the same each time)
	// and the cost of its three passes at its size.
	var mc *messageCosts
	var commit *mls.CommitResult
	if want("commit") || want("process") {
		if commit, err = a.Commit(mls.CommitOptions{}); err != nil {
			return err
		}
		z, err := sizesOf(s, commit.Commit, a.Context())
		if err != nil {
			return err
		}
		if mc, err = p.messageCosts(z); err != nil {
			return err
		}
	}

	row := func(op string, ns, floor float64, runs int) {
		emit(Row{Op: op, Suite: uint16(s.ID()), Members: n, Tree: shape, NsPerOp: ns, FloorNs: floor, Ratio: ns / floor, Runs: runs})
	}

	if want("commit") {
		// An empty commit with an update path (a self-update): the signed
		// leaf, the path's derivations and seals, and the three passes
		// over the message; no GroupInfo is needed without new members.
		// The seals are spread over the cores like the tree's path
		// encryption spreads them.
		floor := p.sign + float64(len(fdp)+1)*p.derive + float64(seals)*p.seal/float64(parallel.SealWorkers(seals)) +
			spread(mc.cores, mc.sign, mc.mac, mc.hash)
		ns, runs, err := timeOp(o, func() error { _, err := a.Commit(mls.CommitOptions{}); return err })
		if err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		row("commit", ns, floor, runs)
	}
	if want("process") {
		// The committer's leaf signature, one HPKE open, the derivations
		// from the common ancestor up, and the three passes.
		floor := p.verify + p.open + float64(bobDerives)*p.derive + spread(mc.cores, mc.verify, mc.mac, mc.hash)
		ns, runs, err := timeOp(o, func() error { _, err := bob.Process(commit.Commit); return err })
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
		nt, err := tree.New(res.State.RatchetTree())
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
		var queue []*mls.Message
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
