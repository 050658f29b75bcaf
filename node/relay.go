package node

// Relay mode (spacepanda serve --relay URL): the node talks to a relay
// (relay/API.md) so that nobody carries bytes between nodes. A background
// sync keeps the key package pool topped up, joins from queued Welcomes,
// and follows every channel's log in order; the routes that produce MLS
// messages (create, invite, send, remove, update) also deliver them.
// Commits are posted before they are merged (channel.CommitPoster): a
// refused one (409, another member's commit took the epoch) is followed by
// processing the winner from the log and a retry in the new epoch.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/provider"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
	"github.com/spacepanda/spacepanda/store"
)

// RelayOptions configure relay mode.
type RelayOptions struct {
	// URL is the relay's base URL.
	URL string
	// HTTP is the client for the relay (nil: default, no overall timeout).
	HTTP *http.Client
	// PoolSize is how many one-time key packages the node keeps published
	// (0: 20); it tops the pool up when fewer than PoolLow are left (0: PoolSize/4).
	PoolSize, PoolLow int
	// Wait is the long-poll wait (0: 25 s).
	Wait time.Duration
	// CheckEvery is how often the key package pool is checked besides
	// after each Welcome (0: 30 s).
	CheckEvery time.Duration
	// CommitRetries bounds the retries of a commit refused by the relay
	// (0: 8).
	CommitRetries int
	// Logger (nil: the server's).
	Logger *slog.Logger
}

// ErrRelay wraps failures to reach or use the relay.
var ErrRelay = errors.New("node: relay")

// Relay is a node server in relay mode.
type Relay struct {
	s   *Server
	p   *provider.Provider
	mgr *channel.Manager
	rc  *relayclient.Client
	o   RelayOptions
	log *slog.Logger
	mux *http.ServeMux

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kpKick chan struct{}

	mu        sync.Mutex
	followers map[string]*follower // by channel id
}

// NewRelay puts the server s in relay mode; Start begins the sync.
func NewRelay(s *Server, o RelayOptions) *Relay {
	if o.PoolSize <= 0 {
		o.PoolSize = 20
	}
	if o.PoolLow <= 0 {
		o.PoolLow = max(1, o.PoolSize/4)
	}
	if o.Wait <= 0 {
		o.Wait = 25 * time.Second
	}
	if o.CheckEvery <= 0 {
		o.CheckEvery = 30 * time.Second
	}
	if o.CommitRetries <= 0 {
		o.CommitRetries = 8
	}
	log := o.Logger
	if log == nil {
		log = s.log
	}
	r := &Relay{s: s, p: s.p, mgr: s.mgr, o: o, log: log.With("relay", o.URL), kpKick: make(chan struct{}, 1),
		followers: map[string]*follower{}}
	var cert []byte
	if c := s.p.Certificate(); c != nil {
		cert, _ = c.Marshal() // a parsed certificate re-encodes
	}
	r.rc = relayclient.New(o.URL, relayclient.Identity{Certificate: cert, Signer: s.p}, relayclient.Options{HTTP: o.HTTP})
	r.routes()
	return r
}

// Client is the relay client (logged in as this node).
func (r *Relay) Client() *relayclient.Client { return r.rc }

// Handler is the node's HTTP API in relay mode.
func (r *Relay) Handler() http.Handler { return r.mux }

func (r *Relay) routes() {
	r.mux = http.NewServeMux()
	h := func(pattern, route string, f func(http.ResponseWriter, *http.Request) error) {
		r.mux.Handle(pattern, r.s.instrument(route, f))
	}
	h("POST /v1/channels", "channels_create", r.createChannel)
	h("POST /v1/channels/{id}/invites", "invites_create", r.createInvite)
	h("POST /v1/join", "join", r.join)
	h("POST /v1/channels/{id}/messages", "messages_send", r.sendMessage)
	h("GET /v1/channels/{id}/messages", "messages_list", r.listMessages)
	h("DELETE /v1/channels/{id}/members/{user_id}", "members_remove", r.removeMember)
	h("POST /v1/channels/{id}/update", "update", r.update)
	h("GET /v1/relay", "relay_status", r.status)
	r.mux.Handle("/", r.s.Handler())
}

