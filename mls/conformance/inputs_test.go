package conformance

import (
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/internal/testinputs"
	"github.com/spacepanda/spacepanda/internal/testvec"
)

// TestInputs says when the official vectors are missing: a failure under
// CI=true, else a skip with a line plain `go test ./...` shows.
func TestInputs(t *testing.T) {
	dir, ok := testvec.Dir()
	if !ok {
		testinputs.Missing(t, "conformance", fmt.Sprintf("MLS test vectors not found at %s; set %s (see README)", dir, testvec.EnvVar))
	}
	testinputs.Found()
}
