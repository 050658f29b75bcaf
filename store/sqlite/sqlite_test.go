package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/spacepanda/spacepanda/store"
	"github.com/spacepanda/spacepanda/store/sqlite"
	"github.com/spacepanda/spacepanda/store/storetest"
)

var ctx = context.Background()

// fastArgon2 keeps passphrase tests quick; production uses DefaultArgon2.
var fastArgon2 = sqlite.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

func openKeyFile(tb testing.TB) store.Store {
	dir := tb.TempDir()
	s, err := sqlite.Open(ctx, filepath.Join(dir, "store.db"), sqlite.Options{KeyFile: filepath.Join(dir, "store.key")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestSuite(t *testing.T) { storetest.Run(t, openKeyFile) }

func BenchmarkRatchetWrite(b *testing.B)      { storetest.BenchmarkRatchetWrite(b, openKeyFile) }
func BenchmarkPut100KeyPackages(b *testing.B) { storetest.BenchmarkPut100KeyPackages(b, openKeyFile) }

// BenchmarkFsyncFloor is the disk's floor for a durable write: 64 bytes
// appended to a file and fsynced, in the same directory as the benchmarks'
// databases. A commit in WAL mode with synchronous=FULL costs at least one.
func BenchmarkFsyncFloor(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64)
	for b.Loop() {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}
