package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/spacepanda/spacepanda/store"
	"github.com/spacepanda/spacepanda/store/internal/codec"
	"github.com/spacepanda/spacepanda/store/internal/seal"
)

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Additional data of each sealed column (see seal.Bind).
func adSigKey() seal.AD { return seal.Bind("identity", "signature_private_key") }
func adPrivID() seal.AD { return seal.Bind("identity", "private_identity") }
func adKP(col string, ref []byte) seal.AD {
	return seal.Bind("key_packages", col, ref)
}
func adGroup(gid []byte, epoch uint64) seal.AD {
	return seal.Bind("groups", "state", gid, seal.Uint64(epoch))
}
func adBlob(gid, key []byte) seal.AD { return seal.Bind("group_blobs", "value", gid, key) }
func adEpoch(gid []byte, epoch uint64) seal.AD {
	return seal.Bind("epoch_secrets", "secret", gid, seal.Uint64(epoch))
}
func adExtPSK(id []byte) seal.AD { return seal.Bind("external_psks", "secret", id) }
func adResPSK(gid []byte, epoch uint64) seal.AD {
	return seal.Bind("resumption_psks", "secret", gid, seal.Uint64(epoch))
}
func adName(channelID string) seal.AD { return seal.Bind("channels", "name", []byte(channelID)) }
func adMeta(channelID string, seq uint64) seal.AD {
	return seal.Bind("messages", "meta", []byte(channelID), seal.Uint64(seq))
}
func adMessageID(channelID string) seal.AD {
	return seal.Bind("messages", "message_id", []byte(channelID))
}

// messageMeta is what a message's row holds sealed beside its body.
type messageMeta struct {
	ID      string `json:"id"`
	Sender  string `json:"sender"`
	SentAt  int64  `json:"sent_at"`
	ReplyTo string `json:"reply_to,omitempty"`
	RecvAt  int64  `json:"received_at"`
}

// messageIDTag is the stored form of a message id: a keyed tag, so the
// UNIQUE (channel_id, message_id) constraint holds without the id.
func messageIDTag(box *seal.Box, channelID, id string) string {
	return hex.EncodeToString(box.Tag(adMessageID(channelID), []byte(id)))
}

func adBody(channelID string, seq uint64) seal.AD {
	return seal.Bind("messages", "body", []byte(channelID), seal.Uint64(seq))
}

// reader implements store.Reader on the read pool (Store) or the writer's
// transaction (tx).
type reader struct {
	q     querier
	box   *seal.Box
	check func(context.Context) error
}

func (r reader) open(what string, ad seal.AD, sealed []byte) ([]byte, error) {
	pt, err := r.box.Open(ad, sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", store.ErrCorrupt, what)
	}
	return pt, nil
}

// row runs a one-row query; sql.ErrNoRows becomes notFound.
func (r reader) row(ctx context.Context, notFound error, query string, args []any, dest ...any) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	err := r.q.QueryRowContext(ctx, query, args...).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound
	}
	if err != nil {
		return fmt.Errorf("store: query: %w", err)
	}
	return nil
}

// each runs a query and calls fn for every row.
func (r reader) each(ctx context.Context, query string, args []any, fn func(*sql.Rows) error) error {
	if err := r.check(ctx); err != nil {
		return err
	}
	rows, err := r.q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("store: query: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: query: %w", err)
	}
	return nil
}

func (r reader) Identity(ctx context.Context) (store.Identity, error) {
	var id store.Identity
	var sealed, sealedPriv []byte
	var created int64
	err := r.row(ctx, store.ErrIdentityNotFound,
		`SELECT signature_private_key, signature_public_key, credential, cipher_suite, name, created_at,
			device_id, certificate, private_identity, display_name FROM identity WHERE id = 1`, nil,
		&sealed, &id.SignaturePublicKey, &id.Credential, &id.CipherSuite, &id.UserID, &created,
		&id.DeviceID, &id.Certificate, &sealedPriv, &id.DisplayName)
	if err != nil {
		return store.Identity{}, err
	}
	if id.SignaturePrivateKey, err = r.open("identity", adSigKey(), sealed); err != nil {
		return store.Identity{}, err
	}
	if sealedPriv != nil {
		if id.PrivateIdentity, err = r.open("identity", adPrivID(), sealedPriv); err != nil {
			return store.Identity{}, err
		}
	}
	id.CreatedAt = codec.FromTime(created)
	return id, nil
}

