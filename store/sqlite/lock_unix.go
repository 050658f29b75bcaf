//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/spacepanda/spacepanda/store"
)

// lockFile takes an exclusive, non-blocking flock on path (created 0600).
// flock locks belong to the open file, so a second Store on the same
// database fails whether it is in this process or another; the lock goes
// with the process, even on SIGKILL.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", store.ErrLocked, path)
		}
		return nil, fmt.Errorf("store: lock: %w", err)
	}
	return f, nil
}
