package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spacepanda/spacepanda/store/sqlite"
)

// OpenOptions say where an identity's data directory is and how its store
// is unlocked.
type OpenOptions struct {
	Options
	// Passphrase unlocks the store (Argon2id); without it, the key file
	// DIR/store.key (created mode 0600 on first start) does.
	Passphrase []byte
	// Argon2 lowers the passphrase cost (tests); zero: the default.
	Argon2 sqlite.Argon2Params
}

// Open opens (or, on first start, creates) the device whose data
// directory is dir: its SQLite store DIR/store.db and, on first start, its
// identity (see New). A directory made before user ids were derived from
// keys is refused with ErrLegacyIdentity, naming it. Close the provider
// when done.
func Open(ctx context.Context, dir string, o OpenOptions) (*Provider, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("provider: data directory: %w", err)
	}
	so := sqlite.Options{Passphrase: o.Passphrase, Argon2: o.Argon2}
	if len(o.Passphrase) == 0 {
		so.KeyFile = filepath.Join(dir, "store.key")
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "store.db"), so)
	if err != nil {
		return nil, fmt.Errorf("provider: open store: %w", err)
	}
	p, err := New(ctx, st, o.Options)
	if errors.Is(err, ErrLegacyIdentity) {
		err = fmt.Errorf("%w (data directory %s)", err, dir)
	}
	if err != nil {
		return nil, errors.Join(err, st.Close())
	}
	return p, nil
}

// Close closes the provider's store.
func (p *Provider) Close() error { return p.st.Close() }