// Start logs in, publishes key packages, and starts the sync: the
// Welcome queue, the key package pool and one follower per channel.
func (r *Relay) Start(ctx context.Context) error {
	if err := r.rc.Login(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrRelay, err)
	}
	if err := r.topUp(ctx); err != nil {
		return fmt.Errorf("%w: key packages: %w", ErrRelay, err)
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	ds, err := r.mgr.Channels(ctx)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if _, err := r.mgr.Epoch(ctx, d.ID); err == nil {
			r.follow(d)
		}
	}
	r.wg.Add(2)
	go r.welcomeLoop()
	go r.poolLoop()
	return nil
}

// Close stops the sync and waits for it.
func (r *Relay) Close() {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
}

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

// --- key packages ---

func (r *Relay) topUp(ctx context.Context) error {
	n, lastResort, err := r.rc.KeyPackageCount(ctx)
	if err != nil {
		return err
	}
	var lr []byte
	if !lastResort {
		if lr, err = r.p.GenerateLastResortKeyPackage(ctx); err != nil {
			return err
		}
	}
	var kps [][]byte
	if n < r.o.PoolLow || (n < r.o.PoolSize && lr != nil) {
		if kps, err = r.mgr.GenerateKeyPackages(ctx, r.o.PoolSize-n); err != nil {
			return err
		}
	}
	if len(kps) == 0 && lr == nil {
		return nil
	}
	_, err = r.rc.PublishKeyPackages(ctx, kps, lr)
	if err == nil {
		r.log.Debug("published key packages", "one_time", len(kps), "last_resort", lr != nil)
	}
	return err
}

func (r *Relay) kickPool() {
	select {
	case r.kpKick <- struct{}{}:
	default:
	}
}

func (r *Relay) poolLoop() {
	defer r.wg.Done()
	t := time.NewTicker(r.o.CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		case <-r.kpKick:
		}
		if err := r.topUp(r.ctx); err != nil && r.ctx.Err() == nil {
			r.log.Warn("key package top-up failed", "err", err)
		}
	}
}

// --- Welcomes ---

func (r *Relay) welcomeLoop() {
	defer r.wg.Done()
	for r.ctx.Err() == nil {
		ws, err := r.rc.Welcomes(r.ctx, r.o.Wait)
		if err != nil {
			if r.ctx.Err() == nil {
				r.log.Warn("reading welcomes failed", "err", err)
				sleepCtx(r.ctx, time.Second)
			}
			continue
		}
		for _, w := range ws {
			r.useWelcome(r.ctx, w)
		}
		if len(ws) > 0 {
			r.kickPool()
		}
	}
}

func (r *Relay) useWelcome(ctx context.Context, w relayclient.Welcome) {
	// The channel's name and settings travel in the encrypted GroupInfo
	// (the relay carries no plaintext descriptor).
	d, err := r.mgr.JoinWelcome(ctx, w.Welcome, w.RatchetTree)
	switch {
	case err == nil:
		r.log.Info("joined from a queued Welcome", "channel", d.ID, "from", w.From)
		r.follow(d)
	case errors.Is(err, channel.ErrChannelExists):
	case ctx.Err() != nil:
		return
	default:
		// A Welcome we cannot use (its key package is gone, or it is
		// malformed) stays useless: acknowledge it rather than retry forever.
		r.log.Warn("cannot join from a queued Welcome", "from", w.From, "err", err)
	}
	if err := r.rc.AckWelcome(ctx, w.ID); err != nil && !errors.Is(err, relayclient.ErrNotFound) {
		r.log.Warn("acknowledging a Welcome failed", "id", w.ID, "err", err)
	}
}

// --- following a channel's log ---

