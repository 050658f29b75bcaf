package mls

import (
	"fmt"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Persisting a PublicGroup (for a Delivery Service's store). The blob holds
// no secret: the GroupContext, the public tree, the interim transcript
// hash, the proposals cached this epoch and a committed ReInit.

const publicStateVersion = 1

// MarshalBinary encodes the public state.
func (pg *PublicGroup) MarshalBinary() ([]byte, error) {
	g := pg.g
	b := wire.NewBuilder(1024)
	b.AddUint8(publicStateVersion)
	g.ctx.MarshalMLS(b)
	g.tree.Nodes().MarshalMLS(b)
	b.AddOpaque(g.interim)
	b.AddVector(func(b *wire.Builder) {
		for _, pp := range g.pending {
			b.AddOpaque(pp.ref)
			pp.sender.MarshalMLS(b)
			pp.proposal.MarshalMLS(b)
		}
	})
	b.AddOptional(g.reinit != nil, func(b *wire.Builder) { g.reinit.MarshalMLS(b) })
	return b.Bytes()
}

// LoadPublicGroup decodes a state written by MarshalBinary, for use with
// cfg. The blob is trusted as the caller's own (it is not validated again
// as a received tree would be); errors wrap ErrInvalidState.
func LoadPublicGroup(data []byte, cfg Config) (*PublicGroup, error) {
	pg, err := loadPublicGroup(data, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: public state: %w", ErrInvalidState, err)
	}
	return pg, nil
}

func loadPublicGroup(data []byte, cfg Config) (*PublicGroup, error) {
	r := wire.NewReader(data)
	if v := r.Uint8(); r.Err() == nil && v != publicStateVersion {
		return nil, fmt.Errorf("version %d", v)
	}
	var ctx GroupContext
	ctx.UnmarshalMLS(r)
	var nodes tree.RatchetTreeNodes
	nodes.UnmarshalMLS(r)
	g := &Group{cfg: cfg, myLeaf: noLeaf, public: true}
	g.interim = r.OpaqueCopy()
	r.VectorEach(func(r *wire.Reader) {
		pp := &pendingProposal{ref: r.OpaqueCopy(), proposal: new(Proposal)}
		pp.sender.UnmarshalMLS(r)
		pp.proposal.UnmarshalMLS(r)
		g.pending = append(g.pending, pp)
	})
	r.Optional(func(r *wire.Reader) {
		g.reinit = new(ReInit)
		g.reinit.UnmarshalMLS(r)
	})
	if err := r.Finish(); err != nil {
		return nil, err
	}
	var err error
	if g.suite, err = suite.New(ctx.CipherSuite); err != nil {
		return nil, err
	}
	if err := g.setContext(ctx); err != nil {
		return nil, err
	}
	if g.tree, err = tree.New(nodes); err != nil {
		return nil, err
	}
	return &PublicGroup{g: g}, nil
}