func (r reader) Revocations(ctx context.Context) ([]store.Revocation, error) {
	out := []store.Revocation{}
	err := r.each(ctx, `SELECT identity_key, device_id, revocation, created_at FROM revocations ORDER BY identity_key, device_id`, nil,
		func(rows *sql.Rows) error {
			var rv store.Revocation
			var created int64
			if err := rows.Scan(&rv.IdentityKey, &rv.DeviceID, &rv.Revocation, &created); err != nil {
				return err
			}
			rv.CreatedAt = codec.FromTime(created)
			out = append(out, rv)
			return nil
		})
	return out, err
}

func (r reader) KeyPackage(ctx context.Context, ref []byte) (store.KeyPackage, error) {
	if err := codec.CheckID("key package ref", ref); err != nil {
		return store.KeyPackage{}, err
	}
	kp := store.KeyPackage{Ref: slices.Clone(ref)}
	var initSealed, leafSealed []byte
	var notAfter, created int64
	err := r.row(ctx, store.ErrKeyPackageNotFound,
		`SELECT key_package, init_private_key, leaf_private_key, not_after, last_resort, created_at FROM key_packages WHERE ref = ?`, []any{ref},
		&kp.KeyPackage, &initSealed, &leafSealed, &notAfter, &kp.LastResort, &created)
	if err != nil {
		return store.KeyPackage{}, err
	}
	if kp.InitPrivateKey, err = r.open("key package", adKP("init_private_key", ref), initSealed); err != nil {
		return store.KeyPackage{}, err
	}
	if kp.LeafPrivateKey, err = r.open("key package", adKP("leaf_private_key", ref), leafSealed); err != nil {
		return store.KeyPackage{}, err
	}
	kp.NotAfter, kp.CreatedAt = codec.FromTime(notAfter), codec.FromTime(created)
	return kp, nil
}

func (r reader) CountKeyPackages(ctx context.Context, now time.Time) (store.KeyPackageCount, error) {
	var c store.KeyPackageCount
	err := r.each(ctx, `SELECT last_resort, COUNT(*) FROM key_packages WHERE not_after >= ? GROUP BY last_resort`,
		[]any{codec.Time(now)}, func(rows *sql.Rows) error {
			var lastResort bool
			var n int
			if err := rows.Scan(&lastResort, &n); err != nil {
				return err
			}
			if lastResort {
				c.LastResort = n
			} else {
				c.OneTime = n
			}
			return nil
		})
	return c, err
}

func (r reader) Group(ctx context.Context, groupID []byte) (store.Group, error) {
	if err := codec.CheckID("group id", groupID); err != nil {
		return store.Group{}, err
	}
	g := store.Group{ID: slices.Clone(groupID)}
	var sealed []byte
	var updated int64
	err := r.row(ctx, store.ErrGroupNotFound, `SELECT epoch, state, updated_at FROM groups WHERE group_id = ?`, []any{groupID},
		&g.Epoch, &sealed, &updated)
	if err != nil {
		return store.Group{}, err
	}
	if g.State, err = r.open("group state", adGroup(groupID, g.Epoch), sealed); err != nil {
		return store.Group{}, err
	}
	g.UpdatedAt = codec.FromTime(updated)
	return g, nil
}

