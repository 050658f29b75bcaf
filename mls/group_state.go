package mls

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Persisting a Group. The state is split in two blobs so that the frequent
// writes stay small:
//
//   - the epoch state changes on a commit or a proposal: group context,
//     ratchet tree, private keys, epoch secrets, transcript hashes, pending
//     proposals, resumption PSKs and what is kept of past epochs;
//   - the ratchet state changes on every message sent or received: the
//     secret trees (sender ratchets) of the current and kept past epochs.
//
// A store writes the ratchet state after each Encrypt before the message
// leaves, and both blobs in one transaction after a commit. Neither blob
// holds a secret that RFC 9420 §9.2 says to delete: consumed ratchet keys,
// the secret tree root, joiner and welcome secrets are not in them. Both
// hold private keys: the store must encrypt them at rest.

// ErrInvalidState: a state blob that does not decode or does not fit.
var ErrInvalidState = errors.New("mls: invalid group state")

const groupStateVersion = 1

// MarshalEpochState encodes everything but the sender ratchets.
func (g *Group) MarshalEpochState() ([]byte, error) {
	b := wire.NewBuilder(1024)
	b.AddUint8(groupStateVersion)
	b.AddUint16(uint16(g.suite.ID()))
	g.ctx.MarshalMLS(b)
	g.tree.Nodes().MarshalMLS(b)
	b.AddUint32(uint32(g.myLeaf))
	marshalKeys(b, g.keys)
	b.AddVector(func(b *wire.Builder) { g.secrets.MarshalMLS(b) })
	b.AddOpaque(g.interim)
	b.AddOpaque(g.confirmationTag)
	b.AddVector(func(b *wire.Builder) {
		for _, pp := range g.pending {
			b.AddOpaque(pp.ref)
			pp.sender.MarshalMLS(b)
			pp.proposal.MarshalMLS(b)
		}
	})
	b.AddVector(func(b *wire.Builder) {
		for _, ref := range slices.Sorted(maps.Keys(g.ownUpdates)) {
			b.AddOpaque([]byte(ref))
			b.AddOpaque(g.ownUpdates[ref])
		}
	})
	b.AddVector(func(b *wire.Builder) {
		for _, e := range slices.Sorted(maps.Keys(g.resumption)) {
			b.AddUint64(e)
			b.AddOpaque(g.resumption[e])
		}
	})
	b.AddVector(func(b *wire.Builder) {
		for _, pe := range g.past {
			pe.ctx.MarshalMLS(b)
			pe.tree.Nodes().MarshalMLS(b)
			b.AddOpaque(pe.senderData)
		}
	})
	b.AddOptional(g.reinit != nil, func(b *wire.Builder) { g.reinit.MarshalMLS(b) })
	b.AddBool(g.removed)
	return b.Bytes()
}

// MarshalRatchetState encodes the sender ratchets of the current and kept
// past epochs (with Config.SendReservation, our own application ratchet at
// its reservation mark). Call it only to save the result: it clears
// SendNeedsSave.
func (g *Group) MarshalRatchetState() ([]byte, error) {
	b := wire.NewBuilder(256)
	b.AddUint8(groupStateVersion)
	b.AddUint64(g.ctx.Epoch)
	st := g.secretTree.State()
	if g.cfg.SendReservation > 1 && !g.removed {
		// Save our own application ratchet at the reservation mark, so no
		// generation handed out from memory can be handed out again after
		// a crash.
		var err error
		if st, err = g.secretTree.StateReserving(g.myLeaf, schedule.ApplicationRatchet, g.sendMark); err != nil {
			return nil, err
		}
	}
	g.sendNeedsSave = false
	st.MarshalMLS(b)
	b.AddVector(func(b *wire.Builder) {
		for _, pe := range g.past {
			b.AddUint64(pe.ctx.Epoch)
			pe.secretTree.State().MarshalMLS(b)
		}
	})
	return b.Bytes()
}

