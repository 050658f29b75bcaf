// Package relay is the SpacePanda delivery service (RFC 9750 §5): a key
// package directory, per-group ordered logs with exactly one accepted
// commit per epoch, GroupInfo storage and Welcome queues, over the HTTP
// contract in API.md. It sees only what MLS lets a delivery service see and
// never holds a private key.
//
//	st, _ := relay.OpenSQLite(ctx, dir) // or relay.OpenPostgres(ctx, url)
//	srv := relay.New(st, relay.Options{})
//	defer srv.Close()
//	http.Serve(ln, srv.Handler())
package relay

import (
	"context"
	"crypto/rand"
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

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// LoginLabel is the SignWithLabel label of a login signature.
const LoginLabel = "SpacePanda relay login"

// LoginContent is the content a node signs to log in (API.md):
// struct { opaque relay_url<V>; opaque user_id<V>; opaque challenge<V>; }.
func LoginContent(relayURL, userID string, challenge []byte) []byte {
	b := wire.NewBuilder(len(relayURL) + len(userID) + len(challenge) + 12)
	b.AddOpaque([]byte(strings.TrimSuffix(relayURL, "/")))
	b.AddOpaque([]byte(userID))
	b.AddOpaque(challenge)
	out, _ := b.Bytes() // opaque vectors of in-memory sizes cannot fail
	return out
}

// Limits of identifiers and lists.
const (
	MaxUserIDLen  = 256
	MaxGroupIDLen = 255
	maxList       = 1000
	maxSigKeyLen  = 1024
)

// Options tunes a Server; the zero value gives API.md's defaults.
type Options struct {
	// MaxBody is the request body limit (0: 8 MiB).
	MaxBody int64
	// Rate and Burst are the per-token (and, for unauthenticated
	// requests, per-IP) token bucket (0: 50 per second, burst 200).
	Rate  float64
	Burst int
	// MaxWait caps a long-poll (0: 60 s).
	MaxWait time.Duration
	// ChallengeTTL and TokenTTL (0: 60 s and 24 h).
	ChallengeTTL, TokenTTL time.Duration
	// MaxKeyPackages is the one-time key package quota per user (0: 1000).
	MaxKeyPackages int
	// URLs are the base URLs clients may use for this relay (what they
	// sign at login). Empty: the URL the request came to, scheme and Host.
	URLs []string
	// Logger receives server errors (nil: discarded).
	Logger *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Server serves API.md over a Store.
type Server struct {
	st     Store
	o      Options
	hub    *hub
	lim    *limiter
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	tokens map[[32]byte]tokenEntry // cache of valid tokens (never revoked)
}

type tokenEntry struct {
	user    string
	expires time.Time
}

// New returns a Server over st. If st is a Notifier (PostgreSQL), the
// server listens for other processes' events until Close.
func New(st Store, opts Options) *Server {
	if opts.MaxBody <= 0 {
		opts.MaxBody = 8 << 20
	}
	if opts.Rate <= 0 {
		opts.Rate = 50
	}
	if opts.Burst <= 0 {
		opts.Burst = 200
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
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{st: st, o: opts, hub: newHub(), lim: newLimiter(opts.Rate, opts.Burst), log: log,
		cancel: cancel, done: make(chan struct{}), tokens: map[[32]byte]tokenEntry{}}
	go func() {
		defer close(s.done)
		var wg sync.WaitGroup
		if n, ok := st.(Notifier); ok {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.Listen(ctx, s.hub.publish)
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

// Handler returns the HTTP handler of API.md.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/auth/challenge", s.public(s.handleChallenge))
	mux.HandleFunc("POST /v1/auth/login", s.public(s.handleLogin))
	mux.HandleFunc("POST /v1/key-packages", s.authed(s.handlePublish))
	mux.HandleFunc("GET /v1/key-packages/count", s.authed(s.handleCount))
	mux.HandleFunc("POST /v1/key-packages/claim", s.authed(s.handleClaim))
	mux.HandleFunc("POST /v1/groups", s.authed(s.handleCreateGroup))
	mux.HandleFunc("GET /v1/groups/{gid}", s.authed(s.handleGroup))
	mux.HandleFunc("POST /v1/groups/{gid}/messages", s.authed(s.handlePost))
	mux.HandleFunc("GET /v1/groups/{gid}/messages", s.authed(s.handleMessages))
	mux.HandleFunc("GET /v1/groups/{gid}/cursor", s.authed(s.handleGetCursor))
	mux.HandleFunc("PUT /v1/groups/{gid}/cursor", s.authed(s.handlePutCursor))
	mux.HandleFunc("PUT /v1/groups/{gid}/group-info", s.authed(s.handlePutGroupInfo))
	mux.HandleFunc("GET /v1/groups/{gid}/group-info", s.authed(s.handleGetGroupInfo))
	mux.HandleFunc("POST /v1/welcomes", s.authed(s.handlePostWelcome))
	mux.HandleFunc("GET /v1/welcomes", s.authed(s.handleWelcomes))
	mux.HandleFunc("DELETE /v1/welcomes/{id}", s.authed(s.handleDeleteWelcome))
	mux.HandleFunc("GET /v1/events", s.authed(s.handleEvents))
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
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, ErrNotFound):
		ae = errf(http.StatusNotFound, "not_found", "%v", err)
	case errors.Is(err, ErrForbidden):
		ae = errf(http.StatusForbidden, "forbidden", "%v", err)
	case errors.Is(err, ErrExists):
		ae = errf(http.StatusConflict, "exists", "%v", err)
	case errors.Is(err, ErrKeyMismatch):
		ae = errf(http.StatusForbidden, "key_mismatch", "%v", err)
	case errors.Is(err, ErrLimit):
		ae = errf(http.StatusConflict, "key_package_limit", "%v", err)
	case errors.Is(err, ErrStale):
		ae = errf(http.StatusConflict, "stale_group_info", "%v", err)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the client went away
	default:
		s.log.Error("relay: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = errf(http.StatusInternalServerError, "internal", "internal error")
	}
	if ae.epoch != nil {
		writeJSON(w, ae.status, map[string]any{"error": map[string]string{"code": ae.code, "message": ae.msg}, "current_epoch": *ae.epoch})
		return
	}
	writeError(w, ae.status, ae.code, ae.msg)
}

// decode reads exactly one JSON value into v.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errf(http.StatusRequestEntityTooLarge, "too_large", "request body over %d bytes", mbe.Limit)
		}
		return errf(http.StatusBadRequest, "bad_request", "invalid JSON body: %v", err)
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

func (s *Server) limited(w http.ResponseWriter, key string) bool {
	ok, retry := s.lim.allow(key, s.o.Now())
	if ok {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
	writeError(w, http.StatusTooManyRequests, "rate_limited", "too many requests")
	return true
}

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

func (s *Server) authed(h func(w http.ResponseWriter, r *http.Request, user string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			if !s.limited(w, "ip:"+clientIP(r)) {
				writeError(w, http.StatusUnauthorized, "unauthorized", "missing bearer token")
			}
			return
		}
		hash := sha256.Sum256([]byte(tok))
		user, err := s.tokenUser(r.Context(), hash)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				s.fail(w, r, err)
				return
			}
			if !s.limited(w, "ip:"+clientIP(r)) {
				writeError(w, http.StatusUnauthorized, "unauthorized", "unknown or expired token")
			}
			return
		}
		if s.limited(w, "tok:"+string(hash[:])) {
			return
		}
		if err := h(w, r, user); err != nil {
			s.fail(w, r, err)
		}
	}
}

func (s *Server) tokenUser(ctx context.Context, hash [32]byte) (string, error) {
	now := s.o.Now()
	s.mu.Lock()
	e, ok := s.tokens[hash]
	s.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.user, nil
	}
	user, exp, err := s.st.TokenUser(ctx, hash[:], now)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if len(s.tokens) >= 100000 {
		for k, v := range s.tokens {
			if !now.Before(v.expires) {
				delete(s.tokens, k)
			}
		}
		if len(s.tokens) >= 100000 {
			clear(s.tokens)
		}
	}
	s.tokens[hash] = tokenEntry{user: user, expires: exp}
	s.mu.Unlock()
	return user, nil
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
		select {
		case <-ch:
		case <-timer:
			timer = nil // one last check
		case <-ctx.Done():
			release()
			return ctx.Err()
		}
		release()
	}
}

