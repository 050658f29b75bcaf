package relay

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
)

// childMain is what a relay test process runs: the relay over a store,
// served by Serve, as `spacepanda relay` (cmd/spacepanda) does, with the
// flags the tests use (--data, --postgres, --listen, --url).
func childMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "")
	pg := fs.String("postgres", "", "")
	listen := fs.String("listen", "127.0.0.1:0", "")
	urls := fs.String("url", "", "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return 2
	}
	var st Store
	var err error
	if *pg != "" {
		st, err = OpenPostgres(ctx, *pg)
	} else {
		st, err = OpenSQLite(ctx, *data)
	}
	if err != nil {
		fmt.Fprintf(stderr, "relay: %v\n", err)
		return 1
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	opts := Options{Logger: log}
	if *urls != "" {
		opts.URLs = strings.Split(*urls, ",")
	}
	srv := New(st, opts)
	defer srv.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "relay: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "spacepanda relay serving on http://%s\n", ln.Addr())
	if err := Serve(ctx, srv, ln, log); err != nil {
		fmt.Fprintf(stderr, "relay: %v\n", err)
		return 1
	}
	return 0
}
