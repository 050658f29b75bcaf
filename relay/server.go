// Package relay is the SpacePanda delivery service (RFC 9750 §5): a
// directory of users, their certified devices and key packages, per-group
// ordered logs with exactly one accepted commit per epoch, GroupInfo
// storage, Welcome queues and device-linking mailboxes, over the HTTP
// contract in API.md. It authenticates devices, not names: a login proves
// a device certificate (package identity) whose identity key hashes to the
// user id. It sees only what MLS lets a delivery service see and never
// holds a private key.
//
//	st, _ := relay.OpenSQLite(ctx, dir) // or relay.OpenPostgres(ctx, url)
//	srv := relay.New(st, relay.Options{})
//	defer srv.Close()
//	http.Serve(ln, srv.Handler())
package relay

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/spacepanda/spacepanda/relay/api"
)

// Limits of identifiers and lists.
const (
	MaxUserIDLen  = api.MaxUserIDLen
	MaxGroupIDLen = api.MaxGroupIDLen
	maxList       = 1000
)

// Options tunes a Server; the zero value gives API.md's defaults.
type Options struct {
	// MaxBody is the request body limit (0: api.MaxRequestBody).
	MaxBody int64
	// Rate and Burst are the per-token (and, for unauthenticated
	// requests, per-IP) token bucket (0: 200 per second, burst 400: a
	// node reads each busy channel's log about once per message it
	// receives there, besides its posts; at 50 per second a node sending
	// 30 messages a second in two channels was throttled).
	Rate  float64
	Burst int
	// LinkRate and LinkBurst are the per-IP token bucket of the
	// unauthenticated side of link mailboxes (0: 1 per second, burst 10).
	LinkRate  float64
	LinkBurst int
	// MaxWait caps a long-poll (0: 60 s).
	MaxWait time.Duration
	// ChallengeTTL and TokenTTL (0: 60 s and 24 h; a token never outlives
	// its device certificate).
	ChallengeTTL, TokenTTL time.Duration
	// MaxKeyPackages is the one-time key package quota per device (0: 1000).
	MaxKeyPackages int
	// MaxDevices is the quota of unrevoked devices per user (0:
	// api.MaxDevicesPerUser).
	MaxDevices int
	// Quotas shared by every process on the database (0: the default in
	// parentheses). Key package claims per hour by one claimer (200), of
	// one target user (100) and by one claimer of one target (10).
	ClaimsPerClaimer, ClaimsPerTarget, ClaimsPerPair int
	// NewIdentitiesPerIP is how many new users may log in first from one
	// source address per hour (20).
	NewIdentitiesPerIP int
	// QuotaLoopback counts loopback sources against NewIdentitiesPerIP
	// too (off: a reverse proxy on the same host makes every client
	// loopback, and the relay listens on loopback only for local use).
	QuotaLoopback bool
	// StreamsPerToken is how many event streams one token may hold open
	// (4).
	StreamsPerToken int
	// WelcomeQueue and WelcomeQueueBytes bound a user's queued Welcomes
	// (200; 32 MiB).
	WelcomeQueue      int
	WelcomeQueueBytes int64
	// Retention bounds the group logs (zero: 90 days, and beyond the
	// newest 100,000 entries of a group what every cursor has passed);
	// negative fields disable a bound.
	Retention RetentionPolicy
	// URLs are the base URLs clients may use for this relay (what they
	// sign at login). Empty: the address the connection reached (with
	// "localhost" for a loopback address), never the Host header.
	URLs []string
	// Logger receives server errors (nil: discarded).
	Logger *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Server serves API.md over a Store.
type Server struct {
	st      Store
	o       Options
	hub     *hub
	lim     *limiter
	linkLim *limiter
	m       *metrics
	log     *slog.Logger
	cancel  context.CancelFunc
	done    chan struct{}

	mu       sync.Mutex
	sessions map[[32]byte]Session // cache of valid tokens, dropped on revocation
	// read holds, per (group, user), where the user's last page ended
	// when that page proved its window goes on past it (groups.go).
	read readPositions
}

// New returns a Server over st. If st is a Notifier (PostgreSQL), the
// server listens for other processes' events until Close.
func New(st Store, opts Options) *Server {
	if opts.MaxBody <= 0 {
		opts.MaxBody = api.MaxRequestBody
	}
	if opts.Rate <= 0 {
		opts.Rate = 200
	}
	if opts.Burst <= 0 {
		opts.Burst = 400
	}
	if opts.LinkRate <= 0 {
		opts.LinkRate = 1
	}
	if opts.LinkBurst <= 0 {
		opts.LinkBurst = 10
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 60 * time.Second
	}
	if opts.ChallengeTTL <= 0 {
		opts.ChallengeTTL = 60 * time.Second
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = 24 * time.Hour
	}
	if opts.MaxKeyPackages <= 0 {
		opts.MaxKeyPackages = 1000
	}
	if opts.MaxDevices <= 0 {
		opts.MaxDevices = api.MaxDevicesPerUser
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.ClaimsPerClaimer = orDefault(opts.ClaimsPerClaimer, 200)
	opts.ClaimsPerTarget = orDefault(opts.ClaimsPerTarget, 100)
	opts.ClaimsPerPair = orDefault(opts.ClaimsPerPair, 10)
	opts.NewIdentitiesPerIP = orDefault(opts.NewIdentitiesPerIP, 20)
	opts.StreamsPerToken = orDefault(opts.StreamsPerToken, 4)
	opts.WelcomeQueue = orDefault(opts.WelcomeQueue, 200)
	opts.WelcomeQueueBytes = orDefault(opts.WelcomeQueueBytes, 32<<20)
	if opts.Retention.MaxAge == 0 {
		opts.Retention.MaxAge = 90 * 24 * time.Hour
	}
	if opts.Retention.MaxEntries == 0 {
		opts.Retention.MaxEntries = 100000
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{st: st, o: opts, hub: newHub(), lim: newLimiter(opts.Rate, opts.Burst),
		linkLim: newLimiter(opts.LinkRate, opts.LinkBurst), m: newMetrics(st), log: log,
		cancel: cancel, done: make(chan struct{}), sessions: map[[32]byte]Session{}}
	go func() {
		defer close(s.done)
		var wg sync.WaitGroup
		if n, ok := st.(Notifier); ok {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.Listen(ctx, s.event)
			}()
		}
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				wg.Wait()
				return
			case <-t.C:
				if err := st.Prune(ctx, s.o.Now()); err != nil && ctx.Err() == nil {
					log.Warn("relay: prune", "err", err)
				}
				if n, err := st.Retain(ctx, s.retention(), s.o.Now()); err != nil && ctx.Err() == nil {
					log.Warn("relay: retention", "err", err)
				} else if n > 0 {
					log.Info("relay: retention deleted log entries", "entries", n)
				}
			}
		}
	}()
	return s
}

