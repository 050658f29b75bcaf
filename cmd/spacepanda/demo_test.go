package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as the spacepanda command: with
// SPACEPANDA_TEST_MAIN=1 it runs main's run() on its arguments. The demo
// re-executes os.Executable() for its nodes, and the variable is inherited,
// so the whole demo (three serve processes) runs as it does from
// `go run ./cmd/spacepanda demo`.
func TestMain(m *testing.M) {
	if os.Getenv("SPACEPANDA_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func runSelf(t *testing.T, timeout time.Duration, args ...string) (int, string, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), "SPACEPANDA_TEST_MAIN=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), stdout.String(), stderr.String()
	} else if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return 0, stdout.String(), stderr.String()
}

func TestDemo(t *testing.T) {
	t.Parallel()
	code, out, stderr := runSelf(t, 2*time.Minute, "demo")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || lines[len(lines)-1] != "OK: every step held." {
		t.Fatalf("demo exit %d, stdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	for _, want := range []string{"alice's node is up", "bob joins", "carol joins", "alice removes carol",
		"carol cannot read what follows her removal"} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q:\n%s", want, out)
		}
	}
}

func TestServeRefusesOpenListenWithoutToken(t *testing.T) {
	t.Parallel()
	code, _, stderr := runSelf(t, 30*time.Second, "serve", "--data", t.TempDir(), "--listen", "0.0.0.0:0")
	if code != 2 || !strings.Contains(stderr, "--token-file") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"nope"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if code := run(nil, &out, &errb); code != 2 {
		t.Fatalf("no arguments: exit %d", code)
	}
}
