package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// cmdVersion prints the module version, the VCS revision it was built
// from (when known) and the Go version.
func cmdVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && isHelp(args[0]) {
		fmt.Fprintln(stdout, "usage: spacepanda version")
		return 0
	}
	if len(args) != 0 {
		fmt.Fprintf(stderr, "spacepanda version: unexpected arguments %q\n", args)
		return 2
	}
	version, rev, dirty := "(devel)", "", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
	}
	if rev != "" {
		version += " " + rev + dirty
	}
	fmt.Fprintf(stdout, "spacepanda %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" }
