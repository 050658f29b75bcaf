//go:build !unix

package sqlitefile

import (
	"fmt"
	"os"
)

// Lock creates the lock file; without flock, a second process is not kept
// out on this platform.
func Lock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return nil, fmt.Errorf("sqlitefile: lock: %w", err)
	}
	return f, nil
}
