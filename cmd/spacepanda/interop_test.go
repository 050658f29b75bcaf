package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestInteropClientFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"interop-client", "--help"}, 0},
		{[]string{"interop-client", "--port", "70000"}, 2},
		{[]string{"interop-client", "extra"}, 2},
		{[]string{"interop-client", "--bogus"}, 2},
	} {
		var out, errb bytes.Buffer
		if got := run(c.args, &out, &errb); got != c.code {
			t.Errorf("%v: exit %d, want %d (%s)", c.args, got, c.code, errb.String())
		}
		if c.code == 0 && !strings.Contains(errb.String()+out.String(), "mls_client.proto") {
			t.Errorf("%v: no usage text", c.args)
		}
	}
}
