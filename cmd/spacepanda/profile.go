package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
)

// profileEnv names a file that `serve` and `relay` write a CPU profile to,
// from start to shutdown (SIGTERM): how a node under `spacepanda
// loadtest` is profiled (the load test sets it for one node).
const profileEnv = "SPACEPANDA_CPUPROFILE"

// startProfile starts the CPU profile named by profileEnv, if any; the
// returned function stops it.
func startProfile(stderr io.Writer) func() {
	path := os.Getenv(profileEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "spacepanda: %s: %v\n", profileEnv, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(stderr, "spacepanda: %s: %v\n", profileEnv, err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
