package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/spacepanda/spacepanda/store"
)

// migrations[i] takes the schema from version i to i+1. Append only: never
// edit a migration that has shipped.
//
// Columns marked "sealed" hold seal.Box output (version ‖ nonce ‖ AES-GCM
// ciphertext), never plaintext. Times are INTEGER nanoseconds since the Unix
// epoch, 0 for the zero time. Epochs and sequence numbers are INTEGER
// (at most 2^63-1).
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
) STRICT;

CREATE TABLE identity (
	id                    INTEGER PRIMARY KEY CHECK (id = 1),
	signature_private_key BLOB NOT NULL,    -- sealed
	signature_public_key  BLOB NOT NULL,
	credential            BLOB NOT NULL,
	cipher_suite          INTEGER NOT NULL,
	name                  TEXT NOT NULL,
	created_at            INTEGER NOT NULL
) STRICT;

CREATE TABLE key_packages (
	ref              BLOB PRIMARY KEY,
	key_package      BLOB NOT NULL,
	init_private_key BLOB NOT NULL,         -- sealed
	leaf_private_key BLOB NOT NULL,         -- sealed
	not_after        INTEGER NOT NULL,
	last_resort      INTEGER NOT NULL CHECK (last_resort IN (0, 1)),
	created_at       INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX key_packages_not_after ON key_packages (not_after);

CREATE TABLE groups (
	group_id   BLOB PRIMARY KEY,
	epoch      INTEGER NOT NULL CHECK (epoch >= 0),
	state      BLOB NOT NULL,               -- sealed
	updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE group_blobs (
	group_id BLOB NOT NULL REFERENCES groups (group_id) ON DELETE CASCADE,
	key      BLOB NOT NULL,
	value    BLOB NOT NULL,                 -- sealed
	PRIMARY KEY (group_id, key)
) STRICT, WITHOUT ROWID;

CREATE TABLE epoch_secrets (
	group_id BLOB NOT NULL REFERENCES groups (group_id) ON DELETE CASCADE,
	epoch    INTEGER NOT NULL CHECK (epoch >= 0),
	secret   BLOB NOT NULL,                 -- sealed
	PRIMARY KEY (group_id, epoch)
) STRICT, WITHOUT ROWID;

CREATE TABLE external_psks (
	psk_id BLOB PRIMARY KEY,
	secret BLOB NOT NULL                    -- sealed
) STRICT, WITHOUT ROWID;

-- No foreign key: a resumption PSK outlives its group (reinit, branch).
CREATE TABLE resumption_psks (
	group_id BLOB NOT NULL,
	epoch    INTEGER NOT NULL CHECK (epoch >= 0),
	secret   BLOB NOT NULL,                 -- sealed
	PRIMARY KEY (group_id, epoch)
) STRICT, WITHOUT ROWID;

CREATE TABLE channels (
	channel_id TEXT PRIMARY KEY,
	group_id   BLOB NOT NULL,
	name       TEXT NOT NULL,
	public     INTEGER NOT NULL CHECK (public IN (0, 1)),
	created_at INTEGER NOT NULL,
	extra      BLOB                         -- JSON or NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX channels_group_id ON channels (group_id);

CREATE TABLE messages (
	channel_id  TEXT NOT NULL REFERENCES channels (channel_id) ON DELETE CASCADE,
	seq         INTEGER NOT NULL CHECK (seq > 0),
	message_id  TEXT NOT NULL,
	sender      TEXT NOT NULL,
	sent_at     INTEGER NOT NULL,
	body        BLOB NOT NULL,              -- sealed
	reply_to    TEXT NOT NULL,
	received_at INTEGER NOT NULL,
	PRIMARY KEY (channel_id, seq),
	UNIQUE (channel_id, message_id)
) STRICT, WITHOUT ROWID;
`,
	// 2: device identities (issue 12). The identity row gains the device id,
	// the device certificate, the user's identity key pair (on the device
	// that holds it), and a display name; name now holds the user id.
	// Rows written before have an empty device_id: the provider refuses
	// them (provider.ErrLegacyIdentity), it cannot give them a user id
	// their groups would accept.
	`
ALTER TABLE identity ADD COLUMN device_id BLOB NOT NULL DEFAULT x'';
ALTER TABLE identity ADD COLUMN certificate BLOB NOT NULL DEFAULT x'';
ALTER TABLE identity ADD COLUMN private_identity BLOB;   -- sealed; NULL on a linked device
ALTER TABLE identity ADD COLUMN display_name TEXT NOT NULL DEFAULT '';

CREATE TABLE revocations (
	identity_key BLOB NOT NULL,
	device_id    BLOB NOT NULL,
	revocation   BLOB NOT NULL,             -- public: signed by the identity key
	created_at   INTEGER NOT NULL,
	PRIMARY KEY (identity_key, device_id)
) STRICT, WITHOUT ROWID;
`,
	// 3: records of the sync engine (package client): the outbox,
	// contacts, pending invitations. value is sealed; kind and id are the
	// engine's own names (message ids, user ids), seq keeps insertion order.
	`
CREATE TABLE client_records (
	seq   INTEGER PRIMARY KEY AUTOINCREMENT,
	kind  TEXT NOT NULL,
	id    TEXT NOT NULL,
	value BLOB NOT NULL,                    -- sealed
	UNIQUE (kind, id)
) STRICT;
`,
	// 4: channel names and message metadata sealed at rest.
	// channels.name and messages.sender/sent_at/reply_to are left empty
	// ('' or 0) and the values live sealed in name_sealed and meta;
	// messages.message_id holds a keyed tag of the id (uniqueness without
	// the value). Rows written before are sealed at open (sealLegacy),
	// the data key being needed.
	`
ALTER TABLE channels ADD COLUMN name_sealed BLOB;
ALTER TABLE messages ADD COLUMN meta BLOB;
`,
	// 5: client_records ids sealed at rest (message ids, user ids, channel
	// ids are the engine's record ids). id holds a keyed tag of the id
	// (the lookup key: UNIQUE (kind, id) still holds) and the id itself
	// travels inside the sealed value; id_sealed is 0 on rows written
	// before, sealed at open (sealRecords), the data key being needed.
	// kind stays in the clear: a small fixed set of the engine's names.
	// channels.extra (the engine's channel state: who removed us) moves
	// sealed to extra_sealed, likewise at open.
	`
ALTER TABLE client_records ADD COLUMN id_sealed INTEGER NOT NULL DEFAULT 0 CHECK (id_sealed IN (0, 1));
ALTER TABLE channels ADD COLUMN extra_sealed BLOB;
`,
}

// migrate brings the schema to the newest version in one transaction, or
// fails with store.ErrSchemaTooNew if the file is newer than this program.
func migrate(ctx context.Context, db *sql.DB) (err error) {
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (see dsn): one migrator at a time
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	var cur int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if cur > len(migrations) {
		return fmt.Errorf("%w: database is at version %d, this program knows up to %d", store.ErrSchemaTooNew, cur, len(migrations))
	}
	applied := map[int]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("store: migrate: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	// Every known migration not applied yet, in order; an empty slot is a
	// number reserved for another branch and is neither run nor recorded.
	for v := 1; v <= len(migrations); v++ {
		if applied[v] || migrations[v-1] == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("store: migration %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("store: migration %d: %w", v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// SchemaVersion is the schema version this program writes.
const SchemaVersion = 5