// --- authentication ---

type challengeReq struct {
	UserID       string `json:"user_id"`
	SignatureKey []byte `json:"signature_key"`
	Ciphersuite  uint16 `json:"ciphersuite"`
}

func (q *challengeReq) check() (*suite.Suite, error) {
	if err := checkUserID("user_id", q.UserID); err != nil {
		return nil, err
	}
	if len(q.SignatureKey) == 0 || len(q.SignatureKey) > maxSigKeyLen {
		return nil, errf(http.StatusBadRequest, "bad_request", "signature_key missing or too long")
	}
	cs, err := suite.New(suite.ID(q.Ciphersuite))
	if err != nil {
		return nil, errf(http.StatusBadRequest, "bad_request", "unsupported ciphersuite %d", q.Ciphersuite)
	}
	return cs, nil
}

func (s *Server) handleChallenge(w http.ResponseWriter, r *http.Request) error {
	var q challengeReq
	if err := decode(r, &q); err != nil {
		return err
	}
	if _, err := q.check(); err != nil {
		return err
	}
	key, err := s.st.IdentityKey(r.Context(), q.UserID)
	if err == nil && string(key) != string(q.SignatureKey) {
		return errf(http.StatusForbidden, "key_mismatch", "user id %q is bound to another signature key", q.UserID)
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	c := Challenge{Challenge: make([]byte, 32), UserID: q.UserID, SignatureKey: q.SignatureKey,
		Suite: q.Ciphersuite, Expires: s.o.Now().Add(s.o.ChallengeTTL)}
	rand.Read(c.Challenge)
	if err := s.st.PutChallenge(r.Context(), c); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"challenge": c.Challenge, "expires_at": c.Expires.UTC().Format(time.RFC3339)})
	return nil
}