func (r reader) Groups(ctx context.Context) ([]store.GroupSummary, error) {
	out := []store.GroupSummary{}
	err := r.each(ctx, `SELECT group_id, epoch, updated_at FROM groups ORDER BY group_id`, nil, func(rows *sql.Rows) error {
		var g store.GroupSummary
		var updated int64
		if err := rows.Scan(&g.ID, &g.Epoch, &updated); err != nil {
			return err
		}
		g.UpdatedAt = codec.FromTime(updated)
		out = append(out, g)
		return nil
	})
	return out, err
}

func (r reader) GroupBlob(ctx context.Context, groupID, key []byte) ([]byte, error) {
	if err := codec.CheckIDs(groupID, key); err != nil {
		return nil, err
	}
	var sealed []byte
	err := r.row(ctx, store.ErrGroupBlobNotFound, `SELECT value FROM group_blobs WHERE group_id = ? AND key = ?`, []any{groupID, key}, &sealed)
	if err != nil {
		return nil, err
	}
	return r.open("group blob", adBlob(groupID, key), sealed)
}

func (r reader) GroupBlobs(ctx context.Context, groupID []byte) ([]store.Blob, error) {
	if err := codec.CheckID("group id", groupID); err != nil {
		return nil, err
	}
	out := []store.Blob{}
	err := r.each(ctx, `SELECT key, value FROM group_blobs WHERE group_id = ? ORDER BY key`, []any{groupID}, func(rows *sql.Rows) error {
		var b store.Blob
		var sealed []byte
		if err := rows.Scan(&b.Key, &sealed); err != nil {
			return err
		}
		var err error
		if b.Value, err = r.open("group blob", adBlob(groupID, b.Key), sealed); err != nil {
			return err
		}
		out = append(out, b)
		return nil
	})
	return out, err
}

func (r reader) EpochSecret(ctx context.Context, groupID []byte, epoch uint64) ([]byte, error) {
	if err := codec.CheckID("group id", groupID); err != nil {
		return nil, err
	}
	if epoch > store.MaxEpoch {
		return nil, store.ErrEpochSecretNotFound
	}
	var sealed []byte
	err := r.row(ctx, store.ErrEpochSecretNotFound, `SELECT secret FROM epoch_secrets WHERE group_id = ? AND epoch = ?`,
		[]any{groupID, int64(epoch)}, &sealed)
	if err != nil {
		return nil, err
	}
	return r.open("epoch secret", adEpoch(groupID, epoch), sealed)
}

func (r reader) ExternalPSK(ctx context.Context, pskID []byte) ([]byte, error) {
	if err := codec.CheckID("psk id", pskID); err != nil {
		return nil, err
	}
	var sealed []byte
	if err := r.row(ctx, store.ErrPSKNotFound, `SELECT secret FROM external_psks WHERE psk_id = ?`, []any{pskID}, &sealed); err != nil {
		return nil, err
	}
	return r.open("external psk", adExtPSK(pskID), sealed)
}

func (r reader) ResumptionPSK(ctx context.Context, groupID []byte, epoch uint64) ([]byte, error) {
	if err := codec.CheckID("group id", groupID); err != nil {
		return nil, err
	}
	if epoch > store.MaxEpoch {
		return nil, store.ErrPSKNotFound
	}
	var sealed []byte
	err := r.row(ctx, store.ErrPSKNotFound, `SELECT secret FROM resumption_psks WHERE group_id = ? AND epoch = ?`,
		[]any{groupID, int64(epoch)}, &sealed)
	if err != nil {
		return nil, err
	}
	return r.open("resumption psk", adResPSK(groupID, epoch), sealed)
}

const channelCols = `channel_id, group_id, name, public, created_at, extra, name_sealed, extra_sealed`

func adExtra(channelID string) seal.AD { return seal.Bind("channels", "extra", []byte(channelID)) }