// follower reads one group's log in order and processes it.
type follower struct {
	r    *Relay
	d    *channel.Descriptor
	stop context.CancelFunc

	mu     sync.Mutex // serialises processing; never held while waiting
	cursor uint64     // last processed (or held) seq
	saved  uint64     // cursor last saved at the relay
	// savedAt is when the run loop last saved (run loop only).
	savedAt time.Time
	held    []relayclient.Entry
	done    bool
	wake    chan struct{}
}

func (r *Relay) follower(id string) *follower {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.followers[id]
}

// follow starts following d's log (once).
func (r *Relay) follow(d *channel.Descriptor) *follower {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.followers[d.ID]; ok {
		return f
	}
	ctx, cancel := context.WithCancel(r.ctx)
	f := &follower{r: r, d: d, stop: cancel, wake: make(chan struct{}, 1)}
	r.followers[d.ID] = f
	r.wg.Add(1)
	go f.run(ctx)
	return f
}

func (f *follower) run(ctx context.Context) {
	defer f.r.wg.Done()
	defer f.stop()
	r := f.r
	for ctx.Err() == nil {
		c, err := r.rc.Cursor(ctx, f.d.GroupID)
		if err == nil {
			f.mu.Lock()
			f.cursor, f.saved = max(f.cursor, c), c
			f.mu.Unlock()
			break
		}
		if errors.Is(err, relayclient.ErrForbidden) || errors.Is(err, relayclient.ErrNotFound) {
			r.log.Warn("channel unknown to the relay or not readable", "channel", f.d.ID, "err", err)
			return
		}
		r.log.Warn("reading cursor failed", "channel", f.d.ID, "err", err)
		sleepCtx(ctx, time.Second)
	}
	for ctx.Err() == nil {
		f.mu.Lock()
		after, done := f.cursor, f.done
		f.mu.Unlock()
		if done {
			return
		}
		es, next, err := r.rc.Messages(ctx, f.d.GroupID, relayclient.Page{After: after, Wait: r.o.Wait})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, relayclient.ErrForbidden) {
				r.log.Info("no longer a reader of the channel's log", "channel", f.d.ID)
				return
			}
			r.log.Warn("reading the log failed", "channel", f.d.ID, "err", err)
			sleepCtx(ctx, time.Second)
			continue
		}
		f.mu.Lock()
		f.process(ctx, es)
		if !f.done {
			f.cursor = max(f.cursor, next) // past entries we may not see
		}
		f.mu.Unlock()
		// Save the cursor when idle or at most once a second: a busy
		// channel must not double its requests (a lost save only means
		// re-reading entries, which are then refused as replays).
		if len(es) == 0 || time.Since(f.savedAt) > time.Second {
			f.saveCursor(ctx)
			f.savedAt = time.Now()
		}
	}
}

// pull reads and processes what is in the log now (no waiting).
func (f *follower) pull(ctx context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	es, _, err := f.r.rc.Messages(ctx, f.d.GroupID, relayclient.Page{After: f.cursor})
	if err != nil {
		return 0, err
	}
	f.process(ctx, es)
	return len(es), nil
}

// process handles entries in log order (f.mu held). An application
// message or proposal for an epoch we have not reached is held until the
// commit that starts it has been processed. The entries to receive are
// received in batches (one store transaction for a run of application
// messages), a batch ending at each commit.
func (f *follower) process(ctx context.Context, es []relayclient.Entry) {
	r, me := f.r, string(f.r.p.UserID())
	var batch []relayclient.Entry
	for _, e := range es {
		if e.Seq <= f.cursor || f.done {
			continue
		}
		f.cursor = e.Seq
		if e.Sender == me && e.Kind != relayclient.KindCommit {
			continue // our own message, already in our history
		}
		// Only a commit changes the epoch, and a commit ends a batch: the
		// epoch now is the one the batch so far will leave.
		ep, err := r.mgr.Epoch(ctx, f.d.ID)
		if err != nil {
			f.receive(ctx, batch)
			r.log.Warn("channel state unavailable", "channel", f.d.ID, "err", err)
			f.done = true
			return
		}
		if e.Kind != relayclient.KindCommit && e.Epoch > ep {
			f.held = append(f.held, e)
			continue
		}
		if e.Kind == relayclient.KindCommit && e.Epoch != ep {
			if e.Epoch > ep {
				r.log.Warn("commit for a future epoch: a commit is missing", "channel", f.d.ID, "seq", e.Seq, "epoch", e.Epoch, "ours", ep)
			}
			continue // an older epoch's commit: ours, or before we joined
		}
		batch = append(batch, e)
		if e.Kind == relayclient.KindCommit {
			f.receive(ctx, batch)
			batch = nil
			f.release(ctx)
		}
	}
	f.receive(ctx, batch)
}