func (s *Server) relayURLs(r *http.Request) []string {
	if len(s.o.URLs) > 0 {
		return s.o.URLs
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return []string{scheme + "://" + r.Host}
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	var q struct {
		challengeReq
		Challenge []byte `json:"challenge"`
		Signature []byte `json:"signature"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	cs, err := q.check()
	if err != nil {
		return err
	}
	if len(q.Challenge) == 0 || len(q.Challenge) > 64 || len(q.Signature) == 0 || len(q.Signature) > 1024 {
		return errf(http.StatusBadRequest, "bad_request", "challenge and signature are required")
	}
	now := s.o.Now()
	c, err := s.st.TakeChallenge(r.Context(), q.Challenge, now)
	if errors.Is(err, ErrNotFound) {
		return errf(http.StatusUnauthorized, "bad_challenge", "unknown, used or expired challenge")
	} else if err != nil {
		return err
	}
	if c.UserID != q.UserID || string(c.SignatureKey) != string(q.SignatureKey) || c.Suite != q.Ciphersuite {
		return errf(http.StatusUnauthorized, "bad_challenge", "the challenge was issued for another identity")
	}
	ok := false
	for _, u := range s.relayURLs(r) {
		if cs.VerifyWithLabel(q.SignatureKey, LoginLabel, LoginContent(u, q.UserID, q.Challenge), q.Signature) == nil {
			ok = true
			break
		}
	}
	if !ok {
		return errf(http.StatusUnauthorized, "bad_signature", "the signature does not verify")
	}
	if err := s.st.BindIdentity(r.Context(), q.UserID, q.SignatureKey, q.Ciphersuite, now); err != nil {
		return err
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	tok := base64.RawURLEncoding.EncodeToString(raw)
	hash := sha256.Sum256([]byte(tok))
	exp := now.Add(s.o.TokenTTL)
	if err := s.st.PutToken(r.Context(), hash[:], q.UserID, exp); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "expires_at": exp.UTC().Format(time.RFC3339)})
	return nil
}

// --- key package directory ---

// checkKeyPackage decodes an MLSMessage(KeyPackage), validates it (RFC 9420
// §10.1, including its signature) and checks it is the caller's own.
func (s *Server) checkKeyPackage(data []byte, user string, key []byte, now time.Time) (KeyPackage, error) {
	m, err := mls.UnmarshalMLSMessage(data)
	if err != nil || m.WireFormat != mls.WireFormatKeyPackage {
		return KeyPackage{}, errf(http.StatusBadRequest, "invalid_key_package", "not an MLSMessage(KeyPackage)")
	}
	kp := m.KeyPackage
	cs, err := suite.New(kp.CipherSuite)
	if err != nil {
		return KeyPackage{}, errf(http.StatusBadRequest, "invalid_key_package", "unsupported cipher suite")
	}
	if err := mls.ValidateKeyPackage(cs, kp, now, mls.ValidateOptions{}); err != nil {
		return KeyPackage{}, errf(http.StatusBadRequest, "invalid_key_package", "%v", err)
	}
	cred := kp.LeafNode.Credential
	if cred.CredentialType != tree.CredentialTypeBasic || string(cred.Identity) != user || string(kp.LeafNode.SignatureKey) != string(key) {
		return KeyPackage{}, errf(http.StatusForbidden, "foreign_key_package", "a key package must carry the caller's identity and signature key")
	}
	ref, err := kp.Ref(cs)
	if err != nil {
		return KeyPackage{}, errf(http.StatusBadRequest, "invalid_key_package", "%v", err)
	}
	return KeyPackage{Ref: ref, Data: data}, nil
}

func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request, user string) error {
	var q struct {
		KeyPackages [][]byte `json:"key_packages"`
		LastResort  []byte   `json:"last_resort"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	if len(q.KeyPackages) > s.o.MaxKeyPackages {
		return errf(http.StatusBadRequest, "bad_request", "more than %d key packages", s.o.MaxKeyPackages)
	}
	if len(q.KeyPackages) == 0 && q.LastResort == nil {
		return errf(http.StatusBadRequest, "bad_request", "no key packages")
	}
	key, err := s.st.IdentityKey(r.Context(), user)
	if err != nil {
		return err
	}
	now := s.o.Now()
	kps := make([]KeyPackage, 0, len(q.KeyPackages))
	seen := map[string]bool{}
	for _, d := range q.KeyPackages {
		kp, err := s.checkKeyPackage(d, user, key, now)
		if err != nil {
			return err
		}
		if seen[string(kp.Ref)] {
			return errf(http.StatusConflict, "key_package_exists", "the same key package twice")
		}
		seen[string(kp.Ref)] = true
		kps = append(kps, kp)
	}
	var lr *KeyPackage
	if q.LastResort != nil {
		kp, err := s.checkKeyPackage(q.LastResort, user, key, now)
		if err != nil {
			return err
		}
		if seen[string(kp.Ref)] {
			return errf(http.StatusConflict, "key_package_exists", "the last-resort key package is also a one-time one")
		}
		lr = &kp
	}
	if err := s.st.AddKeyPackages(r.Context(), user, kps, lr, s.o.MaxKeyPackages, now); err != nil {
		if errors.Is(err, ErrExists) {
			return errf(http.StatusConflict, "key_package_exists", "%v", err)
		}
		return err
	}
	n := len(kps)
	if lr != nil {
		n++
	}
	writeJSON(w, http.StatusOK, map[string]int{"stored": n})
	return nil
}

func (s *Server) handleCount(w http.ResponseWriter, r *http.Request, user string) error {
	n, lr, err := s.st.CountKeyPackages(r.Context(), user)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"available": n, "last_resort": lr})
	return nil
}