func (r reader) scanChannel(sc interface{ Scan(...any) error }) (store.Channel, error) {
	var c store.Channel
	var created int64
	var extra, sealedName, sealedExtra []byte
	if err := sc.Scan(&c.ID, &c.GroupID, &c.Name, &c.Public, &created, &extra, &sealedName, &sealedExtra); err != nil {
		return store.Channel{}, err
	}
	if sealedExtra != nil {
		x, err := r.open("channel extra", adExtra(c.ID), sealedExtra)
		if err != nil {
			return store.Channel{}, err
		}
		extra = x
	}
	if sealedName != nil {
		name, err := r.open("channel name", adName(c.ID), sealedName)
		if err != nil {
			return store.Channel{}, err
		}
		c.Name = string(name)
	}
	c.CreatedAt = codec.FromTime(created)
	if len(extra) > 0 {
		c.Extra = extra
	}
	return c, nil
}

func (r reader) Channel(ctx context.Context, channelID string) (store.Channel, error) {
	if err := codec.CheckString("channel id", channelID); err != nil {
		return store.Channel{}, err
	}
	if err := r.check(ctx); err != nil {
		return store.Channel{}, err
	}
	c, err := r.scanChannel(r.q.QueryRowContext(ctx, `SELECT `+channelCols+` FROM channels WHERE channel_id = ?`, channelID))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Channel{}, store.ErrChannelNotFound
	}
	if err != nil {
		return store.Channel{}, fmt.Errorf("store: query: %w", err)
	}
	return c, nil
}

