package relay

import "context"

// Ping checks that the database answers a query (readers and, on SQLite,
// the writer's file).
func (s *sqlStore) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return s.dbErr("ping", err)
	}
	return nil
}

// Sizes counts what the relay holds (for /metrics). The log is summed from
// the groups' counters (migration 5), not read.
func (s *sqlStore) Sizes(ctx context.Context) (Sizes, error) {
	var z Sizes
	err := s.r.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM groups),
		(SELECT COALESCE(SUM(log_entries), 0) FROM groups),
		(SELECT COALESCE(SUM(log_bytes), 0) FROM groups),
		(SELECT COUNT(*) FROM welcomes),
		(SELECT COALESCE(SUM(LENGTH(welcome) + COALESCE(LENGTH(ratchet_tree), 0)), 0) FROM welcomes),
		(SELECT COUNT(*) FROM key_packages),
		(SELECT COUNT(*) FROM users),
		(SELECT COUNT(*) FROM devices)`).Scan(&z.Groups, &z.Messages, &z.MessageBytes, &z.Welcomes, &z.WelcomeBytes, &z.KeyPackages, &z.Users, &z.Devices)
	if err != nil {
		return Sizes{}, s.dbErr("sizes", err)
	}
	return z, nil
}