func (s *Server) handleClaim(w http.ResponseWriter, r *http.Request, user string) error {
	var q struct {
		UserID string `json:"user_id"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	if err := checkUserID("user_id", q.UserID); err != nil {
		return err
	}
	data, lr, err := s.st.ClaimKeyPackage(r.Context(), q.UserID)
	if errors.Is(err, ErrNotFound) {
		return errf(http.StatusNotFound, "no_key_package", "no key package for %q", q.UserID)
	} else if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"key_package": data, "last_resort": lr})
	return nil
}

// --- groups ---

func (s *Server) handleCreateGroup(w http.ResponseWriter, r *http.Request, user string) error {
	var q struct {
		GroupID []byte `json:"group_id"`
		Epoch   uint64 `json:"epoch"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	if err := checkGroupID(q.GroupID); err != nil {
		return err
	}
	if q.Epoch > math.MaxInt64 {
		return errf(http.StatusBadRequest, "bad_request", "epoch out of range")
	}
	if err := s.st.CreateGroup(r.Context(), q.GroupID, user, q.Epoch, s.o.Now()); err != nil {
		if errors.Is(err, ErrExists) {
			return errf(http.StatusConflict, "group_exists", "the group is already registered")
		}
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"group_id": q.GroupID, "epoch": q.Epoch})
	return nil
}

