package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/spacepanda/spacepanda/internal/testvec"
	"github.com/spacepanda/spacepanda/mls/conformance"
)

func cmdConformance(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("conformance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var dir string
	switch fs.NArg() {
	case 0:
		d, ok := testvec.Dir()
		if !ok {
			fmt.Fprintf(stderr, "spacepanda conformance: no vector directory (pass DIR or set %s)\n", testvec.EnvVar)
			return 2
		}
		dir = d
	case 1:
		dir = fs.Arg(0)
	default:
		fmt.Fprintln(stderr, "usage: spacepanda conformance [DIR]")
		return 2
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		fmt.Fprintf(stderr, "spacepanda conformance: %s is not a directory\n", dir)
		return 2
	}
	_, failed := conformance.RunDir(dir, stdout)
	if failed > 0 {
		return 1
	}
	return 0
}