// release processes the held messages whose epoch has come.
func (f *follower) release(ctx context.Context) {
	for len(f.held) > 0 && !f.done {
		ep, err := f.r.mgr.Epoch(ctx, f.d.ID)
		if err != nil {
			return
		}
		var keep, ready []relayclient.Entry
		for _, e := range f.held {
			if e.Epoch <= ep {
				ready = append(ready, e)
			} else {
				keep = append(keep, e)
			}
		}
		f.held = keep
		if len(ready) == 0 {
			return
		}
		f.receive(ctx, ready)
	}
}

// receive receives entries in order, in one batch.
func (f *follower) receive(ctx context.Context, es []relayclient.Entry) {
	if len(es) == 0 || f.done {
		return
	}
	r := f.r
	msgs := make([][]byte, len(es))
	for i, e := range es {
		msgs[i] = e.Message
	}
	for i, res := range r.mgr.ReceiveBatchFor(ctx, f.d.ID, msgs) {
		e := es[i]
		if res.Err != nil {
			lvl := slog.LevelWarn
			if e.Sender == string(r.p.UserID()) {
				lvl = slog.LevelDebug // our own commit, merged while we read it
			}
			r.log.Log(ctx, lvl, "dropping a log entry that does not process", "channel", f.d.ID, "seq", e.Seq, "kind", e.Kind,
				"sender", e.Sender, "err", res.Err)
			continue
		}
		if res.Event.Kind == channel.EventRemoved {
			r.log.Info("removed from the channel", "channel", f.d.ID, "by", res.Event.Sender.Identity)
			f.done = true
		}
	}
}

// saveCursor stores the read position at the relay: the last processed
// entry, or just before the oldest held one.
func (f *follower) saveCursor(ctx context.Context) {
	f.mu.Lock()
	c := f.cursor
	for _, e := range f.held {
		c = min(c, e.Seq-1)
	}
	saved := f.saved
	f.mu.Unlock()
	if c == saved {
		return
	}
	if err := f.r.rc.SetCursor(ctx, f.d.GroupID, c); err != nil {
		if ctx.Err() == nil && !errors.Is(err, relayclient.ErrForbidden) {
			f.r.log.Warn("saving the cursor failed", "channel", f.d.ID, "err", err)
		}
		return
	}
	f.mu.Lock()
	f.saved = max(f.saved, c)
	f.mu.Unlock()
}

// catchUp processes the log until the channel reaches epoch target (or
// the log has nothing more).
func (r *Relay) catchUp(ctx context.Context, d *channel.Descriptor, target uint64) error {
	f := r.follow(d)
	for i := 0; ; i++ {
		ep, err := r.mgr.Epoch(ctx, d.ID)
		if err != nil || ep >= target {
			return err
		}
		n, err := f.pull(ctx)
		if err != nil {
			return fmt.Errorf("%w: catch up: %w", ErrRelay, err)
		}
		if n == 0 {
			if i > 50 {
				return fmt.Errorf("%w: the log does not reach epoch %d (we are in %d)", ErrRelay, target, ep)
			}
			if !sleepCtx(ctx, 20*time.Millisecond) {
				return ctx.Err()
			}
		}
	}
}

// --- commits ---

// posted is what the commit poster delivered.
type posted struct {
	oc  *channel.OutgoingCommit
	seq uint64
}