// member checks user is a current reader of gid.
func (s *Server) member(ctx context.Context, gid []byte, user string) (Access, error) {
	a, err := s.st.Access(ctx, gid, user)
	if err != nil {
		return a, err
	}
	if a.Removed {
		return a, errf(http.StatusForbidden, "forbidden", "removed from the group")
	}
	return a, nil
}

func (s *Server) handleGroup(w http.ResponseWriter, r *http.Request, user string) error {
	gid, err := pathGroupID(r)
	if err != nil {
		return err
	}
	if _, err := s.member(r.Context(), gid, user); err != nil {
		return err
	}
	g, err := s.st.Group(r.Context(), gid)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"group_id": g.GroupID, "epoch": g.Epoch, "members": g.Members, "last_seq": g.LastSeq})
	return nil
}

var kinds = map[string]mls.ContentType{
	"application": mls.ContentTypeApplication,
	"proposal":    mls.ContentTypeProposal,
	"commit":      mls.ContentTypeCommit,
}

// checkFraming checks what the relay can see of a handshake or application
// message against the request: a PublicMessage or PrivateMessage of this
// group, sent in epoch, of the content type kind (RFC 9420 §6; RFC 9750
// §5.2: the DS may order by epoch and content_type).
func checkFraming(data, gid []byte, kind string, epoch uint64) error {
	ct, ok := kinds[kind]
	if !ok {
		return errf(http.StatusBadRequest, "bad_request", "kind must be commit, proposal or application")
	}
	m, err := mls.UnmarshalMLSMessage(data)
	if err != nil {
		return errf(http.StatusBadRequest, "invalid_message", "not an MLSMessage")
	}
	var mgid []byte
	var mepoch uint64
	var mct mls.ContentType
	switch m.WireFormat {
	case mls.WireFormatPublicMessage:
		c := &m.PublicMessage.Content
		mgid, mepoch, mct = c.GroupID, c.Epoch, c.ContentType
	case mls.WireFormatPrivateMessage:
		p := m.PrivateMessage
		mgid, mepoch, mct = p.GroupID, p.Epoch, p.ContentType
	default:
		return errf(http.StatusBadRequest, "invalid_message", "a group message must be a PublicMessage or PrivateMessage")
	}
	if string(mgid) != string(gid) {
		return errf(http.StatusBadRequest, "invalid_message", "the message is for another group")
	}
	if mepoch != epoch {
		return errf(http.StatusBadRequest, "invalid_message", "epoch %d does not match the message's epoch %d", epoch, mepoch)
	}
	if mct != ct {
		return errf(http.StatusBadRequest, "invalid_message", "kind %s does not match the message's content type %v", kind, mct)
	}
	return nil
}

