package schedule

import (
	"errors"
	"fmt"
	"math/bits"
	"sort"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// Secret tree errors (RFC 9420 §9). All mean "no key for this generation";
// they differ in why, which callers may use for diagnostics.
var (
	// ErrKeyConsumed: the key of that generation was already used (a replay)
	// or deleted after use (RFC 9420 §9.2).
	ErrKeyConsumed = errors.New("schedule: key for generation already consumed")
	// ErrGenerationTooOld: the generation is older than the oldest retained
	// out-of-order key; its key was discarded to bound memory.
	ErrGenerationTooOld = errors.New("schedule: generation too old, key no longer retained")
	// ErrGenerationTooFar: the generation lies more than Options.MaxForward
	// generations ahead of the next expected one.
	ErrGenerationTooFar = errors.New("schedule: generation too far ahead")
	// ErrRatchetExhausted: the ratchet has used generation 2^32-1, the last
	// one a uint32 generation can name.
	ErrRatchetExhausted = errors.New("schedule: ratchet generations exhausted")
	// ErrLeafOutOfRange: the leaf index is not below the tree's leaf count.
	ErrLeafOutOfRange = errors.New("schedule: leaf index out of range")
	// ErrInvalidRatchetType: neither HandshakeRatchet nor ApplicationRatchet.
	ErrInvalidRatchetType = errors.New("schedule: invalid ratchet type")
	// ErrInvalidState: a SecretTreeState that cannot be restored.
	ErrInvalidState = errors.New("schedule: invalid secret tree state")
)

// RatchetType selects one of a leaf's two sender ratchets (RFC 9420 §9).
// Package mls maps ContentType application to ApplicationRatchet and
// proposal/commit to HandshakeRatchet (§6.3.1).
type RatchetType uint8

// The two sender ratchets of a leaf.
const (
	HandshakeRatchet   RatchetType = 1
	ApplicationRatchet RatchetType = 2
)

func (t RatchetType) String() string {
	switch t {
	case HandshakeRatchet:
		return "handshake"
	case ApplicationRatchet:
		return "application"
	}
	return fmt.Sprintf("RatchetType(%d)", uint8(t))
}

// Default limits of the deletion schedule (RFC 9420 §9.2 lets members keep
// unconsumed keys "for some reasonable amount of time" for out-of-order
// delivery; these bound that by count).
const (
	// DefaultMaxForward: a received generation may be at most this many
	// generations past the next expected one (so at most this many keys are
	// derived and skipped for one message).
	DefaultMaxForward = 1000
	// DefaultMaxRetained: at most this many skipped (unconsumed) keys are kept
	// per ratchet; the oldest are dropped first.
	DefaultMaxRetained = 256
)

// Options bounds the out-of-order window of every ratchet of a SecretTree.
// The zero value selects the defaults.
type Options struct {
	// MaxForward: largest accepted gap between the next expected generation
	// and a received one. 0 means DefaultMaxForward.
	MaxForward uint32
	// MaxRetained: largest number of skipped keys kept per ratchet. 0 means
	// DefaultMaxRetained; a negative value keeps none (strictly in-order).
	MaxRetained int
}

func (o Options) maxForward() uint64 {
	if o.MaxForward == 0 {
		return DefaultMaxForward
	}
	return uint64(o.MaxForward)
}

func (o Options) maxRetained() int {
	switch {
	case o.MaxRetained == 0:
		return DefaultMaxRetained
	case o.MaxRetained < 0:
		return 0
	}
	return o.MaxRetained
}

// KeyNonce is one ratchet step's AEAD key and nonce (RFC 9420 §9.1). Nonce is
// the raw ratchet_nonce: the caller XORs the reuse_guard into it (§6.3.1).
type KeyNonce struct {
	Generation uint32
	Key        []byte
	Nonce      []byte
}

// exhausted is the "next generation" of a ratchet that has used 2^32-1.
const exhausted = 1 << 32

// ratchet is one sender hash ratchet (RFC 9420 §9.1).
type ratchet struct {
	next     uint64     // generation of secret; exhausted once 2^32-1 is used
	secret   []byte     // ratchet_secret_[next]; nil once exhausted
	floor    uint64     // every generation below floor not in retained was discarded
	retained []KeyNonce // keys of skipped generations, ascending, all in [floor, next)
}

// leafRatchets holds the two ratchets of a leaf whose leaf secret was used.
type leafRatchets struct {
	handshake, application ratchet
}

func (l *leafRatchets) get(rt RatchetType) (*ratchet, error) {
	switch rt {
	case HandshakeRatchet:
		return &l.handshake, nil
	case ApplicationRatchet:
		return &l.application, nil
	}
	return nil, fmt.Errorf("%w: %d", ErrInvalidRatchetType, uint8(rt))
}

// SecretTree is the secret tree of one epoch (RFC 9420 §9) with the sender
// ratchets of its leaves. It is lazy: a leaf's node chain is derived on the
// first use of that leaf; every parent whose two children have been derived is
// deleted at once, and a leaf secret is deleted as soon as its two ratchet
// roots exist (§9.2). Memory is thus O(leaves used · (1 + retained keys) +
// log(leaves)).
//
// Keys are deleted when handed out (sender) or used (receiver); skipped
// generations' keys are kept within the Options window so late messages
// still decrypt, and a second use of one generation fails with
// ErrKeyConsumed.
//
// A SecretTree is not safe for concurrent use.
type SecretTree struct {
	suite     *suite.Suite
	opts      Options
	leafCount uint32 // leaves the group has; leaf indices must be below it
	full      uint32 // leafCount rounded up to a power of two: the tree's shape
	nodes     map[tree.NodeIndex][]byte
	leaves    map[tree.LeafIndex]*leafRatchets
}

// roundPow2 returns the smallest power of two ≥ n (n ≥ 1, n ≤ 2^31).
func roundPow2(n uint32) uint32 {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len32(n-1)
}

// NewSecretTree returns the secret tree of an epoch whose ratchet tree has
// leafCount leaves, rooted at encryption_secret (RFC 9420 §9). RFC 9420 trees
// have a power-of-two leaf count; any other count is treated as the next
// power of two for the tree's shape, with leaf indices limited to leafCount.
// encryptionSecret is copied; the caller should erase its own copy (§9.2).
func NewSecretTree(s *suite.Suite, encryptionSecret []byte, leafCount uint32, opts Options) (*SecretTree, error) {
	if len(encryptionSecret) != s.HashSize() {
		return nil, fmt.Errorf("%w: encryption_secret of %d bytes, want %d", ErrInvalidSecret, len(encryptionSecret), s.HashSize())
	}
	t, err := newEmptyTree(s, leafCount, opts)
	if err != nil {
		return nil, err
	}
	t.nodes[tree.Root(t.full)] = append([]byte(nil), encryptionSecret...)
	return t, nil
}

func newEmptyTree(s *suite.Suite, leafCount uint32, opts Options) (*SecretTree, error) {
	if leafCount == 0 || leafCount > tree.MaxLeaves {
		return nil, fmt.Errorf("%w: leaf count %d", ErrLeafOutOfRange, leafCount)
	}
	return &SecretTree{
		suite:     s,
		opts:      opts,
		leafCount: leafCount,
		full:      roundPow2(leafCount),
		nodes:     make(map[tree.NodeIndex][]byte),
		leaves:    make(map[tree.LeafIndex]*leafRatchets),
	}, nil
}

// subtreeLeaves returns the leaf range [first, end) below node x.
func subtreeLeaves(x tree.NodeIndex) (first, end uint64) {
	k := tree.Level(x)
	first = (uint64(x) - (1<<k - 1)) / 2
	return first, first + 1<<k
}

// usable reports whether node x covers at least one leaf below leafCount.
func (t *SecretTree) usable(x tree.NodeIndex) bool {
	first, _ := subtreeLeaves(x)
	return first < uint64(t.leafCount)
}

// LeafCount returns the leaf count the tree was created with.
func (t *SecretTree) LeafCount() uint32 { return t.leafCount }

// leaf returns the ratchets of leaf, deriving (and storing) them on first
// use.
func (t *SecretTree) leaf(leaf tree.LeafIndex) (*leafRatchets, error) {
	lr, d, err := t.derive(leaf)
	if err != nil {
		return nil, err
	}
	d.apply()
	return lr, nil
}

// derivation is a leaf's ratchets derived from the tree but not yet stored
// in it: OpenWith stores them only once the message opened, so that a
// refused message leaves the tree as it was. nil when nothing was derived.
type derivation struct {
	t    *SecretTree
	leaf tree.LeafIndex
	lr   *leafRatchets
	set  map[tree.NodeIndex][]byte // children derived, still needed
	del  tree.NodeIndex            // the stored ancestor they replace
}

// derive returns the ratchets of leaf; on first use they are derived from
// the lowest stored ancestor down to the leaf — each parent replaced by its
// two children (RFC 9420 §9), the leaf secret by its two ratchet roots — in
// a derivation the caller applies (or discards).
func (t *SecretTree) derive(leaf tree.LeafIndex) (*leafRatchets, *derivation, error) {
	if uint64(leaf) >= uint64(t.leafCount) {
		return nil, nil, fmt.Errorf("%w: leaf %d of %d", ErrLeafOutOfRange, leaf, t.leafCount)
	}
	if lr := t.leaves[leaf]; lr != nil {
		return lr, nil, nil
	}
	target := leaf.Node()
	// Find the lowest ancestor-or-self whose secret is stored.
	x := target
	for {
		if _, ok := t.nodes[x]; ok {
			break
		}
		p, ok := tree.Parent(x, t.full)
		if !ok {
			// Only reachable if the state is inconsistent (e.g. a bad restore).
			return nil, nil, fmt.Errorf("%w: no secret on the path of leaf %d", ErrInvalidState, leaf)
		}
		x = p
	}
	d := &derivation{t: t, leaf: leaf, set: map[tree.NodeIndex][]byte{}, del: x}
	s := t.suite
	sec := t.nodes[x]
	for x != target {
		l, _ := tree.Left(x, t.full)
		r, _ := tree.Right(x, t.full)
		ls, err := s.ExpandWithLabel(sec, "tree", []byte("left"), s.HashSize())
		if err != nil {
			d.discard()
			return nil, nil, err
		}
		rs, err := s.ExpandWithLabel(sec, "tree", []byte("right"), s.HashSize())
		if err != nil {
			d.discard()
			return nil, nil, err
		}
		if x != d.del {
			clear(sec) // an intermediate node of this derivation: consumed (§9.2)
			delete(d.set, x)
		}
		d.set[l] = ls
		if t.usable(r) {
			d.set[r] = rs
		} else {
			clear(rs) // covers only leaves past leafCount: never needed
		}
		if tree.IsInSubtree(target, l) {
			x = l
		} else {
			x = r
		}
		sec = d.set[x]
	}
	hs, err := s.ExpandWithLabel(sec, "handshake", nil, s.HashSize())
	if err != nil {
		d.discard()
		return nil, nil, err
	}
	as, err := s.ExpandWithLabel(sec, "application", nil, s.HashSize())
	if err != nil {
		d.discard()
		return nil, nil, err
	}
	if x != d.del {
		clear(sec)
		delete(d.set, x)
	}
	d.lr = &leafRatchets{handshake: ratchet{secret: hs}, application: ratchet{secret: as}}
	return d.lr, d, nil
}

// apply stores the derivation: the ancestor it started from is deleted
// (§9.2), the derived children and the leaf's ratchets stored.
func (d *derivation) apply() {
	if d == nil {
		return
	}
	t := d.t
	clear(t.nodes[d.del])
	delete(t.nodes, d.del)
	for x, sec := range d.set {
		t.nodes[x] = sec
	}
	t.leaves[d.leaf] = d.lr
}

// discard erases a derivation that is not applied.
func (d *derivation) discard() {
	if d == nil {
		return
	}
	for _, sec := range d.set {
		clear(sec)
	}
	if d.lr != nil {
		clear(d.lr.handshake.secret)
		clear(d.lr.application.secret)
	}
}

func (t *SecretTree) ratchet(leaf tree.LeafIndex, rt RatchetType) (*ratchet, error) {
	if rt != HandshakeRatchet && rt != ApplicationRatchet {
		return nil, fmt.Errorf("%w: %d", ErrInvalidRatchetType, uint8(rt))
	}
	lr, err := t.leaf(leaf)
	if err != nil {
		return nil, err
	}
	return lr.get(rt)
}

// keyNonce derives ratchet_key_[j] and ratchet_nonce_[j] (RFC 9420 §9.1).
func keyNonce(s *suite.Suite, secret []byte, j uint32) (KeyNonce, error) {
	key, err := s.DeriveTreeSecret(secret, "key", j, s.AEADKeySize())
	if err != nil {
		return KeyNonce{}, err
	}
	nonce, err := s.DeriveTreeSecret(secret, "nonce", j, s.AEADNonceSize())
	if err != nil {
		return KeyNonce{}, err
	}
	return KeyNonce{Generation: j, Key: key, Nonce: nonce}, nil
}

// NextGeneration returns the generation the next NextSenderKey call for this
// leaf and ratchet will use. It derives nothing for an unused leaf.
func (t *SecretTree) NextGeneration(leaf tree.LeafIndex, rt RatchetType) (uint32, error) {
	if uint64(leaf) >= uint64(t.leafCount) {
		return 0, fmt.Errorf("%w: leaf %d of %d", ErrLeafOutOfRange, leaf, t.leafCount)
	}
	if rt != HandshakeRatchet && rt != ApplicationRatchet {
		return 0, fmt.Errorf("%w: %d", ErrInvalidRatchetType, uint8(rt))
	}
	lr := t.leaves[leaf]
	if lr == nil {
		return 0, nil
	}
	r, _ := lr.get(rt)
	if r.next >= exhausted {
		return 0, ErrRatchetExhausted
	}
	return uint32(r.next), nil
}

// NextSenderKey returns the key and nonce for the sender's next message on
// its own leaf's ratchet and advances the ratchet; the returned key is no
// longer stored (RFC 9420 §9.1: each key/nonce encrypts one message; §9.2).
func (t *SecretTree) NextSenderKey(leaf tree.LeafIndex, rt RatchetType) (KeyNonce, error) {
	r, err := t.ratchet(leaf, rt)
	if err != nil {
		return KeyNonce{}, err
	}
	if r.next >= exhausted {
		return KeyNonce{}, ErrRatchetExhausted
	}
	p, err := t.advance(r, uint32(r.next))
	if err != nil {
		return KeyNonce{}, err
	}
	p.commit()
	return p.kn, nil
}

// ReceiverKey returns the key and nonce of generation gen of leaf's ratchet
// for decrypting a received message, and deletes it (RFC 9420 §9.2), along
// with every ratchet secret before it; keys of skipped generations are kept
// within the Options window. Prefer OpenWith, which deletes the key only if
// decryption (and whatever else the caller checks) succeeds.
func (t *SecretTree) ReceiverKey(leaf tree.LeafIndex, rt RatchetType, gen uint32) (KeyNonce, error) {
	var out KeyNonce
	err := t.OpenWith(leaf, rt, gen, func(kn KeyNonce) error {
		out = kn
		return nil
	})
	return out, err
}

// OpenWith looks up the key and nonce of generation gen of leaf's ratchet and
// calls use with them. If use returns nil the key counts as consumed and the
// ratchet state is updated as ReceiverKey does; otherwise the ratchet is left
// as it was (a forged or corrupted message cannot burn a key) and use's error
// is returned. Errors from the lookup itself are ErrKeyConsumed,
// ErrGenerationTooOld, ErrGenerationTooFar, ErrRatchetExhausted,
// ErrLeafOutOfRange and ErrInvalidRatchetType.
func (t *SecretTree) OpenWith(leaf tree.LeafIndex, rt RatchetType, gen uint32, use func(KeyNonce) error) error {
	if rt != HandshakeRatchet && rt != ApplicationRatchet {
		return fmt.Errorf("%w: %d", ErrInvalidRatchetType, uint8(rt))
	}
	// A leaf used for the first time is derived aside and stored only if
	// the message opens: a refused message changes nothing. (RFC 9420 §9.2
	// deletes a node's secret once its children are derived for a use; a
	// message refused is no use, and a receiver's state must not depend on
	// the refused input.)
	lr, d, err := t.derive(leaf)
	if err != nil {
		return err
	}
	r, err := lr.get(rt)
	if err != nil {
		d.discard()
		return err
	}
	g := uint64(gen)
	if g < r.next {
		i := sort.Search(len(r.retained), func(i int) bool { return r.retained[i].Generation >= gen })
		if i == len(r.retained) || r.retained[i].Generation != gen {
			if g < r.floor {
				return ErrGenerationTooOld
			}
			return ErrKeyConsumed
		}
		kn := r.retained[i]
		if err := use(kn); err != nil {
			return err
		}
		r.retained = append(r.retained[:i], r.retained[i+1:]...)
		return nil
	}
	if g-r.next > t.opts.maxForward() {
		d.discard()
		return fmt.Errorf("%w: generation %d, next expected %d", ErrGenerationTooFar, gen, r.next)
	}
	p, err := t.advance(r, gen)
	if err != nil {
		d.discard()
		return err
	}
	if err := use(p.kn); err != nil {
		p.abort()
		d.discard()
		return err
	}
	d.apply()
	p.commit()
	return nil
}

// pending is a computed but not yet applied ratchet advance.
type pending struct {
	r       *ratchet
	kn      KeyNonce
	secret  []byte // ratchet_secret_[gen+1], or nil if gen was 2^32-1
	skipped []KeyNonce
	floor   uint64 // new floor if skipped generations were not retained
	max     int
}

// advance computes, without changing r, the ratchet up to generation gen ≥
// r.next: the key of gen, the next ratchet secret, and the keys of the
// skipped generations that will be retained (RFC 9420 §9.1).
func (t *SecretTree) advance(r *ratchet, gen uint32) (*pending, error) {
	s := t.suite
	p := &pending{r: r, floor: r.floor, max: t.opts.maxRetained()}
	g := uint64(gen)
	if g-r.next > uint64(p.max) {
		p.floor = max(p.floor, g-uint64(p.max)) // older skipped keys are never computed
	}
	secret := r.secret
	for j := r.next; ; j++ {
		if j >= p.floor || j == g {
			kn, err := keyNonce(s, secret, uint32(j))
			if err != nil {
				p.abort()
				return nil, err
			}
			if j == g {
				p.kn = kn
			} else {
				p.skipped = append(p.skipped, kn)
			}
		}
		var next []byte
		if j < exhausted-1 {
			var err error
			if next, err = s.DeriveTreeSecret(secret, "secret", uint32(j), s.HashSize()); err != nil {
				p.abort()
				return nil, err
			}
		}
		if j != r.next {
			clear(secret) // an intermediate secret of this computation
		}
		secret = next
		if j == g {
			break
		}
	}
	p.secret = secret
	return p, nil
}

// abort erases a pending advance's derived values.
func (p *pending) abort() {
	if p.secret != nil {
		clear(p.secret)
	}
	for _, kn := range p.skipped {
		clear(kn.Key)
		clear(kn.Nonce)
	}
}

// commit applies the advance: the old ratchet secret is deleted, skipped keys
// are retained up to the cap (dropping the oldest), and the key of the target
// generation is consumed.
func (p *pending) commit() {
	r := p.r
	clear(r.secret)
	r.secret = p.secret
	r.next = uint64(p.kn.Generation) + 1 // exhausted after 2^32-1, with secret nil
	r.floor = p.floor
	r.retained = append(r.retained, p.skipped...)
	if drop := len(r.retained) - p.max; drop > 0 {
		for _, kn := range r.retained[:drop] {
			clear(kn.Key)
			clear(kn.Nonce)
		}
		r.floor = max(r.floor, uint64(r.retained[drop-1].Generation)+1)
		r.retained = append(r.retained[:0:0], r.retained[drop:]...)
	}
}
