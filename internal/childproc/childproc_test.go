package childproc

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary act as the child: CHILDPROC_LINE is the
// line it prints before waiting to be stopped.
func TestMain(m *testing.M) {
	if l, ok := os.LookupEnv("CHILDPROC_LINE"); ok {
		os.Stdout.WriteString(l + "\n")
		time.Sleep(time.Hour) // until stopped
	}
	os.Exit(m.Run())
}

func TestStart(t *testing.T) {
	for _, tc := range []struct {
		line, addr, err string
	}{
		{line: "spacepanda relay serving on http://127.0.0.1:1234 ", addr: "http://127.0.0.1:1234"},
		{line: "something else", err: `did not start (first line "something else")`},
	} {
		t.Setenv("CHILDPROC_LINE", tc.line)
		addr, stop, err := Start(context.Background(), os.Args[0], []string{"-test.run=^$"}, "serving on ", nil, nil)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("%q: err = %v, want %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		stop() // returns only once the child is gone
		if addr != tc.addr {
			t.Fatalf("addr = %q, want %q", addr, tc.addr)
		}
	}
}