func (s *Server) handlePost(w http.ResponseWriter, r *http.Request, user string) error {
	gid, err := pathGroupID(r)
	if err != nil {
		return err
	}
	var q struct {
		Message []byte   `json:"message"`
		Kind    string   `json:"kind"`
		Epoch   uint64   `json:"epoch"`
		Added   []string `json:"added"`
		Removed []string `json:"removed"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	if q.Epoch > math.MaxInt64 {
		return errf(http.StatusBadRequest, "bad_request", "epoch out of range")
	}
	if err := checkFraming(q.Message, gid, q.Kind, q.Epoch); err != nil {
		return err
	}
	if q.Kind != "commit" && (len(q.Added) > 0 || len(q.Removed) > 0) {
		return errf(http.StatusBadRequest, "bad_request", "added and removed belong to commits")
	}
	if err := checkUserIDs("added", q.Added); err != nil {
		return err
	}
	if err := checkUserIDs("removed", q.Removed); err != nil {
		return err
	}
	for _, a := range q.Added {
		for _, rm := range q.Removed {
			if a == rm {
				return errf(http.StatusBadRequest, "bad_request", "%q is both added and removed", a)
			}
		}
	}
	m := Message{GroupID: gid, Kind: q.Kind, Epoch: q.Epoch, Sender: user, Data: q.Message,
		ReceivedAt: s.o.Now(), Added: q.Added, Removed: q.Removed}
	seq, cur, err := s.st.Append(r.Context(), m)
	if errors.Is(err, ErrCommitConflict) {
		ae := errf(http.StatusConflict, "commit_conflict", "%v", err)
		ae.epoch = &cur
		return ae
	} else if err != nil {
		return err
	}
	s.hub.publish(Event{GroupID: gid, Seq: seq})
	writeJSON(w, http.StatusOK, map[string]int64{"seq": seq})
	return nil
}

type messageJSON struct {
	Seq        int64  `json:"seq"`
	Message    []byte `json:"message"`
	Kind       string `json:"kind"`
	Epoch      uint64 `json:"epoch"`
	Sender     string `json:"sender"`
	ReceivedAt string `json:"received_at"`
}

func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request, user string) error {
	gid, err := pathGroupID(r)
	if err != nil {
		return err
	}
	after, err := intParam(r, "after", 0, 0, math.MaxInt64)
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	wait, err := s.waitParam(r)
	if err != nil {
		return err
	}
	a, err := s.st.Access(r.Context(), gid, user)
	if err != nil {
		return err
	}
	if a.Removed && after >= a.ToSeq {
		return errf(http.StatusForbidden, "forbidden", "removed from the group")
	}
	var msgs []Message
	err = s.longPoll(r.Context(), groupKey(gid), wait, func() (bool, error) {
		var err error
		msgs, err = s.st.Messages(r.Context(), gid, user, after, int(limit))
		return len(msgs) > 0, err
	})
	if err != nil {
		return err
	}
	out := make([]messageJSON, len(msgs))
	next := after
	for i, m := range msgs {
		out[i] = messageJSON{Seq: m.Seq, Message: m.Data, Kind: m.Kind, Epoch: m.Epoch, Sender: m.Sender,
			ReceivedAt: m.ReceivedAt.UTC().Format(time.RFC3339Nano)}
		next = m.Seq
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": out, "next": next})
	return nil
}

func (s *Server) handleGetCursor(w http.ResponseWriter, r *http.Request, user string) error {
	gid, err := pathGroupID(r)
	if err != nil {
		return err
	}
	if _, err := s.st.Access(r.Context(), gid, user); err != nil {
		return err
	}
	after, err := s.st.Cursor(r.Context(), gid, user)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int64{"after": after})
	return nil
}

func (s *Server) handlePutCursor(w http.ResponseWriter, r *http.Request, user string) error {
	gid, err := pathGroupID(r)
	if err != nil {
		return err
	}
	var q struct {
		After *int64 `json:"after"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	if q.After == nil || *q.After < 0 {
		return errf(http.StatusBadRequest, "bad_request", "after must be an integer >= 0")
	}
	if _, err := s.st.Access(r.Context(), gid, user); err != nil {
		return err
	}
	if err := s.st.SetCursor(r.Context(), gid, user, *q.After); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int64{"after": *q.After})
	return nil
}

