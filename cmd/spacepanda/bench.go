package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spacepanda/spacepanda/mls/bench"
	"github.com/spacepanda/spacepanda/mls/suite"
)

func cmdBench(args []string, stdout, stderr io.Writer) int {
	def := bench.DefaultOptions()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	asJSON := fs.Bool("json", false, "print one JSON object per measurement")
	suites := fs.String("suites", "1,2", "cipher suites")
	sizes := fs.String("sizes", "2,10,100,1000,10000", "group sizes")
	shapes := fs.String("trees", "sparse,full", "tree shapes: sparse, full")
	ops := fs.String("ops", strings.Join(def.Ops, ","), "operations")
	minTime := fs.Duration("time", def.MinTime, "minimum time per measurement")
	quiet := fs.Bool("q", false, "no progress on stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "spacepanda bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	o := def
	o.MinTime = *minTime
	o.Shapes = splitList(*shapes)
	o.Ops = splitList(*ops)
	o.Suites = nil
	for _, v := range splitList(*suites) {
		n, err := strconv.Atoi(v)
		if err != nil {
			fmt.Fprintf(stderr, "spacepanda bench: bad suite %q\n", v)
			return 2
		}
		o.Suites = append(o.Suites, suite.ID(n))
	}
	o.Sizes = nil
	for _, v := range splitList(*sizes) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 {
			fmt.Fprintf(stderr, "spacepanda bench: bad size %q (at least 2)\n", v)
			return 2
		}
		o.Sizes = append(o.Sizes, n)
	}
	if !*quiet {
		o.Progress = func(f string, a ...any) { fmt.Fprintf(stderr, "# "+f+"\n", a...) }
	}
	enc := json.NewEncoder(stdout)
	const rowFmt = "%-8s %5v %8v %-6s %12s %12s %6s %7v\n"
	if !*asJSON {
		fmt.Fprintf(stdout, rowFmt, "op", "suite", "members", "tree", "time/op", "floor/op", "ratio", "runs")
	}
	err := bench.Run(o, func(r bench.Row) {
		if *asJSON {
			enc.Encode(r)
			return
		}
		fmt.Fprintf(stdout, rowFmt, r.Op, r.Suite, r.Members, r.Tree,
			fmtNs(r.NsPerOp), fmtNs(r.FloorNs), fmt.Sprintf("%.2f", r.Ratio), r.Runs)
	})
	if err != nil {
		fmt.Fprintf(stderr, "spacepanda: %v\n", err)
		return 1
	}
	return 0
}

const benchUsage = `usage: spacepanda bench [flags]

Times commit, process, join, send and receive (see shared/BENCHMARKS.md)
beside their crypto floor, measured in the same run: the signatures,
verifications, HPKE seals and opens, key derivations and AEAD calls RFC 9420
requires for the operation at that size and tree shape, spread over the
cores the way the operation may spread them. ratio = time / floor.

For commit and process the floor also holds the three hashes of the whole
commit the RFC requires, which cannot share work (each starts from a
different prefix; suite 1 mixes SHA-512 and SHA-256) nor be split over
cores: the signature over FramedContentTBS (Ed25519 hashes it with SHA-512
inside), the membership tag's MAC over AuthenticatedContentTBM, and the
confirmed transcript hash. They are timed at the commit's real size (820 KB
at 10,000 members in a sparse tree) and spread over the cores. Encoding,
tree bookkeeping and allocation are never in the floor.

flags:
`

func fmtNs(ns float64) string {
	return time.Duration(ns).Round(time.Microsecond / 10).String()
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
