package apidoc

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite node/openapi.json and relay/api/openapi.json")

// TestGenerated fails when a committed document differs from the
// description here; go test ./internal/apidoc -update rewrites them.
func TestGenerated(t *testing.T) {
	for _, c := range []struct {
		file string
		api  *API
	}{{"../../relay/api/openapi.json", Relay()}, {"../../node/openapi.json", Node()}} {
		want := c.api.JSON()
		got, err := os.ReadFile(c.file)
		if *update {
			if err := os.WriteFile(c.file, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v (go test ./internal/apidoc -update writes it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not what internal/apidoc describes: run go test ./internal/apidoc -update", c.file)
		}
	}
}
