package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"

	"github.com/spacepanda/spacepanda/relay"
)

// relayMain is `spacepanda relay`: it serves the relay until ctx ends,
// then shuts down gracefully (relay.Serve). The first stdout line is
// "spacepanda relay serving on http://ADDR" (tests read it when --listen
// has port 0). It returns the exit code.
func relayMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "data directory of the embedded SQLite database (relay.db)")
	listen := fs.String("listen", "127.0.0.1:8480", "address to listen on")
	pg := fs.String("postgres", "", "PostgreSQL URL: use this shared database instead of SQLite (several relays may share it)")
	urls := fs.String("url", "", "comma-separated base URLs clients reach this relay by, what their login signatures cover (required unless --listen is loopback; default: the listening address)")
	newIDs := fs.Int("new-identities-per-hour", 0, "first logins of new users allowed per source address per hour (default 20)")
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "spacepanda relay: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *data == "" && *pg == "" {
		fmt.Fprintln(stderr, "spacepanda relay: --data (or --postgres) is required")
		return 2
	}
	if *urls == "" && !loopbackListen(*listen) {
		fmt.Fprintln(stderr, "spacepanda relay: --url is required when --listen is not a loopback address (the URL clients sign at login)")
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	var st relay.Store
	var err error
	if *pg != "" {
		st, err = relay.OpenPostgres(ctx, *pg)
	} else {
		st, err = relay.OpenSQLite(ctx, *data)
	}
	if err != nil {
		fmt.Fprintf(stderr, "spacepanda relay: %v\n", err)
		return 1
	}
	defer st.Close()
	if *newIDs < 0 {
		fmt.Fprintln(stderr, "spacepanda relay: --new-identities-per-hour must be >= 0")
		return 2
	}
	opts := relay.Options{Logger: log, NewIdentitiesPerIP: *newIDs}
	if *urls != "" {
		for _, u := range strings.Split(*urls, ",") {
			u = strings.TrimSuffix(strings.TrimSpace(u), "/")
			if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || (p.Path != "" && p.Path != "/") {
				fmt.Fprintf(stderr, "spacepanda relay: --url %q is not an http(s) base URL\n", u)
				return 2
			}
			opts.URLs = append(opts.URLs, u)
		}
	}
	srv := relay.New(st, opts)
	defer srv.Close()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "spacepanda relay: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "spacepanda relay serving on http://%s\n", ln.Addr())
	if err := relay.Serve(ctx, srv, ln, log.With("backend", backendName(*pg))); err != nil {
		fmt.Fprintf(stderr, "spacepanda relay: %v\n", err)
		return 1
	}
	return 0
}

func backendName(pg string) string {
	if pg != "" {
		return "postgres"
	}
	return "sqlite"
}

// loopbackListen reports whether addr (host:port) listens on loopback only.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
