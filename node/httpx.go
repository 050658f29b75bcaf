package node

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HTTP plumbing: JSON bodies with a size limit, errors as
// {"error":{"code","message"}}, bearer-token authentication, metrics.

// apiError is an error with its HTTP status and snake_case code.
type apiError struct {
	status int
	code   string
	msg    string
	err    error
	// retryAfter, when set, is sent as Retry-After (whole seconds, at
	// least 1): a 429 or 503 the caller should retry.
	retryAfter time.Duration
}

func (e *apiError) Error() string { return e.msg }
func (e *apiError) Unwrap() error { return e.err }

func badRequest(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, msg: fmt.Sprintf(format, args...)}
}

func notFound(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusNotFound, code: code, msg: fmt.Sprintf(format, args...)}
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

// decodeBody reads a JSON body of at most limit bytes into v, strictly:
// unknown fields and trailing data are errors.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{status: http.StatusRequestEntityTooLarge, code: "too_large",
				msg: fmt.Sprintf("request body over %d bytes", limit)}
		}
		if errors.Is(err, io.EOF) {
			return badRequest("bad_request", "empty request body")
		}
		return badRequest("bad_request", "request body is not valid JSON for this endpoint: %v", err)
	}
	if dec.More() {
		return badRequest("bad_request", "trailing data after the JSON body")
	}
	return nil
}

// b64 decodes a standard base64 field.
func b64(field, s string) ([]byte, error) {
	if s == "" {
		return nil, badRequest("bad_request", "%s is required", field)
	}
	v, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, badRequest("bad_request", "%s is not standard base64", field)
	}
	return v, nil
}

func enc64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// metrics are the node's Prometheus collectors.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spacepanda_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "spacepanda_http_request_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"route"}),
	}
	m.reg.MustRegister(m.requests, m.latency,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// statusWriter records the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// instrument wraps a route's handler with auth, metrics and logging.
func (s *Server) instrument(route string, h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		if err := s.authorize(r); err != nil {
			s.fail(sw, r, err)
		} else if err := h(sw, r); err != nil {
			s.fail(sw, r, err)
		}
		s.metrics.requests.WithLabelValues(route, fmt.Sprint(sw.status)).Inc()
		s.metrics.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// authorize checks the bearer token when the node has one.
func (s *Server) authorize(r *http.Request) error {
	if len(s.opts.Token) == 0 {
		return nil
	}
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(tok), s.opts.Token) != 1 {
		return &apiError{status: http.StatusUnauthorized, code: "unauthorized", msg: "a valid bearer token is required"}
	}
	return nil
}

// fail writes err as a JSON error. Messages never carry secrets: engine
// errors name what was wrong, not key material.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	ae := classify(err)
	switch {
	case ae.status == http.StatusInternalServerError:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	case ae.status >= 500:
		// The relay away or failing: the node's log says so, not as its own failure.
		s.log.Warn("request failed on the relay", "method", r.Method, "path", r.URL.Path, "code", ae.code, "err", err)
	default:
		s.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "code", ae.code, "err", err)
	}
	if ae.retryAfter > 0 || ae.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", retryAfterSeconds(ae.retryAfter))
	}
	var body errorBody
	body.Error.Code, body.Error.Message = ae.code, publicMessage(ae.msg)
	writeJSON(w, ae.status, body)
}

// publicMessage makes an error message one line without the package
// prefixes a wrapped error chain repeats ("channel: ", "mls: ", …) and
// without a part said twice in a row: the code says where it comes from.
func publicMessage(msg string) string {
	msg, _, _ = strings.Cut(msg, "\n")
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	parts := strings.Split(strings.ToValidUTF8(msg, "?"), ": ")
	out := parts[:0]
	for _, p := range parts {
		switch p {
		case "channel", "mls", "wire", "provider", "client", "identity", "tree", "suite", "schedule", "store", "relay", "relayclient", "node", "json":
			continue
		}
		if len(out) > 0 && out[len(out)-1] == p {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, ": ")
}

// retryAfterSeconds is d as a Retry-After value: whole seconds, rounded
// up, at least 1 (a 429 without the relay's hint still says when).
func retryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return fmt.Sprint(s)
}
