// Command spacepanda is the SpacePanda CLI: serve, demo, conformance and bench.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage: spacepanda <command> [arguments]

commands:
  demo                three nodes on loopback, one channel, the whole flow
  serve --data DIR [--listen 127.0.0.1:PORT] [--name NAME] [--token-file F]
                      serve one identity's channels over HTTP (API v1)
  conformance [DIR]   run the official MLS test vectors in DIR
                      (default: $MLS_TEST_VECTORS, else ../shared/testvectors)
  bench [--json] [--suites 1,2] [--sizes 2,10,...] [--trees sparse,full]
                      measure commit, process, join, send and receive beside
                      the crypto floor measured in the same run
  interop-client [--port N] [--host 127.0.0.1]
                      serve the mlswg MLS interop interface over gRPC`)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "conformance":
		return cmdConformance(args[1:], stdout, stderr)
	case "bench":
		return cmdBench(args[1:], stdout, stderr)
	case "serve":
		return cmdServe(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "relay":
		return cmdRelay(args[1:], stdout, stderr)
	case "loadtest":
		return cmdLoadtest(args[1:], stdout, stderr)
	case "interop-client":
		return cmdInteropClient(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "spacepanda: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
}
