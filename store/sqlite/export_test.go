package sqlite

import "context"

// SealRecordV4 is a record value as a program before migration 5 sealed
// it (tests build version 4 files with it).
func SealRecordV4(s *Store, kind, id string, value []byte) []byte {
	return s.box.Seal(adRecord(kind, id), value)
}

// CommitStats is what s's group commit counted: transactions committed,
// the Update calls they held, and the most calls one of them held.
func CommitStats(s *Store) (commits, calls, largest int64) {
	c := &s.commit
	return c.commits.Load(), c.calls.Load(), c.largest.Load()
}

// Queued is the number of Update calls waiting for a batch.
func Queued(s *Store) int {
	s.commit.mu.Lock()
	defer s.commit.mu.Unlock()
	return len(s.commit.queue)
}

// ExecWriter runs query on the writer connection, outside any
// transaction: per-connection settings (PRAGMA max_page_count, TEMP
// triggers) must be made there to affect Update.
func ExecWriter(s *Store, query string) error {
	_, err := s.w.ExecContext(context.Background(), query)
	return err
}

// WriterInt runs query, which returns one integer, on the writer
// connection (PRAGMA page_count).
func WriterInt(s *Store, query string) (n int, err error) {
	err = s.w.QueryRowContext(context.Background(), query).Scan(&n)
	return n, err
}
