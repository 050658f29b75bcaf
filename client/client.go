package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/internal/keylock"
	"github.com/spacepanda/spacepanda/provider"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
	"github.com/spacepanda/spacepanda/store"
)

// Config configures Open.
type Config struct {
	// DataDir is the identity's data directory (created on first start).
	DataDir string
	// RelayURL is the relay's base URL; empty: no relay (commits merge at
	// once and the caller carries messages).
	RelayURL string
	// DisplayName is the name shown to others on a new identity.
	DisplayName string
	// Passphrase unlocks the store instead of DataDir/store.key.
	Passphrase []byte
	// Relay overrides the relay adapter (tests); RelayURL is then unused.
	Relay Relay
	// HTTP is the HTTP client for the relay (nil: default).
	HTTP *http.Client
	// Logger (nil: discard).
	Logger *slog.Logger
	// Limits bound what the engine buffers (zero fields: defaults).
	Limits Limits
	// PoolSize is how many one-time key packages are kept published at the
	// relay (0: 20); PoolLow the level that triggers a top-up (0: PoolSize/4).
	PoolSize, PoolLow int
	// Wait is the long-poll wait at the relay (0: 25 s).
	Wait time.Duration
	// Retry is the first outbox retry delay, doubled up to 30 s (0: 250 ms).
	Retry time.Duration
	// CommitRetries bounds the retries of a refused commit (0: 8).
	CommitRetries int
	// Link makes a new data directory a device waiting to be linked to an
	// existing user (AcceptLink) instead of a new user; the engine starts
	// working with the relay once it is linked.
	Link bool
}

// Limits bound the messages held for a future epoch.
type Limits struct {
	HeldCount int // 0: 256
	HeldBytes int // 0: 8 MiB
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Limits.HeldCount <= 0 {
		c.Limits.HeldCount = 256
	}
	if c.Limits.HeldBytes <= 0 {
		c.Limits.HeldBytes = 8 << 20
	}
	if c.PoolSize <= 0 {
		c.PoolSize = 20
	}
	if c.PoolLow <= 0 {
		c.PoolLow = max(1, c.PoolSize/4)
	}
	if c.Wait <= 0 {
		c.Wait = 25 * time.Second
	}
	if c.Retry <= 0 {
		c.Retry = 250 * time.Millisecond
	}
	if c.CommitRetries <= 0 {
		c.CommitRetries = 8
	}
}

// Client is one identity's sync engine. It is safe for concurrent use.
type Client struct {
	cfg   Config
	p     *provider.Provider
	mgr   *channel.Manager
	relay Relay // nil: no relay
	recs  store.Records
	// contacts caches the contact records (written only through it).
	contacts recordCache
	log      *slog.Logger
	hub      *hub
	own      bool // Close closes p

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	reachable atomic.Int32 // 0 unknown, 1 reachable, 2 unreachable
	kpKick    chan struct{}
	obKick    chan struct{}
	sendq     *sendQueue    // queued messages (sendloop.go)
	obGen     atomic.Uint64 // general outbox enqueues (from 1)

	mu        sync.Mutex
	followers map[string]*follower
	posted    map[string]*channel.OutgoingCommit // by channel: the commit the poster just delivered
	inflight  map[string]*item                   // by channel: the change being delivered
	waiters   map[string]*changeWaiter           // change id -> its caller
	opLocks   keylock.Set                        // the engine's state changes, by channel
	roles     map[string]map[string]channel.Role // last seen roles by channel
	outcomes  map[string]string                  // message id -> last delivery status
	stLocks   keylock.Set                        // channel state changes (join vs removal)
	retried   map[uint64]int                     // Welcome id -> tries while the channel existed
	joinMu    sync.Mutex                         // one join at a time
	linkMu    sync.Mutex                         // one AcceptLink at a time
	started   atomic.Bool                        // startRelay is running
	stats     Stats
}

// Stats are the engine's counters (node metrics).
type Stats struct {
	HeldDropped    int64 // future-epoch messages dropped over the bound
	EntriesSkipped int64 // log entries that did not process
	CommitRetries  int64
	Recoveries     int64
}

// Open opens the identity in cfg.DataDir and starts the engine. With a
// relay it logs in in the background: an unreachable relay is retried,
// and local history is served meanwhile.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("client: Config.DataDir is required")
	}
	po := provider.Options{Name: cfg.DisplayName, Link: cfg.Link}
	oo := provider.OpenOptions{Options: channel.ProviderOptions(po), Passphrase: cfg.Passphrase}
	if cfg.RelayURL != "" {
		// Handshakes as PublicMessages, for the relay to verify them.
		oo.Options = channel.RelayProviderOptions(po)
	}
	p, err := provider.Open(ctx, cfg.DataDir, oo)
	if err != nil {
		return nil, err
	}
	c, err := New(ctx, p, cfg)
	if err != nil {
		p.Close()
		return nil, err
	}
	c.own = true
	return c, nil
}

