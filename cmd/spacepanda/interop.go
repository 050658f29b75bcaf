package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spacepanda/spacepanda/interop/mlsclient"
)

// cmdInteropClient serves the mlswg interop interface (mls_client.proto)
// over gRPC for the official test runner.
func cmdInteropClient(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("interop-client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("port", 50051, "TCP port to listen on (0: any free port)")
	host := fs.String("host", "127.0.0.1", "address to listen on")
	maxLifetime := fs.Duration("max-lifetime", 0,
		"longest KeyPackage lifetime accepted (0: the engine's default of 400 days; negative: no bound)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: spacepanda interop-client [--port N] [--host ADDR] [--max-lifetime D]\n\n"+
			"Serves the MLS working group's interop interface (MLSClient, mls_client.proto) over\n"+
			"unauthenticated gRPC. It hands out private keys by design: keep it on loopback.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || *port < 0 || *port > 65535 {
		fs.Usage()
		return 2
	}
	if ip := net.ParseIP(*host); (ip == nil || !ip.IsLoopback()) && *host != "localhost" {
		fmt.Fprintf(stderr, "spacepanda interop-client: warning: %s is not loopback; anyone who reaches it can drive the client and read its keys\n", *host)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintf(stderr, "spacepanda interop-client: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "spacepanda interop-client listening on %s\n", l.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	lifetime := *maxLifetime
	if lifetime < 0 {
		lifetime = -time.Nanosecond
	}
	if err := mlsclient.Serve(ctx, l, mlsclient.New(mlsclient.Options{MaxLeafLifetime: lifetime})); err != nil {
		fmt.Fprintf(stderr, "spacepanda interop-client: %v\n", err)
		return 1
	}
	return 0
}
