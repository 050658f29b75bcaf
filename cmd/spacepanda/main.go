// Command spacepanda is the SpacePanda CLI: serve, link, relay, demo,
// conformance, bench, loadtest, interop-client and version.
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
	fmt.Fprintln(w, `usage: spacepanda <command> [arguments]     (spacepanda <command> --help: its flags)

commands:
  serve --data DIR [--listen 127.0.0.1:PORT] [--name NAME] [--token-file F]
        [--passphrase-file F] [--relay URL] [--link] [-v]
                      serve one identity's channels over HTTP (API v1)
  relay (--data DIR | --postgres URL) [--listen 127.0.0.1:8480] [--url URL,...]
        [--new-identities-per-hour N] [-v]
                      run the relay (delivery service, relay/API.md)
  link [--node URL] [--token-file F] [--code CODE | --list | --revoke ID] [--no-wait]
                      a user's devices, through the nodes: without --code,
                      show a link code on the first device and wait for the
                      new one; with it, enter the code on the new device
                      (started with serve --link)
  demo [--relay] [--keep]
                      three nodes on loopback, one channel, the whole flow
  conformance [DIR]   run the official MLS test vectors in DIR
                      (default: $MLS_TEST_VECTORS, else ../shared/testvectors)
  bench [--json] [--suites 1,2] [--sizes 2,10,...] [--trees sparse,full]
        [--ops ...] [--time D] [-q]
                      measure commit, process, join, send and receive beside
                      the crypto floor measured in the same run
  loadtest [--relay-only] [--postgres URL] [--clients N] [--channels N]
        [--members N] [--duration D] [--rate R] [--json] [--plot FILE.svg|.png]
        [--profile DIR] [--node-procs N]
                      load a relay (or nodes end to end) on loopback and
                      measure posts/s, deliveries/s and latency
  interop-client [--port N] [--host 127.0.0.1] [--max-lifetime D]
                      serve the mlswg MLS interop interface over gRPC
  version             print the version`)
}

// commands are the subcommands by name.
var commands = map[string]func(args []string, stdout, stderr io.Writer) int{
	"conformance":    cmdConformance,
	"bench":          cmdBench,
	"serve":          cmdServe,
	"link":           cmdLink,
	"demo":           cmdDemo,
	"relay":          cmdRelay,
	"loadtest":       cmdLoadtest,
	"interop-client": cmdInteropClient,
	"version":        cmdVersion,
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "spacepanda: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	if wantsHelp(args[1:]) {
		// Every command's flag set prints its flags on -h (flag.ErrHelp);
		// asking for help is a success whatever the command returns for it.
		if code := cmd([]string{"-h"}, stdout, stdout); code == 0 || code == 2 {
			return 0
		}
		return 1
	}
	return cmd(args[1:], stdout, stderr)
}

// wantsHelp reports a help flag among a command's flags (before "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelp(a) {
			return true
		}
	}
	return false
}
