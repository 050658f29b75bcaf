// Package loadtest drives a relay (and, end to end, nodes) on loopback
// and measures what it sustains: accepted posts per second, deliveries
// per second and delivery latency. It is the logic of `spacepanda
// loadtest`; every run is bounded by its duration.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Config is one run.
type Config struct {
	// RelayOnly posts straight to a relay started in this process;
	// otherwise nodes (`Exe serve --relay`) are started and messages go
	// through their HTTP API.
	RelayOnly bool
	// Postgres is the relay's database URL ("": SQLite in a temp dir).
	Postgres string
	// Clients is the number of concurrent posting clients (relay-only) or
	// nodes (end to end).
	Clients int
	// Channels (end to end) is the number of channels; each has Members
	// nodes.
	Channels, Members int
	// Duration bounds the measured phase.
	Duration time.Duration
	// Rate is the offered load in messages per second over all clients (0:
	// each client posts as fast as it is answered).
	Rate float64
	// Exe is the spacepanda binary (end to end; it runs the relay and the
	// nodes).
	Exe string
	// Dir holds the run's data (a temporary directory if empty).
	Dir string
	// ProfileDir receives CPU profiles: end to end of the relay and of
	// every node (relay.pprof, n0.pprof, ...), written at their shutdown,
	// with execution traces of the relay and n0; relay-only of this
	// process (relay.pprof).
	ProfileDir string
	// NodeProcs (end to end) is the GOMAXPROCS of every node process (0:
	// Go's default, one per CPU). The nodes stand for devices, each on a
	// machine of its own in life; here twenty of them share the relay's
	// CPUs, and with a P per CPU each wakes threads on every core for a
	// message's few milliseconds of work, so that the scheduler, not the
	// relay, sets the latency. The relay keeps Go's default: it is the
	// service under test.
	NodeProcs int
	// Progress receives a progress line every second (nil: none).
	Progress io.Writer
}

// Result is what a run measured. Latencies are from the start of a send
// to its arrival at a reader.
type Result struct {
	Mode       string  `json:"mode"`    // "relay-only" or "end-to-end"
	Backend    string  `json:"backend"` // "sqlite" or "postgres"
	Clients    int     `json:"clients"`
	Channels   int     `json:"channels,omitempty"`
	DurationS  float64 `json:"duration_s"`
	OfferedPS  float64 `json:"offered_per_s,omitempty"`
	Posts      int64   `json:"posts"`
	PostErrors int64   `json:"post_errors"`
	PostsPS    float64 `json:"posts_per_s"`
	Delivered  int64   `json:"delivered"`
	DeliverPS  float64 `json:"delivered_per_s"`
	P50        float64 `json:"p50_ms"`
	P90        float64 `json:"p90_ms"`
	P99        float64 `json:"p99_ms"`
	Max        float64 `json:"max_ms"`
	PostP50    float64 `json:"post_p50_ms"`
	PostP99    float64 `json:"post_p99_ms"`
	// RateLimited (end to end) is how many 429 answers of the relay the
	// nodes waited out; OutboxLeft what their outboxes held at the end.
	RateLimited int64 `json:"rate_limited,omitempty"`
	OutboxLeft  int64 `json:"outbox_left,omitempty"`
	// NodeCPUPerPost and RelayCPUPerPost (end to end, on Linux) are the
	// CPU time the nodes (all of them) and the relay used in the measured
	// phase, per post: what a message costs, steadier than its latency on
	// a machine whose speed varies.
	NodeCPUPerPost  float64 `json:"node_cpu_ms_per_post,omitempty"`
	RelayCPUPerPost float64 `json:"relay_cpu_ms_per_post,omitempty"`
	// BusyPct (on Linux) is how busy the machine's CPUs were in the
	// measured phase, every process counted (startBusy).
	BusyPct float64 `json:"busy_pct,omitempty"`
	// NodeProcs (end to end) is the GOMAXPROCS node n0 reported in its
	// metrics (Config.NodeProcs, or Go's default for 0).
	NodeProcs int `json:"node_procs,omitempty"`
	// Samples are (seconds since start, delivery latency ms), for plots.
	Samples []Sample `json:"-"`
}

// Sample is one delivery.
type Sample struct {
	At, Ms float64
}