func (s *Server) handlePutGroupInfo(w http.ResponseWriter, r *http.Request, user string) error {
	gid, err := pathGroupID(r)
	if err != nil {
		return err
	}
	var q struct {
		GroupInfo []byte `json:"group_info"`
		Epoch     uint64 `json:"epoch"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	m, err := mls.UnmarshalMLSMessage(q.GroupInfo)
	if err != nil || m.WireFormat != mls.WireFormatGroupInfo {
		return errf(http.StatusBadRequest, "invalid_group_info", "not an MLSMessage(GroupInfo)")
	}
	gc := &m.GroupInfo.GroupContext
	if string(gc.GroupID) != string(gid) || gc.Epoch != q.Epoch {
		return errf(http.StatusBadRequest, "invalid_group_info", "the GroupInfo is for another group or epoch")
	}
	if _, err := s.member(r.Context(), gid, user); err != nil {
		return err
	}
	if err := s.st.PutGroupInfo(r.Context(), gid, q.GroupInfo, q.Epoch); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"epoch": q.Epoch})
	return nil
}

func (s *Server) handleGetGroupInfo(w http.ResponseWriter, r *http.Request, user string) error {
	gid, err := pathGroupID(r)
	if err != nil {
		return err
	}
	if _, err := s.member(r.Context(), gid, user); err != nil {
		return err
	}
	gi, epoch, err := s.st.GroupInfo(r.Context(), gid)
	if errors.Is(err, ErrNotFound) {
		return errf(http.StatusNotFound, "no_group_info", "no GroupInfo posted yet")
	} else if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"group_info": gi, "epoch": epoch})
	return nil
}

// --- welcomes ---

func (s *Server) handlePostWelcome(w http.ResponseWriter, r *http.Request, user string) error {
	var q struct {
		Recipients  []string `json:"recipients"`
		Welcome     []byte   `json:"welcome"`
		RatchetTree []byte   `json:"ratchet_tree"`
		GroupID     []byte   `json:"group_id"`
		Invite      []byte   `json:"invite"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	if len(q.Recipients) == 0 {
		return errf(http.StatusBadRequest, "bad_request", "no recipients")
	}
	if err := checkUserIDs("recipients", q.Recipients); err != nil {
		return err
	}
	if err := checkGroupID(q.GroupID); err != nil {
		return err
	}
	if m, err := mls.UnmarshalMLSMessage(q.Welcome); err != nil || m.WireFormat != mls.WireFormatWelcome {
		return errf(http.StatusBadRequest, "invalid_welcome", "not an MLSMessage(Welcome)")
	}
	if _, err := s.member(r.Context(), q.GroupID, user); err != nil {
		return err
	}
	wl := Welcome{Sender: user, GroupID: q.GroupID, Welcome: q.Welcome, RatchetTree: q.RatchetTree, Invite: q.Invite, CreatedAt: s.o.Now()}
	ids, err := s.st.AddWelcome(r.Context(), wl, q.Recipients)
	if err != nil {
		return err
	}
	for i, rc := range q.Recipients {
		s.hub.publish(Event{Recipient: rc, WelcomeID: ids[i]})
	}
	writeJSON(w, http.StatusOK, map[string]any{"ids": ids})
	return nil
}

type welcomeJSON struct {
	ID          int64  `json:"id"`
	Welcome     []byte `json:"welcome"`
	RatchetTree []byte `json:"ratchet_tree"`
	GroupID     []byte `json:"group_id"`
	Invite      []byte `json:"invite"`
	From        string `json:"from"`
}

func (s *Server) handleWelcomes(w http.ResponseWriter, r *http.Request, user string) error {
	wait, err := s.waitParam(r)
	if err != nil {
		return err
	}
	var ws []Welcome
	err = s.longPoll(r.Context(), welcomeKey(user), wait, func() (bool, error) {
		var err error
		ws, err = s.st.Welcomes(r.Context(), user, 100)
		return len(ws) > 0, err
	})
	if err != nil {
		return err
	}
	out := make([]welcomeJSON, len(ws))
	for i, wl := range ws {
		out[i] = welcomeJSON{ID: wl.ID, Welcome: wl.Welcome, RatchetTree: wl.RatchetTree, GroupID: wl.GroupID, Invite: wl.Invite, From: wl.Sender}
	}
	writeJSON(w, http.StatusOK, map[string]any{"welcomes": out})
	return nil
}

func (s *Server) handleDeleteWelcome(w http.ResponseWriter, r *http.Request, user string) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return errf(http.StatusBadRequest, "bad_request", "welcome id must be a positive integer")
	}
	if err := s.st.DeleteWelcome(r.Context(), user, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- server-sent events ---

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, user string) error {
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's WriteTimeout
	sub, cancel := s.hub.subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, ": spacepanda relay events\n\n")
	if err := rc.Flush(); err != nil {
		return nil
	}
	send := func(event string, v any) error {
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	// On PostgreSQL an event arrives twice (this process's own publish and
	// its NOTIFY echo): send each group's seq once.
	sent := map[string]int64{}
	heartbeat := time.NewTicker(25 * time.Second)
	defer heartbeat.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return nil
		case <-heartbeat.C:
			_, err = io.WriteString(w, ": keep-alive\n\n")
			if err == nil {
				err = rc.Flush()
			}
		case ev := <-sub:
			switch {
			case ev.Recipient != "":
				if ev.Recipient == user {
					err = send("welcome", map[string]int64{"id": ev.WelcomeID})
				}
			case ev.GroupID != nil:
				a, aerr := s.st.Access(r.Context(), ev.GroupID, user)
				if aerr == nil && ev.Seq >= a.FromSeq && (!a.Removed || ev.Seq <= a.ToSeq) && ev.Seq > sent[string(ev.GroupID)] {
					if len(sent) > 10000 {
						clear(sent)
					}
					sent[string(ev.GroupID)] = ev.Seq
					err = send("message", map[string]any{"group_id": ev.GroupID, "seq": ev.Seq})
				}
			default:
				// Events may have been lost: the client re-reads its groups
				// and welcomes.
				err = send("resync", map[string]any{})
			}
		}
		if err != nil {
			return nil
		}
	}
}
