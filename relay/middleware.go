package relay

import (
	"context"
	"crypto/sha256"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Middleware: rate limits, token authentication and the session cache.

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
