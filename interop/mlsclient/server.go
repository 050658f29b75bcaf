// Package mlsclient is SpacePanda's client for the MLS working group's
// interoperability harness: a gRPC server implementing the MLSClient service
// of mls_client.proto over the engine in package mls, so that the official
// test runner (or any gRPC caller) can put our engine in groups with other
// implementations.
//
// The server holds everything in memory. Each group state, pending join
// (a KeyPackage waiting for its Welcome), external signer and pending ReInit
// is an entry under a numeric id, the ids the harness passes back: state_id,
// transaction_id, signer_id and reinit_id share one counter, so StorePSK can
// take either kind. Every entry has its own lock, so calls for different
// states run in parallel; Free drops a state.
//
// Every message crosses the interface as an MLSMessage (RFC 9420 §6):
// KeyPackages, Welcomes, GroupInfos, proposals and commits. Handshake
// messages are PrivateMessages when the state was created with
// encrypt_handshake, PublicMessages otherwise. A ratchet tree travels as the
// ratchet_tree extension's data (RFC 9420 §12.4.3.3).
//
// Errors are gRPC status errors: NotFound for an unknown id,
// InvalidArgument for input that does not decode or that the engine rejects
// (the engine's message is kept), FailedPrecondition for a call that does not
// fit the state (no pending commit, a PSK not stored). Every RPC is served:
// none answers Unimplemented.
package mlsclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spacepanda/spacepanda/interop/mlsclient/mlspb"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
)

// Name is what the Name RPC reports.
const Name = "SpacePanda"

// MaxExportLength bounds Export's key_length: HKDF-Expand's limit for the
// largest hash of the seven suites is 255*64 bytes.
const MaxExportLength = 255 * 64

// Options tune a Server. The zero value is usable.
type Options struct {
	// MaxLeafLifetime bounds not_after - not_before of the KeyPackages the
	// server's members accept (RFC 9420 §7.2). Zero means
	// mls.DefaultMaxLifetime; negative means no bound, for peers whose key
	// packages are valid forever.
	MaxLeafLifetime time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Server implements mlspb.MLSClientServer. Create it with New.
type Server struct {
	mlspb.UnimplementedMLSClientServer

	opts Options

	mu      sync.Mutex
	nextID  uint32
	entries map[uint32]any // *state, *joinTx, *signerEntry, *reinitEntry
}

// New returns a Server with no state.
func New(o Options) *Server {
	if o.MaxLeafLifetime == 0 {
		o.MaxLeafLifetime = mls.DefaultMaxLifetime
	}
	if o.MaxLeafLifetime < 0 {
		o.MaxLeafLifetime = 0
	}
	return &Server{opts: o, entries: map[uint32]any{}}
}

// Register registers s on a gRPC server.
func (s *Server) Register(r grpc.ServiceRegistrar) { mlspb.RegisterMLSClientServer(r, s) }

// Serve serves s on l until ctx is done, then stops gracefully.
func Serve(ctx context.Context, l net.Listener, s *Server) error {
	gs := grpc.NewServer()
	s.Register(gs)
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			gs.GracefulStop()
		case <-done:
		}
	}()
	err := gs.Serve(l)
	close(done)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// add stores e under a fresh id.
func (s *Server) add(e any) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		s.nextID++
		if _, used := s.entries[s.nextID]; s.nextID != 0 && !used {
			s.entries[s.nextID] = e
			return s.nextID
		}
	}
}

func (s *Server) get(id uint32) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries[id]
}

func (s *Server) remove(id uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, id)
}

// lookup returns the entry of type T under id.
func lookup[T any](s *Server, id uint32, what string) (T, error) {
	e, ok := s.get(id).(T)
	if !ok {
		return e, status.Errorf(codes.NotFound, "no %s with id %d", what, id)
	}
	return e, nil
}

// withState runs f on the state under id, holding its lock.
func (s *Server) withState(id uint32, f func(st *state) error) error {
	st, err := lookup[*state](s, id, "state")
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.freed {
		return status.Errorf(codes.NotFound, "no state with id %d", id)
	}
	return f(st)
}

// Name implements the Name RPC.
func (s *Server) Name(context.Context, *mlspb.NameRequest) (*mlspb.NameResponse, error) {
	return &mlspb.NameResponse{Name: Name}, nil
}

// SupportedCiphersuites lists the seven suites of RFC 9420 §17.1.
func (s *Server) SupportedCiphersuites(context.Context, *mlspb.SupportedCiphersuitesRequest) (*mlspb.SupportedCiphersuitesResponse, error) {
	var out []uint32
	for _, id := range suite.All() {
		out = append(out, uint32(id))
	}
	return &mlspb.SupportedCiphersuitesResponse{Ciphersuites: out}, nil
}

// Free drops a state (or any other entry) and its secrets.
func (s *Server) Free(_ context.Context, r *mlspb.FreeRequest) (*mlspb.FreeResponse, error) {
	e := s.get(r.StateId)
	if e == nil {
		return nil, status.Errorf(codes.NotFound, "no state with id %d", r.StateId)
	}
	if st, ok := e.(*state); ok {
		st.mu.Lock()
		st.freed = true
		st.group, st.pending = nil, nil
		st.mu.Unlock()
	}
	s.remove(r.StateId)
	return &mlspb.FreeResponse{}, nil
}

// suiteOf checks a cipher_suite field.
func suiteOf(id uint32) (*suite.Suite, error) {
	if id > 0xffff {
		return nil, status.Errorf(codes.InvalidArgument, "cipher suite %d out of range", id)
	}
	cs, err := suite.New(suite.ID(id))
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "cipher suite %d: %v", id, err)
	}
	return cs, nil
}

// failedPrecondition are the engine errors that say the call does not fit
// the state rather than that its input is bad.
var failedPrecondition = []error{mls.ErrMissingPSK, mls.ErrPendingProposals, mls.ErrReInitPending,
	mls.ErrNotMember, mls.ErrOwnCommit}

// engineError turns an engine error into a status error keeping its message.
func engineError(op string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.InvalidArgument
	for _, e := range failedPrecondition {
		if errors.Is(err, e) {
			code = codes.FailedPrecondition
		}
	}
	return status.Error(code, fmt.Sprintf("%s: %v", op, err))
}
