package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// cmdRelay runs the delivery service (relay/API.md) until SIGINT or SIGTERM.
func cmdRelay(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer startProfile(stderr)()
	return relayMain(ctx, args, stdout, stderr)
}
