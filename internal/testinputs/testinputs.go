// Package testinputs makes a test whose inputs are missing (the MLS test
// vectors, Node.js for the ts-mls peer) say so where people look: under
// CI=true it fails; otherwise it skips and prints one line that a plain
// `go test ./...` shows.
//
// Plain `go test ./...` (package list mode) shows nothing a passing or
// skipping package writes — its stdout and stderr are both captured and
// dropped — and replays the dropped output from its cache next time. So
// the line goes to the go command's own standard error (on Linux
// /proc/<parent>/fd/2, else /dev/tty), and the run is kept out of the
// test cache (see uncached) so that every run says it.
package testinputs

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// CIEnv is the variable under which a missing input is a failure.
const CIEnv = "CI"

// Required reports whether missing inputs fail (CI=true).
func Required() bool { return os.Getenv(CIEnv) == "true" }

// Missing reports a missing input of package pkg: msg says what is
// missing and how to provide it, on one line. Under CI=true the test
// fails; otherwise the line is announced and the test skips.
func Missing(t testing.TB, pkg, msg string) {
	t.Helper()
	line := pkg + ": " + msg
	if Required() {
		t.Fatalf("%s (%s=true: required)", line, CIEnv)
	}
	Announce(line)
	t.Skip(line)
}

// Announce writes line where the person who ran go test sees it (else
// to standard error, shown when the package fails or with -v), and keeps
// this run out of the test cache.
func Announce(line string) {
	uncached()
	w := visible()
	if w == nil {
		fmt.Fprintln(os.Stderr, line)
		return
	}
	defer w.Close()
	fmt.Fprintln(w, line)
}

// visible opens the go command's standard error (a terminal or a pipe),
// else the terminal; nil when neither is there or it is our own standard
// error already. A regular file is passed over: the go command writes it
// at its own offset, over what was appended.
func visible() *os.File {
	for _, p := range []string{fmt.Sprintf("/proc/%d/fd/2", os.Getppid()), "/dev/tty"} {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			continue
		}
		st, err := f.Stat()
		if err != nil || st.Mode().IsRegular() || same(f, os.Stderr) {
			f.Close()
			continue
		}
		return f
	}
	return nil
}

func same(a, b *os.File) bool {
	sa, err1 := a.Stat()
	sb, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// marker is the file that keeps a run out of the test cache: the go
// command does not cache a run that opened a file inside the module
// modified less than two seconds before. It is gitignored (*.out) and
// removed by the first run that finds its inputs (Found).
const marker = ".inputs-missing.out"

func uncached() {
	f, err := os.OpenFile(marker, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	fmt.Fprintln(f, "a test input was missing at", time.Now().UTC().Format(time.RFC3339Nano))
	f.Close()
	if f, err := os.Open(marker); err == nil {
		f.Close()
	}
}

// Found is called when the inputs are there: it removes the marker a
// run without them left.
func Found() { os.Remove(marker) }
