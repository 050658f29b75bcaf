package client

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/identity"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
)

// Relay is what the engine needs from a relay (relay/API.md). The adapter
// over relay/client is NewRelay; tests use fakes.
type Relay interface {
	Login(ctx context.Context) error
	// CreateGroup registers a new group; groupInfo is its first epoch's
	// signed GroupInfo (with the ratchet tree) for a relay that verifies.
	CreateGroup(ctx context.Context, groupID, groupInfo []byte) error
	// PostCommit orders a commit; a conflict is a *relayclient.CommitConflictError.
	PostCommit(ctx context.Context, oc *channel.OutgoingCommit) (uint64, error)
	// PostMessage appends an application message or a proposal.
	PostMessage(ctx context.Context, groupID []byte, kind string, epoch uint64, msg []byte) (uint64, error)
	PostWelcome(ctx context.Context, w relayclient.Welcome) error
	Messages(ctx context.Context, groupID []byte, p relayclient.Page) ([]relayclient.Entry, uint64, error)
	Cursor(ctx context.Context, groupID []byte) (uint64, error)
	SetCursor(ctx context.Context, groupID []byte, after uint64) error
	Welcomes(ctx context.Context, wait time.Duration) ([]relayclient.Welcome, error)
	AckWelcome(ctx context.Context, id uint64) error
	KeyPackageCount(ctx context.Context) (int, bool, error)
	PublishKeyPackages(ctx context.Context, kps [][]byte, lastResort []byte) error
	ClaimKeyPackages(ctx context.Context, user identity.UserID) ([]relayclient.ClaimedKeyPackage, error)
	// GroupInfo is the group's latest GroupInfo (for external joins).
	GroupInfo(ctx context.Context, groupID []byte) ([]byte, uint64, error)
	// EpochState is the relay's public view of an epoch (the joiner
	// check, CONTRACT "relay changes"); errors.ErrUnsupported while the
	// relay does not offer it.
	EpochState(ctx context.Context, groupID []byte, epoch uint64) (*EpochState, error)
	URL() string
}

// EpochState is what the relay knows of an epoch without secrets.
type EpochState struct {
	Epoch                   uint64
	TreeHash                []byte
	ConfirmedTranscriptHash []byte
}

// ErrRelayUnreachable is a relay that did not answer (network failure or
// 5xx): the operation may be retried later.
var ErrRelayUnreachable = errors.New("client: relay unreachable")

// unreachable reports whether err means the relay did not answer.
func unreachable(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	if errors.Is(err, ErrRelayUnreachable) {
		return true
	}
	var pe *permanentError
	if errors.As(err, &pe) {
		return false // a state change that cannot be carried out
	}
	var re *relayclient.Error
	if errors.As(err, &re) {
		return re.Status >= 500 || re.Status == http.StatusTooManyRequests
	}
	var cc *relayclient.CommitConflictError
	var ee *relayclient.EpochError
	return !errors.As(err, &cc) && !errors.As(err, &ee)
}

type relayAdapter struct {
	// rc is the relay client; a device waiting to be linked starts with
	// one without a certificate, replaced by one with it once linked.
	p    atomic.Pointer[relayclient.Client]
	opts relayclient.Options // for the clients linking makes
}

// NewRelay adapts a relay/client Client.
func NewRelay(rc *relayclient.Client) Relay {
	a := &relayAdapter{}
	a.p.Store(rc)
	return a
}

func (a *relayAdapter) rc() *relayclient.Client { return a.p.Load() }

func (a *relayAdapter) URL() string                     { return a.rc().BaseURL() }
func (a *relayAdapter) Login(ctx context.Context) error { return a.rc().Login(ctx) }

func (a *relayAdapter) CreateGroup(ctx context.Context, _, groupInfo []byte) error {
	err := a.rc().CreateGroup(ctx, groupInfo)
	if errors.Is(err, relayclient.ErrConflict) {
		return nil // registered already (a retried registration)
	}
	return err
}

