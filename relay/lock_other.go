//go:build !unix

package relay

import (
	"fmt"
	"os"
)

// lockFile creates the lock file; without flock, a second process is not
// kept out on this platform.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("relay: lock: %w", err)
	}
	return f, nil
}
