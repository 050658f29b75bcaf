package bench

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/wire"
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

// TestCommitSizes: the sizes the floor times the three passes at are those
// of the encodings the RFC hashes, for a commit of each shape.
func TestCommitSizes(t *testing.T) {
	for _, id := range []suite.ID{1, 2} {
		for _, shape := range []string{"sparse", "full"} {
			s := suite.MustNew(id)
			w, err := newWorld(s, 40, shape)
			if err != nil {
				t.Fatal(err)
			}
			res, err := w.alice.Commit(mls.CommitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ctx := w.alice.Context()
			z, err := sizesOf(s, res.Commit, ctx)
			if err != nil {
				t.Fatal(err)
			}
			pm := res.Commit.PublicMessage
			tbs := mls.FramedContentTBS{WireFormat: mls.WireFormatPublicMessage, Content: &pm.Content, Context: &ctx}
			tbsEnc, err := wire.Marshal(&tbs)
			if err != nil {
				t.Fatal(err)
			}
			tbm, err := wire.Marshal(&mls.AuthenticatedContentTBM{ContentTBS: tbs, Auth: &pm.Auth})
			if err != nil {
				t.Fatal(err)
			}
			// ConfirmedTranscriptHashInput is the AuthenticatedContent
			// without its last field, the confirmation tag (< 64 bytes).
			acEnc, err := wire.Marshal(pm.AuthenticatedContent())
			if err != nil {
				t.Fatal(err)
			}
			tagLen := 1 + len(pm.Auth.ConfirmationTag)
			if z.tbs != len(tbsEnc) || z.tbm != len(tbm) || z.cti != s.HashSize()+len(acEnc)-tagLen {
				t.Fatalf("suite %d %s: sizes %+v, encodings tbs %d tbm %d cti %d", id, shape, z, len(tbsEnc), len(tbm), s.HashSize()+len(acEnc)-tagLen)
			}
		}
	}
}
