package relay

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"
)

// Abuse limits beyond the per-token request rate. Their counters are in
// the Store (the database), so that relay processes sharing a PostgreSQL
// database enforce them together. Each refusal is a 429 with a code
// naming the quota and Retry-After, or a 413 for bytes.

func orDefault[T int | int64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// retention is Options.Retention with disabled (negative) bounds zeroed.
func (s *Server) retention() RetentionPolicy {
	p := s.o.Retention
	p.MaxAge = max(p.MaxAge, 0)
	p.MaxEntries = max(p.MaxEntries, 0)
	return p
}

// quotaErr is a 429 refusal with Retry-After until end.
type quotaErr struct {
	*apiError
	retry time.Duration
}

// take counts one use of key (limit per hour) and refuses over it.
func (s *Server) take(r *http.Request, key string, limit int, code, what string) error {
	now := s.o.Now()
	ok, end, err := s.st.Take(r.Context(), key, limit, time.Hour, now)
	if err != nil {
		return err
	}
	if !ok {
		return &quotaErr{apiError: errf(http.StatusTooManyRequests, code, "%s: at most %d per hour", what, limit), retry: end.Sub(now)}
	}
	return nil
}

func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(d.Seconds())))))
}

// claimQuota: per claimer, per target, per pair.
func (s *Server) claimQuota(r *http.Request, claimer, target string) error {
	if err := s.take(r, "claim:by:"+claimer, s.o.ClaimsPerClaimer, "claim_quota", "key package claims by this user"); err != nil {
		return err
	}
	if err := s.take(r, "claim:pair:"+claimer+" "+target, s.o.ClaimsPerPair, "claim_quota", "key package claims of this user by you"); err != nil {
		return err
	}
	return s.take(r, "claim:of:"+target, s.o.ClaimsPerTarget, "claim_quota", "key package claims of this user")
}

// identityQuota: a first login of a user the directory does not know
// counts against its source address.
func (s *Server) identityQuota(r *http.Request, userID string) error {
	ip := clientIP(r)
	if a, err := netip.ParseAddr(ip); err == nil && a.IsLoopback() && !s.o.QuotaLoopback {
		// Behind a reverse proxy on the same host every client is
		// loopback: counting it would be one limit for everybody.
		return nil
	}
	known, err := s.st.KnownUser(r.Context(), userID)
	if err != nil || known {
		return err
	}
	return s.take(r, "ident:"+ip, s.o.NewIdentitiesPerIP, "identity_quota", "new identities from this address")
}

// welcomeQuota: each recipient's queue, in count and bytes, with this
// Welcome added.
func (s *Server) welcomeQuota(r *http.Request, recipients []string, size int64) error {
	for _, rc := range recipients {
		n, b, err := s.st.WelcomeQueue(r.Context(), rc)
		if err != nil {
			return err
		}
		if n+1 > int64(s.o.WelcomeQueue) {
			return &quotaErr{apiError: errf(http.StatusTooManyRequests, "welcome_queue_full", "the recipient has %d Welcomes queued (at most %d)", n, s.o.WelcomeQueue), retry: time.Minute}
		}
		if b+size > s.o.WelcomeQueueBytes {
			return errf(http.StatusRequestEntityTooLarge, "welcome_queue_too_large", "the recipient's Welcome queue would exceed %d bytes", s.o.WelcomeQueueBytes)
		}
	}
	return nil
}