func identities(ms []channel.Member) []string {
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

// commit runs op (a Manager commit) with a poster that posts the commit to
// the relay before it is merged; on a commit conflict it processes the log
// up to the relay's epoch and retries. After success it posts the new
// GroupInfo.
func (r *Relay) commit(ctx context.Context, channelID string, op func(ctx context.Context) error) (*posted, error) {
	d, err := r.mgr.Channel(ctx, channelID)
	if err != nil {
		return nil, err
	}
	var got *posted
	post := func(ctx context.Context, oc *channel.OutgoingCommit) error {
		seq, err := r.rc.PostMessage(ctx, oc.GroupID, relayclient.Post{Message: oc.Commit, Kind: relayclient.KindCommit,
			Epoch: oc.Epoch, Added: identities(oc.Added), Removed: identities(oc.Removed)})
		if err != nil {
			return err
		}
		got = &posted{oc: oc, seq: seq}
		return nil
	}
	pctx := channel.WithCommitPoster(ctx, post)
	for attempt := 0; ; attempt++ {
		got = nil
		err := op(pctx)
		var ce *relayclient.CommitConflictError
		if errors.As(err, &ce) && attempt < r.o.CommitRetries {
			r.log.Debug("commit refused, catching up and retrying", "channel", channelID, "relay_epoch", ce.CurrentEpoch)
			if err := r.catchUp(ctx, d, ce.CurrentEpoch); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			if errors.As(err, &ce) {
				return nil, &apiError{status: http.StatusConflict, code: "commit_conflict",
					msg: fmt.Sprintf("the relay kept refusing the commit (relay epoch %d)", ce.CurrentEpoch), err: err}
			}
			return nil, err
		}
		break
	}
	if got != nil {
		if err := r.rc.PutGroupInfo(ctx, got.oc.GroupID, got.oc.GroupInfo, got.oc.Epoch+1); err != nil {
			r.log.Warn("posting the GroupInfo failed", "channel", channelID, "err", err)
		}
	}
	return got, nil
}

// --- routes ---

func relayErr(err error) error {
	if err == nil {
		return nil
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return err
	}
	var re *relayclient.Error
	if errors.As(err, &re) {
		status := http.StatusBadGateway
		if re.Status == http.StatusNotFound || re.Status == http.StatusForbidden {
			status = re.Status
		}
		return &apiError{status: status, code: "relay_" + re.Code, msg: re.Error(), err: err}
	}
	return err
}

func (r *Relay) createChannel(w http.ResponseWriter, req *http.Request) error {
	var in CreateChannelRequest
	if err := decodeBody(w, req, r.s.opts.MaxBody, &in); err != nil {
		return err
	}
	if in.Name == "" || len(in.Name) > 200 {
		return badRequest("bad_name", "name must be 1 to 200 bytes")
	}
	ctx := req.Context()
	d, err := r.mgr.CreateChannel(ctx, in.Name, in.IsPublic)
	if err != nil {
		return err
	}
	if err := r.rc.CreateGroup(ctx, d.GroupID); err != nil {
		return relayErr(fmt.Errorf("%w: register channel %s: %w", ErrRelay, d.ID, err))
	}
	r.follow(d)
	resp, err := r.s.describe(ctx, d, true)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

// RelayInviteRequest invites by user id (a key package is claimed from the
// relay's directory) or by key package.
type RelayInviteRequest struct {
	UserID     string `json:"user_id,omitempty"`
	KeyPackage string `json:"key_package,omitempty"`
}

// RelayInviteResponse is InviteResponse plus what the relay did.
type RelayInviteResponse struct {
	InviteResponse
	UserIDs    []string `json:"user_ids"`
	Seq        uint64   `json:"seq"`
	LastResort bool     `json:"last_resort,omitempty"`
}

func (r *Relay) createInvite(w http.ResponseWriter, req *http.Request) error {
	var in RelayInviteRequest
	if err := decodeBody(w, req, r.s.opts.MaxBody, &in); err != nil {
		return err
	}
	ctx, id := req.Context(), req.PathValue("id")
	var kp []byte
	var lastResort bool
	var err error
	switch {
	case in.UserID != "" && in.KeyPackage != "":
		return badRequest("bad_request", "give user_id or key_package, not both")
	case in.UserID != "":
		if in.UserID == string(r.p.UserID()) {
			return badRequest("invite_self", "cannot invite yourself")
		}
		if _, err := r.mgr.Channel(ctx, id); err != nil {
			return err
		}
		// One key package per device of the user; the manager invites one
		// (multi-device invites come with the sync engine).
		kps, err := r.rc.ClaimKeyPackages(ctx, identity.UserID(in.UserID))
		if errors.Is(err, relayclient.ErrNotFound) || (err == nil && len(kps) == 0) {
			return notFound("no_key_package", "the relay has no key package for %q", in.UserID)
		}
		if err != nil {
			return relayErr(err)
		}
		kp, lastResort = kps[0].KeyPackage, kps[0].LastResort
	default:
		if kp, err = b64("key_package", in.KeyPackage); err != nil {
			return err
		}
	}
	var tok *channel.InviteToken
	var commit []byte
	got, err := r.commit(ctx, id, func(ctx context.Context) error {
		var err error
		tok, commit, err = r.mgr.CreateInvite(ctx, id, kp)
		return err
	})
	if err != nil {
		return relayErr(err)
	}
	inv, err := tok.MarshalBinary()
	if err != nil {
		return err
	}
	resp := RelayInviteResponse{InviteResponse: InviteResponse{Welcome: enc64(tok.Welcome), RatchetTree: enc64(tok.RatchetTree),
		Commit: enc64(commit), Invite: enc64(inv)}, LastResort: lastResort}
	if got != nil {
		resp.Epoch, resp.Seq, resp.UserIDs = got.oc.Epoch+1, got.seq, identities(got.oc.Added)
		if _, err := r.rc.PostWelcome(ctx, relayclient.Welcome{Recipients: resp.UserIDs, Welcome: tok.Welcome,
			RatchetTree: tok.RatchetTree, GroupID: got.oc.GroupID}); err != nil {
			return relayErr(fmt.Errorf("%w: the commit is in, queueing the Welcome failed: %w", ErrRelay, err))
		}
	}
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

func (r *Relay) join(w http.ResponseWriter, req *http.Request) error {
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	if err := r.s.join(sw, req); err != nil {
		return err
	}
	// Follow whatever was joined.
	if ds, err := r.mgr.Channels(req.Context()); err == nil {
		for _, d := range ds {
			if r.follower(d.ID) == nil {
				if _, err := r.mgr.Epoch(req.Context(), d.ID); err == nil {
					r.follow(d)
				}
			}
		}
	}
	return nil
}

// RelaySendResponse is SendResponse plus the relay's sequence number.
type RelaySendResponse struct {
	SendResponse
	Epoch uint64 `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

func (r *Relay) sendMessage(w http.ResponseWriter, req *http.Request) error {
	var in SendRequest
	if err := decodeBody(w, req, r.s.opts.MaxBody, &in); err != nil {
		return err
	}
	if in.Text == "" {
		return badRequest("missing_field", "text is required")
	}
	if len(in.Text) > MaxTextBytes {
		return &apiError{status: http.StatusRequestEntityTooLarge, code: "text_too_large", msg: "text over 64 KiB"}
	}
	ctx, id := req.Context(), req.PathValue("id")
	d, err := r.mgr.Channel(ctx, id)
	if err != nil {
		return err
	}
	mid, ct, err := r.mgr.SendMessage(ctx, id, in.Text, in.ReplyTo)
	if err != nil {
		return err
	}
	m, err := mls.UnmarshalMessage(ct)
	if err != nil || m.PrivateMessage == nil {
		return fmt.Errorf("node: own ciphertext does not decode: %v", err)
	}
	seq, err := r.rc.PostMessage(ctx, d.GroupID, relayclient.Post{Message: ct, Kind: relayclient.KindApplication, Epoch: m.PrivateMessage.Epoch})
	if err != nil {
		return relayErr(fmt.Errorf("%w: the message is in our history, delivering it failed: %w", ErrRelay, err))
	}
	writeJSON(w, http.StatusCreated, RelaySendResponse{SendResponse: SendResponse{MessageID: mid, Ciphertext: enc64(ct)},
		Epoch: m.PrivateMessage.Epoch, Seq: seq})
	return nil
}

// RelayChatMessage is ChatMessage plus when this node stored it.
type RelayChatMessage struct {
	ChatMessage
	Seq        uint64 `json:"seq"`
	ReceivedAt string `json:"received_at"`
}

// RelayMessagesResponse is the history in relay mode.
type RelayMessagesResponse struct {
	Messages []RelayChatMessage `json:"messages"`
}

func (r *Relay) listMessages(w http.ResponseWriter, req *http.Request) error {
	after, limit, err := historyPage(req)
	if err != nil {
		return err
	}
	msgs, err := r.mgr.History(req.Context(), req.PathValue("id"), after, limit)
	if err != nil {
		return err
	}
	resp := RelayMessagesResponse{Messages: make([]RelayChatMessage, 0, len(msgs))}
	for i := range msgs {
		resp.Messages = append(resp.Messages, relayChat(&msgs[i]))
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func relayChat(m *store.Message) RelayChatMessage {
	return RelayChatMessage{ChatMessage: *chatOf(m), Seq: m.Seq, ReceivedAt: m.ReceivedAt.UTC().Format(time.RFC3339Nano)}
}

func (r *Relay) removeMember(w http.ResponseWriter, req *http.Request) error {
	id, user := req.PathValue("id"), req.PathValue("user_id")
	var commit []byte
	if _, err := r.commit(req.Context(), id, func(ctx context.Context) error {
		var err error
		commit, err = r.mgr.RemoveMember(ctx, id, user)
		return err
	}); err != nil {
		return relayErr(err)
	}
	return r.s.commitResponse(w, req, commit)
}

func (r *Relay) update(w http.ResponseWriter, req *http.Request) error {
	id := req.PathValue("id")
	var commit []byte
	if _, err := r.commit(req.Context(), id, func(ctx context.Context) error {
		var err error
		commit, err = r.mgr.SelfUpdate(ctx, id)
		return err
	}); err != nil {
		return relayErr(err)
	}
	return r.s.commitResponse(w, req, commit)
}

// RelayStatus is GET /v1/relay: the relay and the followed channels.
type RelayStatus struct {
	URL    string `json:"url"`
	UserID string `json:"user_id"`
	// RateLimited counts the relay's 429 answers waited out.
	RateLimited int64                  `json:"rate_limited"`
	Channels    []RelayChannelProgress `json:"channels"`
}

// RelayChannelProgress is how far the node has read a channel's log.
type RelayChannelProgress struct {
	ChannelID string `json:"channel_id"`
	Cursor    uint64 `json:"cursor"`
	Held      int    `json:"held"`
	Done      bool   `json:"done"`
}

func (r *Relay) status(w http.ResponseWriter, req *http.Request) error {
	st := RelayStatus{URL: r.rc.BaseURL(), UserID: string(r.p.UserID()), RateLimited: r.rc.RateLimited(), Channels: []RelayChannelProgress{}}
	r.mu.Lock()
	for id, f := range r.followers {
		f.mu.Lock()
		st.Channels = append(st.Channels, RelayChannelProgress{ChannelID: id, Cursor: f.cursor, Held: len(f.held), Done: f.done})
		f.mu.Unlock()
	}
	r.mu.Unlock()
	sort.Slice(st.Channels, func(i, j int) bool { return st.Channels[i].ChannelID < st.Channels[j].ChannelID })
	writeJSON(w, http.StatusOK, st)
	return nil
}
