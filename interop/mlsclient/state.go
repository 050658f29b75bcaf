package mlsclient

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spacepanda/spacepanda/interop/mlsclient/mlspb"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// state is one member's group state.
type state struct {
	mu    sync.Mutex
	freed bool

	// identity and groupID never change once the state is registered.
	identity []byte
	groupID  []byte
	suite    *suite.Suite
	signer   *suite.Signer
	encrypt  bool // handshake messages as PrivateMessage
	psks     pskStore

	group *mls.Group
	// treeInWelcome is the Config.RatchetTreeInWelcome group was built with.
	treeInWelcome bool
	// pending is the commit this member created and has not merged yet.
	pending       *mls.CommitResult
	pendingCommit []byte // pending.Commit as sent
	// seen are the proposals this member sent or processed in the current
	// epoch, as encoded: the harness hands them back among the
	// by-reference proposals, and a member cannot (and need not) process
	// its own, nor one it has cached already.
	seen map[string]bool
	// sentReInit are the ReInit proposals this member sent.
	sentReInit map[string]*mls.ReInit
	// refs are the references (RFC 9420 §5.2) of the proposals this
	// member received in the current epoch, by encoded message.
	refs map[string]received
}

// received is a proposal another member (or an external sender) sent.
type received struct {
	ref []byte
	typ tree.ProposalType
}

// pskStore holds the external PSKs given by StorePSK.
type pskStore map[string][]byte

// lookup implements mls.PSKLookup for external PSKs.
func (p pskStore) lookup(id *schedule.PreSharedKeyID) ([]byte, error) {
	if id.Type == schedule.PSKTypeExternal {
		if sec, ok := p[string(id.PSKID)]; ok {
			return sec, nil
		}
	}
	return nil, fmt.Errorf("%w: %v PSK not stored", mls.ErrMissingPSK, id.Type)
}

// config is the engine configuration of st.
func (s *Server) config(st *state, treeInWelcome bool) mls.Config {
	return mls.Config{
		Now:                  s.opts.Now,
		PSKs:                 st.psks.lookup,
		HandshakeAsPublic:    !st.encrypt,
		RatchetTreeInWelcome: treeInWelcome,
		MaxLeafLifetime:      s.opts.MaxLeafLifetime,
	}
}

// adopt makes g the current group of st. A new epoch starts with no
// proposals sent.
func (st *state) adopt(g *mls.Group) {
	if st.group == nil || g.Epoch() != st.group.Epoch() {
		st.seen, st.sentReInit, st.refs = map[string]bool{}, map[string]*mls.ReInit{}, map[string]received{}
		st.pending, st.pendingCommit = nil, nil
	}
	st.group = g
}

// reconfigure rebuilds st's group with RatchetTreeInWelcome set as asked:
// whether a Welcome carries the tree is a Config setting, not a commit
// option, so a commit with external_tree reloads the state with another
// Config.
func (s *Server) reconfigure(st *state, treeInWelcome bool) error {
	if st.treeInWelcome == treeInWelcome {
		return nil
	}
	es, err := st.group.MarshalEpochState()
	if err != nil {
		return err
	}
	rs, err := st.group.MarshalRatchetState()
	if err != nil {
		return err
	}
	g, err := mls.LoadGroup(es, rs, st.signer, s.config(st, treeInWelcome))
	if err != nil {
		return err
	}
	st.group, st.treeInWelcome = g, treeInWelcome
	return nil
}

// newState registers a state for g.
func (s *Server) newState(st *state, g *mls.Group) uint32 {
	st.adopt(g)
	return s.add(st)
}

// GroupInfo returns a signed GroupInfo (with external_pub) and, with
// external_tree, the ratchet tree separately instead of in the GroupInfo.
func (s *Server) GroupInfo(_ context.Context, r *mlspb.GroupInfoRequest) (*mlspb.GroupInfoResponse, error) {
	out := &mlspb.GroupInfoResponse{}
	err := s.withState(r.StateId, func(st *state) error {
		gi, err := st.group.GroupInfo(!r.ExternalTree)
		if err != nil {
			return engineError("group info", err)
		}
		if out.GroupInfo, err = encodeMessage(gi); err != nil {
			return err
		}
		if r.ExternalTree {
			out.RatchetTree, err = encodeTree(st.group.RatchetTree())
		}
		return err
	})
	return out, err
}

// StateAuth returns the epoch_authenticator (RFC 9420 §8.7).
func (s *Server) StateAuth(_ context.Context, r *mlspb.StateAuthRequest) (*mlspb.StateAuthResponse, error) {
	out := &mlspb.StateAuthResponse{}
	err := s.withState(r.StateId, func(st *state) error {
		out.StateAuthSecret = st.group.EpochAuthenticator()
		return nil
	})
	return out, err
}