// New starts the engine over an open provider (Close leaves p open).
func New(ctx context.Context, p *provider.Provider, cfg Config) (*Client, error) {
	cfg.defaults()
	c := &Client{cfg: cfg, p: p, log: cfg.Logger, hub: newHub(), kpKick: make(chan struct{}, 1), obKick: make(chan struct{}, 1), sendq: newSendQueue(),
		followers: map[string]*follower{}, posted: map[string]*channel.OutgoingCommit{},
		inflight: map[string]*item{}, waiters: map[string]*changeWaiter{},
		roles: map[string]map[string]channel.Role{}, outcomes: map[string]string{},
		retried: map[uint64]int{}, contacts: recordCache{kind: recContact}}
	if r, ok := p.Store().(store.Records); ok {
		c.recs = r
	} else {
		c.recs = newMemRecords()
	}
	c.relay = cfg.Relay
	if c.relay == nil && cfg.RelayURL != "" {
		var cert []byte
		if crt := p.Certificate(); crt != nil {
			cert, _ = crt.Marshal() // a parsed certificate re-encodes
		}
		ro := relayclient.Options{HTTP: cfg.HTTP}
		a := &relayAdapter{opts: ro}
		a.p.Store(relayclient.New(cfg.RelayURL, relayclient.Identity{Certificate: cert, Signer: p}, ro))
		c.relay = a
	}
	c.mgr = channel.NewManager(channel.NewMLSGroupProvider(p), p.Store(), channel.Options{CommitPoster: c.post})
	c.obGen.Store(1)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if c.relay != nil {
		c.loadQueued(ctx)
		c.log = c.log.With("relay", c.relay.URL())
	}
	if c.relay != nil && p.Certificate() != nil {
		// One bounded attempt now, so that a node whose relay answers is
		// logged in with its key packages published when Open returns;
		// otherwise the engine keeps trying in the background.
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		online := c.online(octx)
		cancel()
		c.goRelay(online)
	}
	// A device waiting to be linked has no user to log in as: AcceptLink
	// starts the relay work.
	return c, nil
}

// Close stops the engine and waits for it.
func (c *Client) Close() error {
	c.cancel()
	c.wg.Wait()
	if c.own {
		return c.p.Close()
	}
	return nil
}

// Provider is the identity's provider.
func (c *Client) Provider() *provider.Provider { return c.p }

// Manager is the channel manager (reads; changes go through the Client).
func (c *Client) Manager() *channel.Manager { return c.mgr }

// HasRelay reports whether the engine works with a relay.
func (c *Client) HasRelay() bool { return c.relay != nil }

// RelayURL is the relay's URL ("" without one).
func (c *Client) RelayURL() string {
	if c.relay == nil {
		return ""
	}
	return c.relay.URL()
}

// Reachable reports whether the relay answered last time (false without one).
func (c *Client) Reachable() bool { return c.reachable.Load() == 1 }

// Stats returns the engine's counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Subscribe returns the kept events after id after, then a channel of the
// following ones (closed if the subscriber falls behind; resume from the
// last id seen). cancel ends the subscription.
func (c *Client) Subscribe(after uint64) ([]Event, <-chan Event, func()) {
	return c.hub.subscribe(after)
}

func (c *Client) emit(kind, channelID string, data map[string]any) { c.hub.emit(kind, channelID, data) }

// setReachable records the relay's reachability, reporting a change.
func (c *Client) setReachable(ok bool) {
	v := int32(2)
	if ok {
		v = 1
	}
	if old := c.reachable.Swap(v); old != v {
		c.emit(EventRelayStatus, "", map[string]any{"reachable": ok})
		if ok {
			c.kickOutbox()
		}
	}
}

// noteRelay updates reachability from a relay call's outcome.
func (c *Client) noteRelay(ctx context.Context, err error) {
	if err == nil {
		c.setReachable(true)
	} else if unreachable(ctx, err) {
		c.setReachable(false)
	} else {
		c.setReachable(true)
	}
}

// opLock serialises the engine's state changes of one channel.
func (c *Client) opLock(channelID string) func() { return c.opLocks.Lock(channelID) }

// stateLock serialises a channel's joins with the handling of its removal.
func (c *Client) stateLock(channelID string) func() { return c.stLocks.Lock(channelID) }

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// goRelay starts startRelay, once.
func (c *Client) goRelay(online bool) {
	if c.started.Swap(true) {
		return
	}
	c.wg.Add(1)
	go c.startRelay(online)
}

// startRelay logs in (retrying while the relay is unreachable), then
// starts the key package pool, the Welcome queue, the outbox and one
// follower per active channel.
func (c *Client) startRelay(online bool) {
	defer c.wg.Done()
	for delay := c.cfg.Retry; !online && c.ctx.Err() == nil; delay = min(2*delay, 30*time.Second) {
		if !sleepCtx(c.ctx, delay) {
			return
		}
		online = c.online(c.ctx)
	}
	if c.ctx.Err() != nil {
		return
	}
	ds, err := c.mgr.Channels(c.ctx)
	if err != nil {
		c.log.Error("listing channels", "err", err)
	}
	for _, d := range ds {
		if st, _ := c.channelState(c.ctx, d.ID); st.State == StateActive {
			c.follow(d)
		}
	}
	c.startSenders()
	c.wg.Add(5)
	go c.deleter() // deletions.go
	go c.poolLoop()
	go c.welcomeLoop()
	go c.outboxLoop()
	go c.reconcileDevices() // devices.go
}

// online logs in and tops the key package pool up.
func (c *Client) online(ctx context.Context) bool {
	err := c.relay.Login(ctx)
	c.noteRelay(ctx, err)
	if err == nil {
		err = c.topUp(ctx)
	}
	if err != nil {
		c.log.Warn("relay not available yet, retrying", "err", err)
		return false
	}
	return true
}

// errf is a one-line error wrapping a sentinel.
func errf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
