package tsmls

import (
	"context"
	"errors"
	"testing"

	"github.com/spacepanda/spacepanda/internal/testinputs"
)

// TestInputs says when the ts-mls peer cannot run: a failure under
// CI=true, else a skip with a line plain `go test ./...` shows.
func TestInputs(t *testing.T) {
	p, err := Start(context.Background())
	if errors.Is(err, ErrNodeUnavailable) {
		testinputs.Missing(t, "interop/tsmls", err.Error()+"; install Node 20+ and run `npm ci` in interop/tsmls (see README)")
	}
	if err != nil {
		t.Fatal(err)
	}
	testinputs.Found()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}
