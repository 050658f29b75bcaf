package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spacepanda/spacepanda/client"
	"github.com/spacepanda/spacepanda/node"
)

func cmdServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "the identity's data directory (created on first start)")
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on (loopback unless --token-file)")
	name := fs.String("name", "", "display name, shown to others beside the user id and never trusted (a new identity's user id is derived from its key)")
	tokenFile := fs.String("token-file", "", "file holding the bearer token every request must carry")
	passFile := fs.String("passphrase-file", "", "unlock the store with this passphrase instead of DIR/store.key")
	verbose := fs.Bool("v", false, "log refused requests too")
	relayURL := fs.String("relay", "", "relay base URL: deliver and fetch through this relay (relay/API.md)")
	link := fs.Bool("link", false, "on first start, make this node a new device of an existing user, waiting to be linked (spacepanda link --code CODE) rather than a new user; needs --relay")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "spacepanda serve: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *data == "" {
		fmt.Fprintln(stderr, "spacepanda serve: --data is required")
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	var token []byte
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "spacepanda serve: token file: %v\n", err)
			return 2
		}
		if token = bytes.TrimSpace(b); len(token) < 16 {
			fmt.Fprintln(stderr, "spacepanda serve: the token must be at least 16 characters")
			return 2
		}
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		fmt.Fprintf(stderr, "spacepanda serve: --listen: %v\n", err)
		return 2
	}
	if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" && token == nil {
		fmt.Fprintln(stderr, "spacepanda serve: a non-loopback --listen needs --token-file (the node holds private keys)")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *link && *relayURL == "" {
		fmt.Fprintln(stderr, "spacepanda serve: --link needs --relay (the relay carries the link exchange)")
		return 2
	}
	defer startProfile(stderr)()
	cfg := client.Config{DataDir: *data, RelayURL: *relayURL, DisplayName: *name, Logger: log, Link: *link}
	if *passFile != "" {
		b, err := os.ReadFile(*passFile)
		if err != nil {
			fmt.Fprintf(stderr, "spacepanda serve: passphrase file: %v\n", err)
			return 2
		}
		cfg.Passphrase = bytes.TrimRight(b, "\r\n")
	}
	// The engine starts whether or not the relay answers: local history
	// is served meanwhile and sends wait in the outbox.
	c, err := client.Open(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "spacepanda serve: %v\n", err)
		return 1
	}
	defer c.Close()
	p := c.Provider()
	handler := node.New(c, node.Options{Token: token, Logger: log}).Handler()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "spacepanda serve: %v\n", err)
		return 1
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute}
	// The first line on stdout says where the node listens (tests and the
	// demo read it when --listen has port 0); the second who it is.
	fmt.Fprintf(stdout, "spacepanda: %s serving on http://%s\n", p.DisplayName(), ln.Addr())
	uid := string(p.UserID())
	if uid == "" {
		uid = "(none yet: link this device with spacepanda link --code)"
	}
	fmt.Fprintf(stdout, "spacepanda: user id %s, device %s\n", uid, p.DeviceID())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
		return 0
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return 0
		}
		fmt.Fprintf(stderr, "spacepanda serve: %v\n", err)
		return 1
	}
}
