package childproc

import (
	"context"
	"errors"
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
		if os.Getenv("CHILDPROC_SPIN") != "" {
			for x := 0; ; x++ { // uses CPU until stopped
			}
		}
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
		p, err := Start(context.Background(), os.Args[0], []string{"-test.run=^$"}, "serving on ", nil, nil)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("%q: err = %v, want %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		p.Stop() // returns only once the child is gone
		if p.Addr != tc.addr {
			t.Fatalf("addr = %q, want %q", p.Addr, tc.addr)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		stat string
		want time.Duration
		ok   bool
	}{
		// utime 250 and stime 30 ticks: 2.8 s.
		{stat: "4242 (spacepanda) S 1 4242 4242 0 -1 4194304 900 0 0 0 250 30 0 0 20 0 12 0 100 0 0", want: 2800 * time.Millisecond, ok: true},
		// A command name with spaces and a ')' of its own.
		{stat: "7 (a b) c)) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0", want: 70 * time.Millisecond, ok: true},
		{stat: "7 (short) R 1 7", ok: false},
		{stat: "no name at all", ok: false},
		{stat: "7 (x) R 1 7 7 0 -1 0 0 0 0 0 -3 4 0 0", ok: false},
	} {
		got, err := parseStatCPU([]byte(tc.stat))
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("parseStatCPU(%q) = %v, %v; want %v, ok %v", tc.stat, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrNoCPU) {
			t.Errorf("parseStatCPU(%q): %v is not ErrNoCPU", tc.stat, err)
		}
	}
}

// TestCPU: a child that spins for a while has used CPU time, read while
// it runs.
func TestCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	t.Setenv("CHILDPROC_LINE", "serving on x")
	t.Setenv("CHILDPROC_SPIN", "1")
	p, err := Start(context.Background(), os.Args[0], []string{"-test.run=^$"}, "serving on ", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	var used time.Duration
	for deadline := time.Now().Add(20 * time.Second); used < 50*time.Millisecond && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		if used, err = p.CPU(); err != nil {
			t.Fatal(err)
		}
	}
	if used < 50*time.Millisecond {
		t.Fatalf("a spinning child used %v of CPU in 20 s", used)
	}
}
