package tsmls

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spacepanda/spacepanda/internal/testinputs"
)

// TestInputs says when the ts-mls peer cannot run: a failure under
// CI=true, else a skip with a line plain `go test ./...` shows.
func TestInputs(t *testing.T) {
	p, err := Start(context.Background())
	if errors.Is(err, ErrNodeUnavailable) {
		testinputs.Missing(t, "interop/tsmls", strings.TrimPrefix(err.Error(), "tsmls: ")+"; needs Node 20+ (see README)")
	}
	if err != nil {
		t.Fatal(err)
	}
	testinputs.Found()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}
