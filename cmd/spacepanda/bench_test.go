package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestBenchJSON: `spacepanda bench --json` prints one object per
// measurement with exactly the documented fields.
func TestBenchJSON(t *testing.T) {
	var out, errb bytes.Buffer
	args := []string{"-q", "--json", "--suites", "1", "--sizes", "2", "--trees", "sparse,full", "--ops", "send,receive", "--time", "1ms"}
	if rc := cmdBench(args, &out, &errb); rc != 0 {
		t.Fatalf("rc %d: %s", rc, errb.String())
	}
	want := []string{"floor_ns_per_op", "members", "ns_per_op", "op", "ratio", "runs", "suite", "tree"}
	var seen []string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var row map[string]any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		var keys []string
		for k := range row {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, want) {
			t.Fatalf("fields %v, want %v", keys, want)
		}
		if row["ratio"].(float64) <= 0 || row["members"].(float64) != 2 {
			t.Fatalf("row %v", row)
		}
		seen = append(seen, row["op"].(string)+"/"+row["tree"].(string))
	}
	if got := strings.Join(seen, " "); got != "send/sparse receive/sparse send/full receive/full" {
		t.Fatalf("rows %s", got)
	}
}

// TestBenchBadFlags: a bad operation or size is refused.
func TestBenchBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--ops", "procss"}, {"--sizes", "1"}, {"--suites", "x"}, {"--trees", "dense"}} {
		var out, errb bytes.Buffer
		if rc := cmdBench(append([]string{"-q"}, args...), &out, &errb); rc == 0 {
			t.Errorf("%v: accepted", args)
		}
	}
}
