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
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spacepanda/spacepanda/identity"
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
	// requests, per-IP) token bucket (0: 50 per second, burst 200).
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
}

// New returns a Server over st. If st is a Notifier (PostgreSQL), the
// server listens for other processes' events until Close.
func New(st Store, opts Options) *Server {
	if opts.MaxBody <= 0 {
		opts.MaxBody = api.MaxRequestBody
	}
	if opts.Rate <= 0 {
		opts.Rate = 50
	}
	if opts.Burst <= 0 {
		opts.Burst = 200
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
	mux.HandleFunc("GET /v1/groups/{gid}/messages", s.authed(s.handleMessages))
	mux.HandleFunc("GET /v1/groups/{gid}/cursor", s.authed(s.handleGetCursor))
	mux.HandleFunc("PUT /v1/groups/{gid}/cursor", s.authed(s.handlePutCursor))
	mux.HandleFunc("PUT /v1/groups/{gid}/group-info", s.authed(s.handlePutGroupInfo))
	mux.HandleFunc("GET /v1/groups/{gid}/group-info", s.authed(s.handleGetGroupInfo))
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

// --- plumbing ---

type apiError struct {
	status int
	code   string
	msg    string
	epoch  *uint64 // current_epoch of a commit conflict
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// fail writes err: an *apiError as is, store errors by kind, anything
// else as 500 (logged; the message is not shown).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	var qe *quotaErr
	if errors.As(err, &qe) {
		setRetryAfter(w, qe.retry)
	}
	ae := s.apiErr(err)
	if ae.status == http.StatusInternalServerError {
		s.log.Error("relay: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if ae.epoch != nil {
		writeJSON(w, ae.status, map[string]any{"error": map[string]string{"code": ae.code, "message": ae.msg}, "current_epoch": *ae.epoch})
		return
	}
	writeError(w, ae.status, ae.code, ae.msg)
}

// apiErr maps err to its answer.
func (s *Server) apiErr(err error) *apiError {
	var ae *apiError
	var qe *quotaErr
	switch {
	case errors.As(err, &qe):
		ae = qe.apiError
	case errors.As(err, &ae):
	case errors.Is(err, ErrNotFound):
		ae = errf(http.StatusNotFound, "not_found", "%v", err)
	case errors.Is(err, ErrForbidden):
		ae = errf(http.StatusForbidden, "forbidden", "%v", err)
	case errors.Is(err, ErrNotMember):
		ae = errf(http.StatusForbidden, "recipient_not_member", "%v", err)
	case errors.Is(err, ErrRevoked):
		ae = errf(http.StatusForbidden, "device_revoked", "%v", err)
	case errors.Is(err, ErrFutureEpoch):
		ae = errf(http.StatusBadRequest, "future_epoch", "%v", err)
	case errors.Is(err, ErrExists):
		ae = errf(http.StatusConflict, "exists", "%v", err)
	case errors.Is(err, ErrLimit):
		ae = errf(http.StatusConflict, "limit", "%v", err)
	case errors.Is(err, ErrUnknownUser):
		ae = errf(http.StatusNotFound, "unknown_recipient", "%v", err)
	case errors.Is(err, ErrStale):
		ae = errf(http.StatusConflict, "stale_group_info", "%v", err)
	default:
		ae = errf(http.StatusInternalServerError, "internal", "internal error")
	}
	return ae
}

// decode reads exactly one JSON value into v; unknown fields are refused.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errf(http.StatusRequestEntityTooLarge, "too_large", "request body over %d bytes", mbe.Limit)
		}
		return errf(http.StatusBadRequest, "bad_request", "invalid JSON body: %s", oneLine(err.Error()))
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errf(http.StatusRequestEntityTooLarge, "too_large", "request body over %d bytes", mbe.Limit)
		}
		return errf(http.StatusBadRequest, "bad_request", "trailing data after the JSON body")
	}
	return nil
}

// oneLine cuts s to one short line (a JSON error may quote the input).
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// checkMemberIDs checks a list of user ids naming group members: distinct
// canonical user ids (identity.UserID), at most maxList.
func checkMemberIDs(field string, us []string) error {
	if err := checkUserIDs(field, us); err != nil {
		return err
	}
	for _, u := range us {
		if _, err := identity.ParseUserID(u); err != nil {
			return errf(http.StatusBadRequest, "bad_request", "%s: %q is not a user id", field, oneLine(u))
		}
	}
	return nil
}

func checkUserID(field, u string) error {
	if u == "" || len(u) > MaxUserIDLen || !utf8.ValidString(u) || strings.ContainsRune(u, 0) {
		return errf(http.StatusBadRequest, "bad_request", "%s: a user id is 1 to %d bytes of UTF-8 without NUL", field, MaxUserIDLen)
	}
	return nil
}