// LoadGroup rebuilds a Group from its two state blobs. signer is the
// member's signature key (the identity's, held by its provider).
func LoadGroup(epochState, ratchetState []byte, signer *suite.Signer, cfg Config) (*Group, error) {
	g, err := loadGroup(epochState, ratchetState, signer, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	return g, nil
}

func loadGroup(epochState, ratchetState []byte, signer *suite.Signer, cfg Config) (*Group, error) {
	r := wire.NewReader(epochState)
	if v := r.Uint8(); r.Err() == nil && v != groupStateVersion {
		return nil, fmt.Errorf("epoch state version %d", v)
	}
	s, err := suite.New(suite.ID(r.Uint16()))
	if r.Err() == nil && err != nil {
		return nil, err
	}
	g := &Group{cfg: cfg, suite: s, signer: signer}
	var ctx GroupContext
	ctx.UnmarshalMLS(r)
	var nodes tree.RatchetTreeNodes
	nodes.UnmarshalMLS(r)
	g.myLeaf = tree.LeafIndex(r.Uint32())
	g.keys = unmarshalKeys(r)
	secretsBytes := r.Opaque()
	g.interim = r.OpaqueCopy()
	g.confirmationTag = r.OpaqueCopy()
	r.VectorEach(func(r *wire.Reader) {
		pp := &pendingProposal{ref: r.OpaqueCopy(), proposal: new(Proposal)}
		pp.sender.UnmarshalMLS(r)
		pp.proposal.UnmarshalMLS(r)
		g.pending = append(g.pending, pp)
	})
	r.VectorEach(func(r *wire.Reader) {
		if g.ownUpdates == nil {
			g.ownUpdates = map[string][]byte{}
		}
		ref := r.OpaqueCopy()
		g.ownUpdates[string(ref)] = r.OpaqueCopy()
	})
	g.resumption = map[uint64][]byte{}
	r.VectorEach(func(r *wire.Reader) {
		e := r.Uint64()
		g.resumption[e] = r.OpaqueCopy()
	})
	type pastWire struct {
		ctx   GroupContext
		nodes tree.RatchetTreeNodes
		sd    []byte
	}
	var pasts []pastWire
	r.VectorEach(func(r *wire.Reader) {
		var p pastWire
		p.ctx.UnmarshalMLS(r)
		p.nodes.UnmarshalMLS(r)
		p.sd = r.OpaqueCopy()
		pasts = append(pasts, p)
	})
	r.Optional(func(r *wire.Reader) {
		g.reinit = new(ReInit)
		g.reinit.UnmarshalMLS(r)
	})
	g.removed = r.Bool()
	if err := r.Finish(); err != nil {
		return nil, err
	}
	if ctx.CipherSuite != s.ID() {
		return nil, fmt.Errorf("context suite %v in a %v state", ctx.CipherSuite, s.ID())
	}
	if err := g.setContext(ctx); err != nil {
		return nil, err
	}
	if g.tree, err = tree.New(nodes); err != nil {
		return nil, err
	}
	if g.secrets, err = schedule.UnmarshalEpochSecrets(secretsBytes); err != nil {
		return nil, err
	}
	if uint32(g.myLeaf) >= g.tree.NumLeaves() {
		return nil, fmt.Errorf("own leaf %d outside the tree", g.myLeaf)
	}
	if !g.removed {
		if l := g.tree.Leaf(g.myLeaf); l == nil || string(l.SignatureKey) != string(signer.PublicKey()) {
			return nil, errors.New("own leaf does not hold the signer's key")
		}
	}

	// Ratchet state.
	rr := wire.NewReader(ratchetState)
	if v := rr.Uint8(); rr.Err() == nil && v != groupStateVersion {
		return nil, fmt.Errorf("ratchet state version %d", v)
	}
	if e := rr.Uint64(); rr.Err() == nil && e != ctx.Epoch {
		return nil, fmt.Errorf("ratchet state of epoch %d for epoch state %d", e, ctx.Epoch)
	}
	var st schedule.SecretTreeState
	st.UnmarshalMLS(rr)
	pastTrees := map[uint64]*schedule.SecretTreeState{}
	rr.VectorEach(func(r *wire.Reader) {
		e := r.Uint64()
		pst := new(schedule.SecretTreeState)
		pst.UnmarshalMLS(r)
		pastTrees[e] = pst
	})
	if err := rr.Finish(); err != nil {
		return nil, err
	}
	if g.secretTree, err = schedule.RestoreSecretTree(s, &st, cfg.SecretTree); err != nil {
		return nil, err
	}
	for _, p := range pasts {
		pst, ok := pastTrees[p.ctx.Epoch]
		if !ok {
			continue // its ratchets were not saved: that epoch is gone
		}
		pe := &pastEpoch{ctx: p.ctx, senderData: p.sd}
		if pe.ctxBytes, err = wire.Marshal(&pe.ctx); err != nil {
			return nil, err
		}
		if pe.tree, err = tree.New(p.nodes); err != nil {
			return nil, err
		}
		if pe.secretTree, err = schedule.RestoreSecretTree(s, pst, cfg.SecretTree); err != nil {
			return nil, err
		}
		g.past = append(g.past, pe)
	}
	return g, nil
}

func marshalKeys(b *wire.Builder, keys tree.PrivateKeys) {
	b.AddVector(func(b *wire.Builder) {
		for _, x := range keys.Nodes() {
			b.AddUint32(uint32(x))
			b.AddOpaque(keys[x])
		}
	})
}

func unmarshalKeys(r *wire.Reader) tree.PrivateKeys {
	keys := tree.PrivateKeys{}
	r.VectorEach(func(r *wire.Reader) {
		x := tree.NodeIndex(r.Uint32())
		keys[x] = r.OpaqueCopy()
	})
	return keys
}
