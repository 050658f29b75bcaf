package tsmls_test

import (
	"errors"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/interop/tsmls"
)

func TestStartWithoutNodeModules(t *testing.T) {
	t.Setenv(tsmls.DirEnv, t.TempDir())
	p, err := tsmls.Start(t.Context())
	if !errors.Is(err, tsmls.ErrNodeUnavailable) {
		if p != nil {
			_ = p.Close()
		}
		t.Fatalf("Start in an empty dir: %v, want ErrNodeUnavailable", err)
	}
}

func TestTimeoutKillsPeer(t *testing.T) {
	p := tsmls.StartT(t, "slow", 1)
	p.SetTimeout(time.Nanosecond)
	if err := p.CreateGroup([]byte("g")); !errors.Is(err, tsmls.ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	p.SetTimeout(tsmls.DefaultTimeout)
	if _, _, err := p.KeyPackage(); !errors.Is(err, tsmls.ErrTimeout) {
		t.Fatalf("after a timeout: %v, want the sticky ErrTimeout", err)
	}
}