// Run performs the run described by cfg.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Clients < 1 {
		return nil, errors.New("loadtest: clients must be at least 1")
	}
	if cfg.Duration <= 0 {
		return nil, errors.New("loadtest: duration must be positive")
	}
	if cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0) {
		return nil, errors.New("loadtest: rate must be a finite number >= 0")
	}
	if cfg.RelayOnly {
		return runRelayOnly(ctx, cfg)
	}
	return runNodes(ctx, cfg)
}

// recorder collects posts and deliveries of the measured phase.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	posts []float64 // post latencies, ms
	errs  int64
	deliv []Sample
}

func newRecorder() *recorder { return &recorder{start: time.Now()} }

func (r *recorder) posted(sent time.Time, err error) {
	d := time.Since(sent)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs++
		return
	}
	r.posts = append(r.posts, ms(d))
}

func (r *recorder) delivered(sent time.Time) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deliv = append(r.deliv, Sample{At: now.Sub(r.start).Seconds(), Ms: ms(now.Sub(sent))})
}

func (r *recorder) counts() (posts, errs, deliv int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.posts), int(r.errs), len(r.deliv)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// result summarises the recorder over elapsed.
func (r *recorder) result(mode, backend string, cfg Config, elapsed time.Duration) *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	sec := elapsed.Seconds()
	res := &Result{Mode: mode, Backend: backend, Clients: cfg.Clients, DurationS: round(sec), OfferedPS: cfg.Rate,
		Posts: int64(len(r.posts)), PostErrors: r.errs, Delivered: int64(len(r.deliv)), Samples: slices.Clone(r.deliv)}
	if !cfg.RelayOnly {
		res.Channels = cfg.Channels
	}
	res.PostsPS = round(float64(len(r.posts)) / sec)
	res.DeliverPS = round(float64(len(r.deliv)) / sec)
	lat := make([]float64, len(r.deliv))
	for i, s := range r.deliv {
		lat[i] = s.Ms
	}
	slices.Sort(lat)
	res.P50, res.P90, res.P99 = pct(lat, 50), pct(lat, 90), pct(lat, 99)
	if len(lat) > 0 {
		res.Max = round(lat[len(lat)-1])
	}
	pl := slices.Clone(r.posts)
	slices.Sort(pl)
	res.PostP50, res.PostP99 = pct(pl, 50), pct(pl, 99)
	return res
}

// pct is the p-th percentile (nearest rank) of sorted xs (0 if empty).
func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(xs)))) - 1
	return round(xs[max(0, min(i, len(xs)-1))])
}

func round(x float64) float64 { return math.Round(x*100) / 100 }

// progress writes a line every second until ctx ends.
func progress(ctx context.Context, w io.Writer, rec *recorder, total time.Duration) {
	if w == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(w)
			return
		case <-t.C:
			p, e, d := rec.counts()
			el := time.Since(rec.start)
			fmt.Fprintf(w, "\rloadtest: %4.0fs/%.0fs  posts %d (%.0f/s)  errors %d  delivered %d (%.0f/s)   ",
				el.Seconds(), total.Seconds(), p, float64(p)/el.Seconds(), e, d, float64(d)/el.Seconds())
		}
	}
}

// pacer returns a function that waits until a client's next send (nil
// when the load is closed-loop). With a rate, each client's sends are a
// Poisson process of rate/clients (exponential gaps, a random first
// one), so that together they offer rate messages per second with the
// bursts of independent users, not all clients at the same instant: with
// equal gaps from a common start every client fired together, and the
// latency measured was that of draining a burst of one message per
// client.
func pacer(rate float64, clients int) func(ctx context.Context) bool {
	if rate <= 0 {
		return func(ctx context.Context) bool { return ctx.Err() == nil }
	}
	gap := poissonGaps(rate, clients, rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())))
	next := time.Now()
	return func(ctx context.Context) bool {
		next = next.Add(gap())
		if d := time.Until(next); d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return false
			case <-t.C:
			}
		} else if d < -time.Second {
			next = time.Now() // far behind: do not burst to catch up
		}
		return ctx.Err() == nil
	}
}

// poissonGaps returns the gaps between one client's sends: exponential,
// with mean clients/rate seconds.
func poissonGaps(rate float64, clients int, r *rand.Rand) func() time.Duration {
	mean := float64(time.Second) * float64(clients) / rate
	return func() time.Duration { return time.Duration(r.ExpFloat64() * mean) }
}
