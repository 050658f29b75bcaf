package bench

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls/suite"
)

// TestSmoke runs the engine benchmark at small sizes so it cannot rot:
// every operation must succeed at every shape.
func TestSmoke(t *testing.T) {
	o := DefaultOptions()
	o.Suites = []suite.ID{1, 2} // Ed25519 and ECDSA (whose keys cannot be regenerated from a seed)
	o.Sizes = []int{2, 5}
	o.MinTime, o.MinRuns = time.Millisecond, 2
	rows := 0
	if err := Run(o, func(r Row) {
		rows++
		if r.NsPerOp <= 0 || r.FloorNs <= 0 || r.Runs < 2 {
			t.Errorf("%+v: empty measurement", r)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if want := 2 * 2 * 2 * 5; rows != want {
		t.Fatalf("%d rows, want %d", rows, want)
	}
}

// TestUnknownOptions: a misspelt operation or shape is an error, not an
// empty or mislabelled table.
func TestUnknownOptions(t *testing.T) {
	for _, o := range []Options{{Ops: []string{"procss"}}, {Shapes: []string{"dense"}}} {
		o.Suites, o.Sizes = []suite.ID{1}, []int{2}
		if err := Run(o, func(Row) { t.Fatal("measured") }); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

// BenchmarkEngineOp profiles one operation: BENCH_OP, BENCH_N, BENCH_TREE
// (and BENCH_SUITE, default 1).
func BenchmarkEngineOp(b *testing.B) {
	op, shape := os.Getenv("BENCH_OP"), os.Getenv("BENCH_TREE")
	n, _ := strconv.Atoi(os.Getenv("BENCH_N"))
	if op == "" || n == 0 {
		b.Skip("set BENCH_OP, BENCH_N and BENCH_TREE")
	}
	id := suite.ID(1)
	if v, err := strconv.Atoi(os.Getenv("BENCH_SUITE")); err == nil {
		id = suite.ID(v)
	}
	if shape == "" {
		shape = "sparse"
	}
	o := DefaultOptions()
	o.Suites, o.Sizes, o.Shapes, o.Ops = []suite.ID{id}, []int{n}, []string{shape}, []string{op}
	o.MinTime = 3 * time.Second
	for i := 0; i < b.N; i++ {
		if err := Run(o, func(r Row) { b.ReportMetric(r.Ratio, "ratio") }); err != nil {
			b.Fatal(err)
		}
	}
}