// Export runs the MLS exporter (RFC 9420 §8.5).
func (s *Server) Export(_ context.Context, r *mlspb.ExportRequest) (*mlspb.ExportResponse, error) {
	if r.KeyLength > MaxExportLength {
		return nil, status.Errorf(codes.InvalidArgument, "export: key_length %d above %d", r.KeyLength, MaxExportLength)
	}
	out := &mlspb.ExportResponse{}
	err := s.withState(r.StateId, func(st *state) error {
		sec, err := st.group.Export(r.Label, r.Context, int(r.KeyLength))
		out.ExportedSecret = sec
		return engineError("export", err)
	})
	return out, err
}

// Protect encrypts application data as a PrivateMessage.
func (s *Server) Protect(_ context.Context, r *mlspb.ProtectRequest) (*mlspb.ProtectResponse, error) {
	out := &mlspb.ProtectResponse{}
	err := s.withState(r.StateId, func(st *state) error {
		m, err := st.group.Encrypt(r.Plaintext, r.AuthenticatedData)
		if err != nil {
			return engineError("protect", err)
		}
		out.Ciphertext, err = encodeMessage(m)
		return err
	})
	return out, err
}

// Unprotect decrypts an application message. Anything else is refused and
// leaves the state as it was.
func (s *Server) Unprotect(_ context.Context, r *mlspb.UnprotectRequest) (*mlspb.UnprotectResponse, error) {
	out := &mlspb.UnprotectResponse{}
	err := s.withState(r.StateId, func(st *state) error {
		m, err := decodeMessage(r.Ciphertext, mls.WireFormatPrivateMessage)
		if err != nil {
			return err
		}
		if m.PrivateMessage.ContentType != mls.ContentTypeApplication {
			return status.Errorf(codes.InvalidArgument, "unprotect: a %v message, not application data", m.PrivateMessage.ContentType)
		}
		p, err := st.group.Process(m)
		if err != nil {
			return engineError("unprotect", err)
		}
		out.AuthenticatedData, out.Plaintext = p.AuthenticatedData, p.ApplicationData
		return nil
	})
	return out, err
}

// StorePSK stores an external PSK for a state or a pending join.
func (s *Server) StorePSK(_ context.Context, r *mlspb.StorePSKRequest) (*mlspb.StorePSKResponse, error) {
	if len(r.PskId) == 0 {
		return nil, status.Error(codes.InvalidArgument, "store psk: empty psk_id")
	}
	store := func(p pskStore) { p[string(r.PskId)] = append([]byte(nil), r.PskSecret...) }
	switch e := s.get(r.StateOrTransactionId).(type) {
	case *state:
		return &mlspb.StorePSKResponse{}, s.withState(r.StateOrTransactionId, func(st *state) error {
			store(st.psks)
			return nil
		})
	case *joinTx:
		e.mu.Lock()
		defer e.mu.Unlock()
		store(e.psks)
		return &mlspb.StorePSKResponse{}, nil
	}
	return nil, status.Errorf(codes.NotFound, "no state or transaction with id %d", r.StateOrTransactionId)
}

// decodeMessage decodes an MLSMessage and checks its wire format.
func decodeMessage(b []byte, want ...mls.WireFormat) (*mls.Message, error) {
	m, err := mls.UnmarshalMessage(b)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "decode message: %v", err)
	}
	for _, wf := range want {
		if m.WireFormat == wf {
			return m, nil
		}
	}
	return nil, status.Errorf(codes.InvalidArgument, "decode message: a %v, want %v", m.WireFormat, want)
}

// encodeMessage encodes an MLSMessage, wrapping a bare body first.
func encodeMessage(v wire.Marshaler) ([]byte, error) {
	m, ok := v.(*mls.Message)
	if !ok {
		var err error
		if m, err = mls.NewMessage(v); err != nil {
			return nil, status.Errorf(codes.Internal, "encode message: %v", err)
		}
	}
	b, err := wire.Marshal(m)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode message: %v", err)
	}
	return b, nil
}

// decodeTree decodes an out-of-band ratchet tree; empty means none.
func decodeTree(b []byte) (tree.RatchetTreeNodes, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var t tree.RatchetTreeNodes
	if err := wire.Unmarshal(b, &t); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "decode ratchet tree: %v", err)
	}
	return t, nil
}

func encodeTree(t tree.RatchetTreeNodes) ([]byte, error) {
	b, err := wire.Marshal(t)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode ratchet tree: %v", err)
	}
	return b, nil
}

// extensions converts the harness's extensions.
func extensions(in []*mlspb.Extension) (tree.Extensions, error) {
	out := tree.Extensions{}
	for _, e := range in {
		if e.ExtensionType > 0xffff {
			return nil, status.Errorf(codes.InvalidArgument, "extension type %d out of range", e.ExtensionType)
		}
		out = append(out, tree.Extension{ExtensionType: tree.ExtensionType(e.ExtensionType), ExtensionData: e.ExtensionData})
	}
	return out, nil
}
