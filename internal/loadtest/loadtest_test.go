package loadtest

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRelayOnly runs the relay-only mode briefly on each backend: every
// post is delivered, figures are filled in, both plots are written.
func TestRelayOnly(t *testing.T) {
	backends := map[string]string{"sqlite": ""}
	if u := os.Getenv("SPACEPANDA_TEST_POSTGRES"); u != "" {
		backends["postgres"] = u
	}
	for name, pg := range backends {
		t.Run(name, func(t *testing.T) {
			var progress strings.Builder
			res, err := Run(context.Background(), Config{RelayOnly: true, Postgres: pg, Clients: 4, Duration: 2 * time.Second,
				Dir: t.TempDir(), Progress: &progress})
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, res, "relay-only", name, 1)
			if !strings.Contains(progress.String(), "loadtest:") {
				t.Errorf("no progress line: %q", progress.String())
			}
			for _, f := range []string{"lat.svg", "lat.png"} {
				p := filepath.Join(t.TempDir(), f)
				if err := Plot(res, p); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(p)
				if err != nil || len(b) < 100 {
					t.Fatalf("%s: %d bytes, %v", f, len(b), err)
				}
			}
			if err := Plot(res, filepath.Join(t.TempDir(), "lat.gif")); err == nil {
				t.Error("a .gif plot was accepted")
			}
		})
	}
}

func checkResult(t *testing.T, res *Result, mode, backend string, perPost int64) {
	t.Helper()
	t.Logf("%+v", *res)
	if res.Mode != mode || res.Backend != backend {
		t.Fatalf("mode %q backend %q", res.Mode, res.Backend)
	}
	if res.Posts == 0 || res.PostErrors != 0 {
		t.Fatalf("%d posts, %d errors", res.Posts, res.PostErrors)
	}
	if res.Delivered < res.Posts*perPost {
		t.Fatalf("%d delivered of %d posts (x%d)", res.Delivered, res.Posts, perPost)
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.PostsPS <= 0 || res.DeliverPS <= 0 {
		t.Fatalf("figures: %+v", *res)
	}
}

func TestConfigRefused(t *testing.T) {
	for _, c := range []Config{
		{RelayOnly: true, Clients: 0, Duration: time.Second},
		{RelayOnly: true, Clients: 1, Duration: 0},
		{RelayOnly: true, Clients: 1, Duration: time.Second, Rate: -1},
		{Clients: 3, Duration: time.Second}, // end to end without a binary
	} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// TestPoissonGaps: one client's gaps average clients/rate and vary as an
// exponential's do (standard deviation ≈ mean), so that clients do not
// send in step; the old equal gaps fail the second check.
func TestPoissonGaps(t *testing.T) {
	for _, tc := range []struct {
		rate    float64
		clients int
	}{{600, 20}, {60, 20}, {5000, 64}, {1, 1}} {
		gap := poissonGaps(tc.rate, tc.clients, rand.New(rand.NewPCG(1, 2)))
		const n = 20000
		var sum, sq float64
		for range n {
			g := float64(gap())
			if g < 0 {
				t.Fatalf("rate %v: negative gap", tc.rate)
			}
			sum += g
			sq += g * g
		}
		mean := sum / n
		sd := math.Sqrt(sq/n - mean*mean)
		want := float64(time.Second) * float64(tc.clients) / tc.rate
		if math.Abs(mean-want) > 0.05*want {
			t.Errorf("rate %v, %d clients: mean gap %v, want %v", tc.rate, tc.clients, time.Duration(mean), time.Duration(want))
		}
		if !(sd >= 0.8*mean && sd <= 1.2*mean) { // (NaN fails too)
			t.Errorf("rate %v, %d clients: gaps' standard deviation %v for a mean of %v: not exponential", tc.rate, tc.clients, time.Duration(sd), time.Duration(mean))
		}
	}
}

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		stat        string
		busy, total uint64
		ok          bool
	}{
		// user nice system idle iowait irq softirq steal guest guest_nice
		{stat: "cpu  100 5 50 800 20 1 4 30 0 0\ncpu0 50 2 25 400 10 0 2 15 0 0\n", busy: 160, total: 980, ok: true},
		{stat: "cpu 10 0 10 80 0\n", busy: 20, total: 100, ok: true}, // an old kernel's five fields
		{stat: "cpu 10 0 10\n", ok: false},
		{stat: "intr 1 2 3\n", ok: false},
		{stat: "cpu 10 x 10 80 0\n", ok: false},
		{stat: "", ok: false},
	} {
		busy, total, err := parseProcStat([]byte(tc.stat))
		if (err == nil) != tc.ok || busy != tc.busy || total != tc.total {
			t.Errorf("parseProcStat(%q) = %d, %d, %v; want %d, %d, ok %v", tc.stat, busy, total, err, tc.busy, tc.total, tc.ok)
		}
	}
}
