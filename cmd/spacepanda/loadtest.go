package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spacepanda/spacepanda/internal/loadtest"
)

// cmdLoadtest runs `spacepanda loadtest` (internal/loadtest), on loopback,
// for --duration.
func cmdLoadtest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	relayOnly := fs.Bool("relay-only", false, "post straight to a relay started in this process (default: nodes end to end)")
	pg := fs.String("postgres", "", "PostgreSQL URL for the relay (default: SQLite in a temporary directory)")
	clients := fs.Int("clients", 0, "concurrent clients (relay-only, default 64) or nodes (end to end, default 6)")
	channels := fs.Int("channels", 0, "channels, end to end (default: nodes/2)")
	members := fs.Int("members", 3, "nodes per channel, end to end")
	duration := fs.Duration("duration", 10*time.Second, "length of the measured phase")
	rate := fs.Float64("rate", 0, "offered messages per second over all clients, each client sending at Poisson-spaced times (0: as fast as answered)")
	nodeProcs := fs.Int("node-procs", 1, "end to end: GOMAXPROCS of every node process (0: one per CPU); the nodes stand for devices of their own, and twenty of them with a P per CPU crowd the relay's scheduler")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	plot := fs.String("plot", "", "draw latency over time and its distribution to FILE.svg or FILE.png")
	profile := fs.String("profile", "", "end to end: write CPU profiles of the relay and of every node to DIR/{relay,n0,n1,...}.pprof, and execution traces of the relay and n0 to DIR/{relay,n0}.trace; relay-only: a CPU profile of the process (relay and clients) to DIR/relay.pprof")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "spacepanda loadtest: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *duration <= 0 || *duration > 24*time.Hour {
		fmt.Fprintln(stderr, "spacepanda loadtest: --duration must be between 0 and 24h")
		return 2
	}
	if *clients == 0 {
		*clients = 6
		if *relayOnly {
			*clients = 64
		}
	}
	if *clients < 1 || *clients > 10000 {
		fmt.Fprintln(stderr, "spacepanda loadtest: --clients must be 1 to 10000")
		return 2
	}
	if *nodeProcs < 0 || *nodeProcs > 1024 {
		fmt.Fprintln(stderr, "spacepanda loadtest: --node-procs must be 0 to 1024")
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "spacepanda loadtest: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := loadtest.Run(ctx, loadtest.Config{RelayOnly: *relayOnly, Postgres: *pg, Clients: *clients, Channels: *channels,
		Members: *members, Duration: *duration, Rate: *rate, Exe: exe, ProfileDir: *profile, NodeProcs: *nodeProcs, Progress: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "spacepanda loadtest: %v\n", err)
		return 1
	}
	if *plot != "" {
		if err := loadtest.Plot(res, *plot); err != nil {
			fmt.Fprintf(stderr, "spacepanda loadtest: %v\n", err)
			return 1
		}
	}
	if *asJSON {
		json.NewEncoder(stdout).Encode(res)
		return 0
	}
	fmt.Fprintf(stdout, "%s on %s, %d clients, %.1f s: %.0f posts/s (%d errors), %.0f delivered/s; delivery p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms; post p50 %.1f ms, p99 %.1f ms\n",
		res.Mode, res.Backend, res.Clients, res.DurationS, res.PostsPS, res.PostErrors, res.DeliverPS, res.P50, res.P90, res.P99, res.Max, res.PostP50, res.PostP99)
	return 0
}
