package mls

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls/suite"
)

// TestBenchSmoke runs the engine benchmark at small sizes so it cannot rot:
// every operation must succeed at every shape.
func TestBenchSmoke(t *testing.T) {
	o := DefaultBenchOptions()
	o.Suites = []suite.ID{1, 2} // Ed25519 and ECDSA (whose keys cannot be regenerated from a seed)
	o.Sizes = []int{2, 5}
	o.MinTime, o.MinRuns = time.Millisecond, 2
	rows := 0
	if err := RunBench(o, func(r BenchRow) {
		rows++
		if r.NsPerOp <= 0 || r.FloorNs <= 0 {
			t.Errorf("%+v: empty measurement", r)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if want := 2 * 2 * 2 * 5; rows != want {
		t.Fatalf("%d rows, want %d", rows, want)
	}
}

// BenchmarkEngineOp profiles one operation: BENCH_OP, BENCH_N, BENCH_TREE.
func BenchmarkEngineOp(b *testing.B) {
	op, tree := os.Getenv("BENCH_OP"), os.Getenv("BENCH_TREE")
	n, _ := strconv.Atoi(os.Getenv("BENCH_N"))
	if op == "" || n == 0 {
		b.Skip("set BENCH_OP, BENCH_N and BENCH_TREE")
	}
	o := DefaultBenchOptions()
	o.Suites, o.Sizes, o.Shapes, o.Ops = []suite.ID{1}, []int{n}, []string{tree}, []string{op}
	o.MinTime = 3 * time.Second
	for i := 0; i < b.N; i++ {
		if err := RunBench(o, func(r BenchRow) { b.ReportMetric(r.Ratio, "ratio") }); err != nil {
			b.Fatal(err)
		}
	}
}
