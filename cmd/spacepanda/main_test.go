package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCommandLine runs the binary: --help on every command exits 0 and
// prints its flags, the top-level usage names every command and every
// flag, stray arguments are refused, version prints a version.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	code, usageText, _ := runSelf(t, time.Minute, "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	flagLine := regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`)
	for _, name := range names {
		if !strings.Contains(usageText, "\n  "+name) {
			t.Errorf("usage does not list %q", name)
		}
		for _, h := range []string{"--help", "-h"} {
			code, out, stderr := runSelf(t, time.Minute, name, h)
			if code != 0 {
				t.Errorf("%s %s: exit %d, %s", name, h, code, stderr)
			}
			for _, m := range flagLine.FindAllStringSubmatch(out, -1) {
				f := m[1]
				if !strings.Contains(usageText, "--"+f) && !strings.Contains(usageText, "-"+f+"]") {
					t.Errorf("usage does not list %s's flag -%s", name, f)
				}
			}
		}
	}
	stray := map[string][]string{
		"serve": {"serve", "--data", t.TempDir(), "stray"}, "relay": {"relay", "--data", t.TempDir(), "stray"},
		"demo": {"demo", "stray"}, "bench": {"bench", "stray"}, "loadtest": {"loadtest", "stray"},
		"interop-client": {"interop-client", "stray"}, "version": {"version", "stray"},
		"conformance": {"conformance", "a", "b"}, "link": {"link", "stray"},
	}
	for _, name := range names {
		args, ok := stray[name]
		if !ok {
			t.Errorf("no stray-argument case for %q", name)
			continue
		}
		if code, _, stderr := runSelf(t, time.Minute, args...); code != 2 {
			t.Errorf("%v: exit %d (want 2), %s", args, code, stderr)
		}
	}
	code, out, _ := runSelf(t, time.Minute, "version")
	if code != 0 || !strings.HasPrefix(out, "spacepanda ") || !strings.Contains(out, "go1") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

// TestRelayURLRequiredBeyondLoopback: `spacepanda relay` refuses to listen
// beyond loopback without --url, and refuses a --url that is not a base
// URL.
func TestRelayURLRequiredBeyondLoopback(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--data", t.TempDir(), "--listen", "0.0.0.0:0"}, "--url is required"},
		{[]string{"--data", t.TempDir(), "--listen", ":0"}, "--url is required"},
		{[]string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--url", "ftp://x"}, "not an http(s) base URL"},
		{[]string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--url", "https://relay.example/path"}, "not an http(s) base URL"},
	}
	for _, c := range cases {
		code, _, stderr := runSelf(t, time.Minute, append([]string{"relay"}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q", c.args, code, stderr)
		}
	}
}
