package relay

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// pgChannel is the LISTEN/NOTIFY channel relay processes wake each other on.
const pgChannel = "spacepanda_relay"

// pgMigrationLock is the advisory lock key that serialises schema
// migrations of relays starting at once on one database.
const pgMigrationLock = 0x5350_5265_6c61_7901

// pgLanes is the number of append batches in flight per process.
const pgLanes = 4

// PostgresStore is the shared backend: several relay processes on one
// PostgreSQL database behave as one relay. Ordering is decided in the
// database (see sqlStore); wake-ups cross processes by LISTEN/NOTIFY: every
// append and welcome sends pg_notify inside its transaction (PostgreSQL
// delivers it at commit, to every listening session including ours), and
// Listen turns notifications into Events.
type PostgresStore struct {
	*sqlStore
	url string
}

var _ Notifier = (*PostgresStore)(nil)

// OpenPostgres connects to the database at url (a postgres:// URL or DSN)
// and applies pending migrations.
func OpenPostgres(ctx context.Context, url string) (*PostgresStore, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("relay: postgres: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("relay: postgres: %w", err)
	}
	s := &PostgresStore{sqlStore: &sqlStore{w: db, r: db, d: postgresDialect()}, url: url}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	// Lanes by group: several batches commit at once on their own
	// connections (the pool has 16).
	s.batch = newBatcher(s.sqlStore, pgLanes)
	return s, nil
}

func postgresDialect() dialect {
	return dialect{
		name:       "postgres",
		rebind:     questionToDollar,
		forUpdate:  " FOR UPDATE",
		skipLocked: " FOR UPDATE SKIP LOCKED",
		bulk:       true,
		isUnique: func(err error) bool {
			var pe *pgconn.PgError
			return errors.As(err, &pe) && pe.Code == "23505"
		},
		notify: func(ctx context.Context, tx *sql.Tx, ev Event) error {
			if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, pgChannel, encodeEvent(ev)); err != nil {
				return fmt.Errorf("relay: postgres: notify: %w", err)
			}
			return nil
		},
		lockMigrations: func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgMigrationLock))
			return err
		},
		types: map[string]string{"BLOB": "BYTEA", "INT": "BIGINT", "ID": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"},
	}
}

// encodeEvent: "m <hex group id> <seq>", "w <id> <recipient>", "l <seq>
// <mailbox>" or "r <device id> <user id>" (the user id last: it may hold
// spaces). User ids are at most 256 bytes and group ids 255, well under
// NOTIFY's 8000-byte payload limit.
func encodeEvent(ev Event) string {
	switch {
	case ev.Recipient != "":
		return "w " + strconv.FormatInt(ev.WelcomeID, 10) + " " + ev.Recipient
	case ev.Mailbox != "":
		return "l " + strconv.FormatInt(ev.Seq, 10) + " " + ev.Mailbox
	case ev.Revoked != nil:
		return "r " + ev.Revoked.DeviceID + " " + ev.Revoked.UserID
	}
	return "m " + hex.EncodeToString(ev.GroupID) + " " + strconv.FormatInt(ev.Seq, 10)
}

func decodeEvent(p string) (Event, bool) {
	kind, rest, ok := strings.Cut(p, " ")
	if !ok {
		return Event{}, false
	}
	a, b, ok := strings.Cut(rest, " ")
	if !ok || b == "" {
		return Event{}, false
	}
	switch kind {
	case "m":
		gid, err := hex.DecodeString(a)
		seq, err2 := strconv.ParseInt(b, 10, 64)
		if err != nil || err2 != nil || len(gid) == 0 {
			return Event{}, false
		}
		return Event{GroupID: gid, Seq: seq}, true
	case "w":
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			return Event{}, false
		}
		return Event{Recipient: b, WelcomeID: id}, true
	case "l":
		seq, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			return Event{}, false
		}
		return Event{Mailbox: b, Seq: seq}, true
	case "r":
		return Event{Revoked: &DeviceRef{UserID: b, DeviceID: a}}, true
	}
	return Event{}, false
}

// Listen holds one dedicated connection with LISTEN and calls fn for each
// notification until ctx ends. When the connection fails it calls fn with
// a zero Event (wake every waiter: notifications may have been lost),
// reconnects with backoff (up to 2 s) and listens again.
func (s *PostgresStore) Listen(ctx context.Context, fn func(Event)) error {
	backoff := 50 * time.Millisecond
	for {
		err := s.listenOnce(ctx, fn, func() { backoff = 50 * time.Millisecond })
		if ctx.Err() != nil {
			return ctx.Err()
		}
		_ = err
		fn(Event{})
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (s *PostgresStore) listenOnce(ctx context.Context, fn func(Event), connected func()) error {
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `LISTEN `+pgChannel); err != nil {
		return err
	}
	connected()
	// Anything published between the old connection's failure and this
	// LISTEN is covered by the zero Event the caller sent.
	fn(Event{})
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if ev, ok := decodeEvent(n.Payload); ok {
			fn(ev)
		}
	}
}