func checkUserIDs(field string, us []string) error {
	if len(us) > maxList {
		return errf(http.StatusBadRequest, "bad_request", "%s: more than %d user ids", field, maxList)
	}
	seen := make(map[string]bool, len(us))
	for _, u := range us {
		if err := checkUserID(field, u); err != nil {
			return err
		}
		if seen[u] {
			return errf(http.StatusBadRequest, "bad_request", "%s: %q listed twice", field, u)
		}
		seen[u] = true
	}
	return nil
}

func checkGroupID(gid []byte) error {
	if len(gid) == 0 || len(gid) > MaxGroupIDLen {
		return errf(http.StatusBadRequest, "bad_request", "group_id must be 1 to %d bytes", MaxGroupIDLen)
	}
	return nil
}

// pathGroupID decodes {gid}: base64url without padding (the form clients
// should use in a path), or any of standard/URL base64 with or without
// padding ('/' percent-encoded). The alphabets agree where they overlap,
// so the decodings cannot disagree.
func pathGroupID(r *http.Request) ([]byte, error) { return decodePathGroupID(r.PathValue("gid")) }

func decodePathGroupID(p string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if gid, err := enc.Strict().DecodeString(p); err == nil {
			return gid, checkGroupID(gid)
		}
	}
	return nil, errf(http.StatusBadRequest, "bad_request", "group id in the path is not base64")
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) limitedBy(l *limiter, w http.ResponseWriter, key string) bool {
	ok, retry := l.allow(key, s.o.Now())
	if ok {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
	writeError(w, http.StatusTooManyRequests, "rate_limited", "too many requests")
	return true
}

func (s *Server) limited(w http.ResponseWriter, key string) bool { return s.limitedBy(s.lim, w, key) }

func (s *Server) public(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.limited(w, "ip:"+clientIP(r)) {
			return
		}
		if err := h(w, r); err != nil {
			s.fail(w, r, err)
		}
	}
}

// authenticate finds the request's session; when it answers false it has
// written the refusal (401, 429 or a store failure).
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (Session, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		if !s.limited(w, "ip:"+clientIP(r)) {
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing bearer token")
		}
		return Session{}, false
	}
	hash := sha256.Sum256([]byte(tok))
	sess, err := s.session(r.Context(), hash)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			s.fail(w, r, err)
			return Session{}, false
		}
		if !s.limited(w, "ip:"+clientIP(r)) {
			writeError(w, http.StatusUnauthorized, "unauthorized", "unknown, expired or revoked token")
		}
		return Session{}, false
	}
	if s.limited(w, "tok:"+string(hash[:])) {
		return Session{}, false
	}
	return sess, true
}

func (s *Server) authed(h func(w http.ResponseWriter, r *http.Request, sess Session) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, ok := s.authenticate(w, r)
		if !ok {
			return
		}
		if err := h(w, r, sess); err != nil {
			s.fail(w, r, err)
		}
	}
}

// session returns the session of a token hash, from the cache or the
// store. A revocation removes a device's sessions from the store and, by
// its event, from the cache of every process.
func (s *Server) session(ctx context.Context, hash [32]byte) (Session, error) {
	now := s.o.Now()
	s.mu.Lock()
	e, ok := s.sessions[hash]
	s.mu.Unlock()
	if ok && now.Before(e.Expires) {
		return e, nil
	}
	sess, err := s.st.Session(ctx, hash[:], now)
	if err != nil {
		return Session{}, err
	}
	s.mu.Lock()
	if len(s.sessions) >= 100000 {
		for k, v := range s.sessions {
			if !now.Before(v.Expires) {
				delete(s.sessions, k)
			}
		}
		if len(s.sessions) >= 100000 {
			clear(s.sessions)
		}
	}
	s.sessions[hash] = sess
	s.mu.Unlock()
	return sess, nil
}

// waitParam parses ?wait=SECONDS (capped at MaxWait).
func (s *Server) waitParam(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 || math.IsNaN(n) {
		return 0, errf(http.StatusBadRequest, "bad_request", "wait must be a number of seconds >= 0")
	}
	if n*float64(time.Second) >= float64(s.o.MaxWait) {
		return s.o.MaxWait, nil
	}
	return time.Duration(n * float64(time.Second)), nil
}

func intParam(r *http.Request, name string, def, lo, hi int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo {
		return 0, errf(http.StatusBadRequest, "bad_request", "%s must be an integer >= %d", name, lo)
	}
	return min(n, hi), nil
}

// longPoll calls check until it reports something or wait has passed,
// sleeping on the hub key between calls.
func (s *Server) longPoll(ctx context.Context, key string, wait time.Duration, check func() (bool, error)) error {
	var timer <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	for {
		ch, release := s.hub.wait(key)
		found, err := check()
		if err != nil || found || timer == nil {
			release()
			return err
		}
		s.m.polls.Inc()
		select {
		case <-ch:
		case <-timer:
			timer = nil // one last check
		case <-ctx.Done():
			s.m.polls.Dec()
			release()
			return ctx.Err()
		}
		s.m.polls.Dec()
		release()
	}
}
