package node

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Cross-site protections (issue 13.9). A node without a token answers only
// requests addressed to a loopback Host and carrying no foreign Origin: a
// web page elsewhere cannot drive it through the user's browser (DNS
// rebinding, CSRF). JSON bodies need Content-Type application/json, which
// a cross-site form cannot send without a preflight.

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sameOrigin: Origin names the Host the request was sent to.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, host)
}

// guard applies the cross-site and content-type rules before any route.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.opts.Token) == 0 {
			origin := r.Header.Get("Origin")
			if !loopbackHost(r.Host) || (origin != "" && !sameOrigin(origin, r.Host)) {
				s.fail(w, r, &apiError{status: http.StatusForbidden, code: "cross_site",
					msg: "without a token the node answers only loopback requests from its own origin"})
				return
			}
		}
		if r.Body != nil && r.ContentLength != 0 && (r.Method == http.MethodPost || r.Method == http.MethodPut) {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				s.fail(w, r, &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
					msg: "request bodies must be Content-Type: application/json"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// open wraps a route that needs no token (health checks): metrics and
// errors as instrument, without authorize.
func (s *Server) open(route string, h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		if err := h(sw, r); err != nil {
			s.fail(sw, r, err)
		}
		s.metrics.requests.WithLabelValues(route, fmt.Sprint(sw.status)).Inc()
		s.metrics.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}