func (r reader) Channels(ctx context.Context) ([]store.Channel, error) {
	out := []store.Channel{}
	err := r.each(ctx, `SELECT `+channelCols+` FROM channels ORDER BY channel_id`, nil, func(rows *sql.Rows) error {
		c, err := r.scanChannel(rows)
		if err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

const messageCols = `seq, message_id, sender, sent_at, body, reply_to, received_at, meta`

func (r reader) messages(ctx context.Context, channelID, query string, args []any) ([]store.Message, error) {
	out := []store.Message{}
	err := r.each(ctx, query, args, func(rows *sql.Rows) error {
		m := store.Message{ChannelID: channelID}
		var sealed, sealedMeta []byte
		var sent, received int64
		if err := rows.Scan(&m.Seq, &m.ID, &m.Sender, &sent, &sealed, &m.ReplyTo, &received, &sealedMeta); err != nil {
			return err
		}
		var err error
		if m.Body, err = r.open("message body", adBody(channelID, m.Seq), sealed); err != nil {
			return err
		}
		if sealedMeta != nil {
			pt, err := r.open("message metadata", adMeta(channelID, m.Seq), sealedMeta)
			if err != nil {
				return err
			}
			var mm messageMeta
			if json.Unmarshal(pt, &mm) != nil {
				return fmt.Errorf("%w: message metadata", store.ErrCorrupt)
			}
			m.ID, m.Sender, sent, m.ReplyTo, received = mm.ID, mm.Sender, mm.SentAt, mm.ReplyTo, mm.RecvAt
		}
		m.Timestamp, m.ReceivedAt = codec.FromTime(sent), codec.FromTime(received)
		out = append(out, m)
		return nil
	})
	return out, err
}

func (r reader) Messages(ctx context.Context, channelID string, after uint64, limit int) ([]store.Message, error) {
	if err := codec.CheckLimit(limit); err != nil {
		return nil, err
	}
	return r.messages(ctx, channelID,
		`SELECT `+messageCols+` FROM messages WHERE channel_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
		[]any{channelID, codec.Clamp(after), limit})
}

func (r reader) MessagesBefore(ctx context.Context, channelID string, before uint64, limit int) ([]store.Message, error) {
	if err := codec.CheckLimit(limit); err != nil {
		return nil, err
	}
	if before == 0 {
		before = store.MaxEpoch
	}
	out, err := r.messages(ctx, channelID,
		`SELECT `+messageCols+` FROM messages WHERE channel_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
		[]any{channelID, codec.Clamp(before), limit})
	slices.Reverse(out)
	return out, err
}

// tx implements store.Tx on the writer's transaction.
type tx struct {
	reader
	tx *sql.Tx
	q  txStmts // tx through the writer's prepared statements
	// chans is the Store's channel cache, set aside from the first
	// channel write (writeChannels) until the transaction ends.
	chans         *chanCache
	wroteChannels bool
	// seqs is the batch's part of the history seqs, assigned this call's
	// (seqcache.go).
	seqs     *seqBatch
	assigned map[string]uint64
	done     atomic.Bool
	now      func() time.Time
}

func (t *tx) checkCtx(ctx context.Context) error {
	if t.done.Load() {
		return store.ErrTxDone
	}
	return t.q.check(ctx) // and the transaction is still there
}

func (t *tx) stamp(tm time.Time) int64 {
	if tm.IsZero() {
		tm = t.now()
	}
	return codec.Time(tm)
}

// writeChannels sets the Store's channel cache aside until the end of the
// transaction (Update ends it): a read racing the commit must neither
// fill it with the row as it was nor find a row filled so.
func (t *tx) writeChannels() {
	t.channelsWrite()
	if !t.wroteChannels {
		t.wroteChannels = true
		t.chans.beginWrite()
	}
}

// exec runs one statement and returns the number of rows it changed.
func (t *tx) exec(ctx context.Context, query string, args ...any) (int, error) {
	if err := t.checkCtx(ctx); err != nil {
		return 0, err
	}
	res, err := t.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// constraint maps SQLite constraint violations to store errors; other
// errors are wrapped as they are.
func constraint(err error, onFK error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return store.ErrExists
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			if onFK != nil {
				return onFK
			}
		}
	}
	if errors.Is(err, store.ErrTxDone) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("store: write: %w", err)
}

func (t *tx) PutIdentity(ctx context.Context, id store.Identity) error {
	if err := id.Validate(); err != nil {
		return err
	}
	_, err := t.exec(ctx, `INSERT INTO identity (id, signature_private_key, signature_public_key, credential, cipher_suite, name, created_at,
			device_id, certificate, private_identity, display_name)
		VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.box.Seal(adSigKey(), id.SignaturePrivateKey), id.SignaturePublicKey, nonNil(id.Credential), id.CipherSuite, id.UserID, t.stamp(id.CreatedAt),
		id.DeviceID, nonNil(id.Certificate), t.sealPrivID(id.PrivateIdentity), id.DisplayName)
	if err != nil {
		if err = constraint(err, nil); errors.Is(err, store.ErrExists) {
			return fmt.Errorf("identity: %w", err)
		}
		return err
	}
	return nil
}

// sealPrivID seals a private identity, or gives NULL for none.
func (t *tx) sealPrivID(p []byte) any {
	if len(p) == 0 {
		return nil
	}
	return t.box.Seal(adPrivID(), p)
}

func (t *tx) UpdateIdentity(ctx context.Context, id store.Identity) error {
	if err := id.Validate(); err != nil {
		return err
	}
	n, err := t.exec(ctx, `UPDATE identity SET name = ?, credential = ?, certificate = ?, private_identity = ?, display_name = ?
		WHERE id = 1 AND signature_public_key = ? AND cipher_suite = ? AND device_id = ?`,
		id.UserID, nonNil(id.Credential), nonNil(id.Certificate), t.sealPrivID(id.PrivateIdentity), id.DisplayName,
		id.SignaturePublicKey, id.CipherSuite, id.DeviceID)
	if err != nil {
		return constraint(err, nil)
	}
	if n == 1 {
		return nil
	}
	if _, err := t.Identity(ctx); err != nil {
		return err
	}
	return fmt.Errorf("%w: identity: the signature key, cipher suite and device id never change", store.ErrInvalid)
}

func (t *tx) PutRevocation(ctx context.Context, r store.Revocation) error {
	if err := r.Validate(); err != nil {
		return err
	}
	_, err := t.exec(ctx, `INSERT INTO revocations (identity_key, device_id, revocation, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (identity_key, device_id) DO NOTHING`,
		r.IdentityKey, r.DeviceID, r.Revocation, t.stamp(r.CreatedAt))
	if err != nil {
		return constraint(err, nil)
	}
	return nil
}

func (t *tx) PutKeyPackages(ctx context.Context, kps ...store.KeyPackage) (err error) {
	for _, kp := range kps {
		if err := kp.Validate(); err != nil {
			return err
		}
	}
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	// A savepoint makes the batch all-or-nothing even if the caller ignores
	// the error and commits.
	if _, err := t.q.ExecContext(ctx, `SAVEPOINT put_key_packages`); err != nil {
		return constraint(err, nil)
	}
	// Past the check above, statements run without ctx's cancellation, as
	// txStmts runs them: interrupting an INSERT makes SQLite roll back the
	// whole transaction, which other Update calls share (groupcommit.go).
	octx := ctx
	ctx = context.WithoutCancel(ctx)
	defer func() {
		if err != nil {
			t.tx.ExecContext(ctx, `ROLLBACK TO put_key_packages`)
		}
		t.tx.ExecContext(ctx, `RELEASE put_key_packages`)
	}()
	stmt, err := t.tx.PrepareContext(ctx, `INSERT INTO key_packages (ref, key_package, init_private_key, leaf_private_key, not_after, last_resort, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return constraint(err, nil)
	}
	defer stmt.Close()
	for _, kp := range kps {
		if err := octx.Err(); err != nil {
			return err
		}
		_, err := stmt.ExecContext(ctx, kp.Ref, kp.KeyPackage,
			t.box.Seal(adKP("init_private_key", kp.Ref), kp.InitPrivateKey),
			t.box.Seal(adKP("leaf_private_key", kp.Ref), kp.LeafPrivateKey),
			codec.Time(kp.NotAfter), kp.LastResort, t.stamp(kp.CreatedAt))
		if err != nil {
			if err = constraint(err, nil); errors.Is(err, store.ErrExists) {
				return fmt.Errorf("key package: %w", err)
			}
			return err
		}
	}
	return nil
}

func (t *tx) ConsumeKeyPackage(ctx context.Context, ref []byte) error {
	if err := codec.CheckID("key package ref", ref); err != nil {
		return err
	}
	var lastResort bool
	if err := t.row(ctx, store.ErrKeyPackageNotFound, `SELECT last_resort FROM key_packages WHERE ref = ?`, []any{ref}, &lastResort); err != nil {
		return err
	}
	if lastResort {
		return nil
	}
	_, err := t.exec(ctx, `DELETE FROM key_packages WHERE ref = ?`, ref)
	return wrap(err)
}

func (t *tx) PruneKeyPackages(ctx context.Context, now time.Time) (int, error) {
	n, err := t.exec(ctx, `DELETE FROM key_packages WHERE not_after < ?`, codec.Time(now))
	return n, wrap(err)
}

func (t *tx) TrimKeyPackages(ctx context.Context, keepOneTime, keepLastResort int) (int, error) {
	total := 0
	for _, c := range []struct {
		lastResort bool
		keep       int
	}{{false, max(keepOneTime, 0)}, {true, max(keepLastResort, 0)}} {
		n, err := t.exec(ctx, `DELETE FROM key_packages WHERE last_resort = ? AND ref NOT IN
			(SELECT ref FROM key_packages WHERE last_resort = ? ORDER BY created_at DESC, ref DESC LIMIT ?)`, c.lastResort, c.lastResort, c.keep)
		if err != nil {
			return total, wrap(err)
		}
		total += n
	}
	return total, nil
}

func (t *tx) PutGroup(ctx context.Context, g store.Group) error {
	if err := g.Validate(); err != nil {
		return err
	}
	var old uint64
	err := t.row(ctx, store.ErrGroupNotFound, `SELECT epoch FROM groups WHERE group_id = ?`, []any{g.ID}, &old)
	switch {
	case err == nil && g.Epoch < old:
		return store.ErrEpochRegression
	case err != nil && !errors.Is(err, store.ErrGroupNotFound):
		return err
	}
	// Upsert, never INSERT OR REPLACE: a replace deletes the row and would
	// cascade to the group's blobs and epoch secrets.
	_, err = t.exec(ctx, `INSERT INTO groups (group_id, epoch, state, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (group_id) DO UPDATE SET epoch = excluded.epoch, state = excluded.state, updated_at = excluded.updated_at`,
		g.ID, int64(g.Epoch), t.box.Seal(adGroup(g.ID, g.Epoch), g.State), t.stamp(g.UpdatedAt))
	return wrap(err)
}

func (t *tx) DeleteGroup(ctx context.Context, groupID []byte) error {
	if err := codec.CheckID("group id", groupID); err != nil {
		return err
	}
	return deleted(t.exec(ctx, `DELETE FROM groups WHERE group_id = ?`, groupID))(store.ErrGroupNotFound)
}

func (t *tx) PutGroupBlob(ctx context.Context, groupID, key, value []byte) error {
	if err := codec.CheckIDs(groupID, key); err != nil {
		return err
	}
	_, err := t.exec(ctx, `INSERT INTO group_blobs (group_id, key, value) VALUES (?, ?, ?)
		ON CONFLICT (group_id, key) DO UPDATE SET value = excluded.value`,
		groupID, key, t.box.Seal(adBlob(groupID, key), value))
	if err != nil {
		return constraint(err, store.ErrGroupNotFound)
	}
	return nil
}

func (t *tx) DeleteGroupBlob(ctx context.Context, groupID, key []byte) error {
	if err := codec.CheckIDs(groupID, key); err != nil {
		return err
	}
	return deleted(t.exec(ctx, `DELETE FROM group_blobs WHERE group_id = ? AND key = ?`, groupID, key))(store.ErrGroupBlobNotFound)
}

func (t *tx) PutEpochSecret(ctx context.Context, groupID []byte, epoch uint64, secret []byte) error {
	if err := codec.CheckID("group id", groupID); err != nil {
		return err
	}
	if err := codec.CheckEpoch(epoch); err != nil {
		return err
	}
	_, err := t.exec(ctx, `INSERT INTO epoch_secrets (group_id, epoch, secret) VALUES (?, ?, ?)
		ON CONFLICT (group_id, epoch) DO UPDATE SET secret = excluded.secret`,
		groupID, int64(epoch), t.box.Seal(adEpoch(groupID, epoch), secret))
	if err != nil {
		return constraint(err, store.ErrGroupNotFound)
	}
	return nil
}

func (t *tx) PruneEpochSecrets(ctx context.Context, groupID []byte, before uint64) (int, error) {
	if err := codec.CheckID("group id", groupID); err != nil {
		return 0, err
	}
	n, err := t.exec(ctx, `DELETE FROM epoch_secrets WHERE group_id = ? AND epoch < ?`, groupID, codec.Clamp(before))
	return n, wrap(err)
}

func (t *tx) PutExternalPSK(ctx context.Context, pskID, secret []byte) error {
	if err := codec.CheckID("psk id", pskID); err != nil {
		return err
	}
	_, err := t.exec(ctx, `INSERT INTO external_psks (psk_id, secret) VALUES (?, ?)
		ON CONFLICT (psk_id) DO UPDATE SET secret = excluded.secret`,
		pskID, t.box.Seal(adExtPSK(pskID), secret))
	return wrap(err)
}

func (t *tx) DeleteExternalPSK(ctx context.Context, pskID []byte) error {
	if err := codec.CheckID("psk id", pskID); err != nil {
		return err
	}
	return deleted(t.exec(ctx, `DELETE FROM external_psks WHERE psk_id = ?`, pskID))(store.ErrPSKNotFound)
}

func (t *tx) PutResumptionPSK(ctx context.Context, groupID []byte, epoch uint64, secret []byte) error {
	if err := codec.CheckID("group id", groupID); err != nil {
		return err
	}
	if err := codec.CheckEpoch(epoch); err != nil {
		return err
	}
	_, err := t.exec(ctx, `INSERT INTO resumption_psks (group_id, epoch, secret) VALUES (?, ?, ?)
		ON CONFLICT (group_id, epoch) DO UPDATE SET secret = excluded.secret`,
		groupID, int64(epoch), t.box.Seal(adResPSK(groupID, epoch), secret))
	return wrap(err)
}

func (t *tx) PruneResumptionPSKs(ctx context.Context, groupID []byte, before uint64) (int, error) {
	if err := codec.CheckID("group id", groupID); err != nil {
		return 0, err
	}
	n, err := t.exec(ctx, `DELETE FROM resumption_psks WHERE group_id = ? AND epoch < ?`, groupID, codec.Clamp(before))
	return n, wrap(err)
}

func (t *tx) PutChannel(ctx context.Context, c store.Channel) error {
	if err := c.Validate(); err != nil {
		return err
	}
	var extra any // sealed (migration 5: the channel's state names who removed us); NULL when empty
	if len(c.Extra) > 0 {
		extra = t.box.Seal(adExtra(c.ID), c.Extra)
	}
	// Upsert, never INSERT OR REPLACE (which would cascade to the history).
	t.writeChannels()
	_, err := t.exec(ctx, `INSERT INTO channels (`+channelCols+`) VALUES (?, ?, '', ?, ?, NULL, ?, ?)
		ON CONFLICT (channel_id) DO UPDATE SET group_id = excluded.group_id, name = '', name_sealed = excluded.name_sealed,
			public = excluded.public, created_at = excluded.created_at, extra = NULL, extra_sealed = excluded.extra_sealed`,
		c.ID, c.GroupID, c.Public, t.stamp(c.CreatedAt), t.box.Seal(adName(c.ID), []byte(c.Name)), extra)
	return wrap(err)
}

func (t *tx) DeleteChannel(ctx context.Context, channelID string) error {
	if err := codec.CheckString("channel id", channelID); err != nil {
		return err
	}
	t.writeChannels()
	return deleted(t.exec(ctx, `DELETE FROM channels WHERE channel_id = ?`, channelID))(store.ErrChannelNotFound)
}

func (t *tx) AppendMessage(ctx context.Context, m store.Message) (uint64, error) {
	if err := m.Validate(); err != nil {
		return 0, err
	}
	seq, err := t.nextSeq(ctx, m.ChannelID)
	if err != nil {
		return 0, err
	}
	meta, err := json.Marshal(messageMeta{ID: m.ID, Sender: m.Sender, SentAt: codec.Time(m.Timestamp), ReplyTo: m.ReplyTo, RecvAt: t.stamp(m.ReceivedAt)})
	if err != nil {
		return 0, err
	}
	_, err = t.exec(ctx, `INSERT INTO messages (channel_id, `+messageCols+`) VALUES (?, ?, ?, '', 0, ?, '', 0, ?)`,
		m.ChannelID, int64(seq), messageIDTag(t.box, m.ChannelID, m.ID),
		t.box.Seal(adBody(m.ChannelID, seq), m.Body), t.box.Seal(adMeta(m.ChannelID, seq), meta))
	if err != nil {
		if err = constraint(err, store.ErrChannelNotFound); errors.Is(err, store.ErrExists) {
			return 0, fmt.Errorf("message: %w", err)
		}
		return 0, err
	}
	t.appended(m.ChannelID, seq)
	return seq, nil
}

// wrap wraps a write error, passing nil through.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	return constraint(err, nil)
}

// deleted turns a DELETE's (rows, err) into notFound when no row went.
func deleted(n int, err error) func(notFound error) error {
	return func(notFound error) error {
		if err != nil {
			return wrap(err)
		}
		if n == 0 {
			return notFound
		}
		return nil
	}
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
