package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"runtime/trace"
)

// profileEnv names a file that `serve` and `relay` write a CPU profile to,
// from start to shutdown (SIGTERM): how a node under `spacepanda
// loadtest` is profiled (the load test sets it for one node). traceEnv
// names a file for an execution trace (`go tool trace`): where the time
// that is not CPU goes (locks, I/O, scheduling).
const (
	profileEnv = "SPACEPANDA_CPUPROFILE"
	traceEnv   = "SPACEPANDA_TRACE"
)

// startProfile starts the CPU profile named by profileEnv and the
// execution trace named by traceEnv, if any; the returned function stops
// them.
func startProfile(stderr io.Writer) func() {
	stopCPU := startCPUProfile(stderr)
	stopTrace := startTrace(stderr)
	return func() { stopTrace(); stopCPU() }
}

func startTrace(stderr io.Writer) func() {
	path := os.Getenv(traceEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "spacepanda: %s: %v\n", traceEnv, err)
		return func() {}
	}
	if err := trace.Start(f); err != nil {
		fmt.Fprintf(stderr, "spacepanda: %s: %v\n", traceEnv, err)
		f.Close()
		return func() {}
	}
	return func() {
		trace.Stop()
		f.Close()
	}
}

func startCPUProfile(stderr io.Writer) func() {
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
