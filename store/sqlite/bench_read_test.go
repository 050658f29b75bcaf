package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/spacepanda/spacepanda/store"
	"github.com/spacepanda/spacepanda/store/sqlite"
)

// BenchmarkReads: the reads of a send (a channel, the records of a kind)
// on the read pool.
//
//	go test -run '^$' -bench BenchmarkReads ./store/sqlite
func BenchmarkReads(b *testing.B) {
	dir := b.TempDir()
	s, err := sqlite.Open(ctx, filepath.Join(dir, "store.db"), sqlite.Options{KeyFile: filepath.Join(dir, "k")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Update(ctx, func(tx store.Tx) error {
		return tx.PutChannel(ctx, store.Channel{ID: "c1", GroupID: []byte("g1"), Name: "n"})
	}); err != nil {
		b.Fatal(err)
	}
	if err := s.PutRecord(ctx, "contact", "u1", []byte("{}")); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := s.Channel(ctx, "c1"); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Records(ctx, "contact"); err != nil {
			b.Fatal(err)
		}
	}
}