func userIDs(ms []channel.Member) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range ms {
		if !seen[m.Identity] {
			seen[m.Identity] = true
			out = append(out, m.Identity)
		}
	}
	return out
}

func (a *relayAdapter) PostCommit(ctx context.Context, oc *channel.OutgoingCommit) (uint64, error) {
	// The relay verifies the commit against the group's public state and
	// derives who was added and removed; the new epoch's GroupInfo (with
	// the tree) travels with it and becomes the group's.
	return a.rc().PostCommit(ctx, oc.GroupID, oc.Commit, oc.GroupInfo)
}

func (a *relayAdapter) PostMessage(ctx context.Context, groupID []byte, kind string, epoch uint64, msg []byte) (uint64, error) {
	return a.rc().PostMessage(ctx, groupID, relayclient.Post{Message: msg, Kind: kind, Epoch: epoch})
}

// PostMessages posts application messages of one group in one request
// (batchPoster).
func (a *relayAdapter) PostMessages(ctx context.Context, groupID []byte, msgs [][]byte) ([]relayclient.PostResult, error) {
	return a.rc().PostMessages(ctx, groupID, msgs)
}

func (a *relayAdapter) PostWelcome(ctx context.Context, w relayclient.Welcome) error {
	_, err := a.rc().PostWelcome(ctx, w)
	return err
}

func (a *relayAdapter) Messages(ctx context.Context, groupID []byte, p relayclient.Page) ([]relayclient.Entry, uint64, error) {
	return a.rc().Messages(ctx, groupID, p)
}
func (a *relayAdapter) Cursor(ctx context.Context, groupID []byte) (uint64, error) {
	return a.rc().Cursor(ctx, groupID)
}
func (a *relayAdapter) SetCursor(ctx context.Context, groupID []byte, after uint64) error {
	return a.rc().SetCursor(ctx, groupID, after)
}
func (a *relayAdapter) Welcomes(ctx context.Context, wait time.Duration) ([]relayclient.Welcome, error) {
	return a.rc().Welcomes(ctx, wait)
}
func (a *relayAdapter) AckWelcome(ctx context.Context, id uint64) error {
	return a.rc().AckWelcome(ctx, id)
}
func (a *relayAdapter) KeyPackageCount(ctx context.Context) (int, bool, error) {
	return a.rc().KeyPackageCount(ctx)
}
func (a *relayAdapter) PublishKeyPackages(ctx context.Context, kps [][]byte, lr []byte) error {
	_, err := a.rc().PublishKeyPackages(ctx, kps, lr)
	return err
}
func (a *relayAdapter) ClaimKeyPackages(ctx context.Context, user identity.UserID) ([]relayclient.ClaimedKeyPackage, error) {
	return a.rc().ClaimKeyPackages(ctx, user)
}
func (a *relayAdapter) GroupInfo(ctx context.Context, groupID []byte) ([]byte, uint64, error) {
	return a.rc().GroupInfo(ctx, groupID)
}

// EpochState is the relay's verified public state of an epoch.
func (a *relayAdapter) EpochState(ctx context.Context, groupID []byte, epoch uint64) (*EpochState, error) {
	st, err := a.rc().EpochState(ctx, groupID, epoch)
	if err != nil {
		return nil, err
	}
	return &EpochState{Epoch: st.Epoch, TreeHash: st.TreeHash, ConfirmedTranscriptHash: st.ConfirmedTranscriptHash}, nil
}

// RateLimited counts the relay's 429 answers waited out (adapter only).
func (a *relayAdapter) RateLimited() int64 { return a.rc().RateLimited() }

// RateLimited counts the relay's 429 answers the engine waited out.
func (c *Client) RateLimited() int64 {
	if r, ok := c.relay.(interface{ RateLimited() int64 }); ok {
		return r.RateLimited()
	}
	return 0
}
