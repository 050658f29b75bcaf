package relay

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the relay's Prometheus metrics, one registry per Server.
// They are aggregate counts: no user, group or device appears in a label.
type metrics struct {
	reg       *prometheus.Registry
	posts     *prometheus.CounterVec // accepted log entries by kind
	refused   *prometheus.CounterVec // refused posts by error code
	delivered prometheus.Counter     // log entries handed to readers
	welcomes  prometheus.Counter     // Welcomes queued (per recipient)
	streams   prometheus.Gauge       // open event streams
	polls     prometheus.Gauge       // waiting long-polls
	dbLatency *prometheus.HistogramVec
}

func newMetrics(st Store) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		posts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spacepanda_relay_posts_total",
			Help: "Accepted group log entries, by kind."}, []string{"kind"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spacepanda_relay_posts_refused_total",
			Help: "Refused group posts, by error code (commit_conflict: a commit for an epoch already won)."}, []string{"code"}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "spacepanda_relay_deliveries_total",
			Help: "Group log entries returned to readers."}),
		welcomes: prometheus.NewCounter(prometheus.CounterOpts{Name: "spacepanda_relay_welcomes_queued_total",
			Help: "Welcomes queued, one per recipient."}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spacepanda_relay_event_streams",
			Help: "Open event streams (GET /v1/events)."}),
		polls: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spacepanda_relay_long_polls",
			Help: "Requests waiting in a long-poll."}),
		dbLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "spacepanda_relay_db_seconds",
			Help: "Database latency of appends, log reads and health checks.", Buckets: prometheus.ExponentialBuckets(0.0002, 2.5, 12)},
			[]string{"op"}),
	}
	m.reg.MustRegister(m.posts, m.refused, m.delivered, m.welcomes, m.streams, m.polls, m.dbLatency,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	if sz, ok := st.(sizer); ok {
		m.reg.MustRegister(&sizeCollector{st: sz, lat: m.dbLatency.WithLabelValues("sizes")})
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// timed runs fn and observes its duration as op.
func (m *metrics) timed(op string, fn func() error) error {
	start := time.Now()
	err := fn()
	m.dbLatency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	return err
}

// Sizes is what the relay holds, for the metrics.
type Sizes struct {
	Groups, Messages, MessageBytes, Welcomes, WelcomeBytes, KeyPackages, Users, Devices int64
}

// sizer is implemented by stores that can count what they hold.
type sizer interface {
	Sizes(ctx context.Context) (Sizes, error)
}

// sizeCollector reads the sizes at each scrape (bounded by 5 s).
type sizeCollector struct {
	st  sizer
	lat prometheus.Observer
}

var sizeDescs = map[string]*prometheus.Desc{
	"groups":        prometheus.NewDesc("spacepanda_relay_groups", "Registered groups.", nil, nil),
	"messages":      prometheus.NewDesc("spacepanda_relay_log_entries", "Entries in all group logs.", nil, nil),
	"message_bytes": prometheus.NewDesc("spacepanda_relay_log_bytes", "Bytes of message data in all group logs.", nil, nil),
	"welcomes":      prometheus.NewDesc("spacepanda_relay_welcome_queue", "Queued Welcomes.", nil, nil),
	"welcome_bytes": prometheus.NewDesc("spacepanda_relay_welcome_queue_bytes", "Bytes of queued Welcomes and ratchet trees.", nil, nil),
	"key_packages":  prometheus.NewDesc("spacepanda_relay_key_packages", "Stored one-time key packages.", nil, nil),
	"users":         prometheus.NewDesc("spacepanda_relay_users", "Users in the directory.", nil, nil),
	"devices":       prometheus.NewDesc("spacepanda_relay_devices", "Devices in the directory (revoked included).", nil, nil),
	"up":            prometheus.NewDesc("spacepanda_relay_sizes_ok", "1 if the sizes were read at this scrape.", nil, nil),
}

func (c *sizeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range sizeDescs {
		ch <- d
	}
}

func (c *sizeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	sz, err := c.st.Sizes(ctx)
	c.lat.Observe(time.Since(start).Seconds())
	if err != nil {
		ch <- prometheus.MustNewConstMetric(sizeDescs["up"], prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(sizeDescs["up"], prometheus.GaugeValue, 1)
	for k, v := range map[string]int64{"groups": sz.Groups, "messages": sz.Messages, "message_bytes": sz.MessageBytes,
		"welcomes": sz.Welcomes, "welcome_bytes": sz.WelcomeBytes, "key_packages": sz.KeyPackages, "users": sz.Users, "devices": sz.Devices} {
		ch <- prometheus.MustNewConstMetric(sizeDescs[k], prometheus.GaugeValue, float64(v))
	}
}

// pinger is implemented by stores that can check their database.
type pinger interface {
	Ping(ctx context.Context) error
}

// handleHealthz: the process is up (no token, nothing private).
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz: the database answers within 2 s (no token).
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	p, ok := s.st.(pinger)
	if !ok {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "database": "unknown"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.m.timed("ping", func() error { return p.Ping(ctx) }); err != nil {
		s.log.Warn("relay: readiness: database unreachable", "err", err)
		writeError(w, http.StatusServiceUnavailable, "not_ready", "the database does not answer")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "database": "reachable"})
}

// countPost wraps the post handler: an accepted entry is counted by the
// handler, a refusal here by its code.
func (s *Server) countPost(h func(w http.ResponseWriter, r *http.Request, sess Session) error) func(w http.ResponseWriter, r *http.Request, sess Session) error {
	return func(w http.ResponseWriter, r *http.Request, sess Session) error {
		err := h(w, r, sess)
		if err != nil && !(errors.Is(err, context.Canceled) && r.Context().Err() != nil) {
			s.m.refused.WithLabelValues(s.apiErr(err).code).Inc()
		}
		return err
	}
}