// Close stops the background work (listener, pruning); it does not close
// the Store.
func (s *Server) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// event handles an event of this process or (PostgreSQL) another: a
// revocation drops the device's cached sessions, a possible loss of
// events drops them all; then waiters are woken.
func (s *Server) event(ev Event) {
	switch {
	case ev.Revoked != nil:
		s.mu.Lock()
		for k, v := range s.sessions {
			if v.UserID == ev.Revoked.UserID && v.DeviceID == ev.Revoked.DeviceID {
				delete(s.sessions, k)
			}
		}
		s.mu.Unlock()
	case ev.GroupID == nil && ev.Recipient == "" && ev.Mailbox == "":
		s.mu.Lock()
		clear(s.sessions)
		s.mu.Unlock()
	}
	s.hub.publish(ev)
}

// Handler returns the HTTP handler of API.md.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/auth/challenge", s.public(s.handleChallenge))
	mux.HandleFunc("POST /v1/auth/login", s.public(s.handleLogin))
	mux.HandleFunc("GET /v1/users/{user_id}/devices", s.authed(s.handleDevices))
	mux.HandleFunc("POST /v1/devices/revocations", s.authed(s.handleRevoke))
	mux.HandleFunc("POST /v1/key-packages", s.authed(s.handlePublish))
	mux.HandleFunc("GET /v1/key-packages/count", s.authed(s.handleCount))
	mux.HandleFunc("POST /v1/key-packages/claim", s.authed(s.handleClaim))
	mux.HandleFunc("POST /v1/groups", s.authed(s.handleCreateGroup))
	mux.HandleFunc("GET /v1/groups/{gid}", s.authed(s.handleGroup))
	mux.HandleFunc("POST /v1/groups/{gid}/messages", s.authed(s.countPost(s.handlePost)))
	mux.HandleFunc("POST /v1/groups/{gid}/messages/batch", s.authed(s.countPost(s.handlePostBatch)))
	mux.HandleFunc("GET /v1/groups/{gid}/messages", s.authed(s.handleMessages))
	mux.HandleFunc("GET /v1/groups/{gid}/cursor", s.authed(s.handleGetCursor))
	mux.HandleFunc("PUT /v1/groups/{gid}/cursor", s.authed(s.handlePutCursor))
	mux.HandleFunc("PUT /v1/groups/{gid}/group-info", s.authed(s.handlePutGroupInfo))
	mux.HandleFunc("GET /v1/groups/{gid}/group-info", s.authed(s.handleGetGroupInfo))
	mux.HandleFunc("GET /v1/groups/{gid}/epochs/{epoch}", s.authed(s.handleEpoch))
	mux.HandleFunc("POST /v1/welcomes", s.authed(s.handlePostWelcome))
	mux.HandleFunc("GET /v1/welcomes", s.authed(s.handleWelcomes))
	mux.HandleFunc("DELETE /v1/welcomes/{id}", s.authed(s.handleDeleteWelcome))
	mux.HandleFunc("PUT /v1/link/{mailbox}", s.authed(s.handleOpenMailbox))
	mux.HandleFunc("DELETE /v1/link/{mailbox}", s.authed(s.handleCloseMailbox))
	mux.HandleFunc("POST /v1/link/{mailbox}/messages", s.handleLinkPost)
	mux.HandleFunc("GET /v1/link/{mailbox}/messages", s.handleLinkMessages)
	mux.HandleFunc("GET /v1/events", s.authed(s.handleEvents))
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", s.m.handler())
	mux.Handle("GET /v1/openapi.json", api.OpenAPIHandler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("relay: panic", "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeError(w, http.StatusInternalServerError, "internal", "internal error")
			}
		}()
		if r.ContentLength > s.o.MaxBody {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", "request body over the limit")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.o.MaxBody)
		mux.ServeHTTP(w, r)
	})
}
