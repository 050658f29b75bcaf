package relay

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// The PostgreSQL append batch in a fixed number of round trips. The
// general path (appendTx) runs about five statements per group of a
// batch, each a round trip to the server: a loaded relay spent most of
// its time waiting for them, several batches queued behind each. A batch
// of application messages and proposals without hooks (nearly all the
// traffic; commits and verified handshakes take the general path) runs
// instead:
//
//  1. one SELECT ... FOR UPDATE locking every group of the batch, in group
//     id order (bytea order is bytewise, as bytesCompare: every
//     transaction that locks several groups takes them in this order, so
//     none deadlock);
//  2. one SELECT of the senders' readers rows that memberCache does not
//     hold for the epoch just read (a statement after the lock: it sees
//     every commit that changed them);
//  3. the decisions, in Go, with the rules of appendOne (checkEntry);
//  4. one statement that inserts every accepted entry, writes each group's
//     row once (last_seq and the log counters) and sends each group's
//     notification, from arrays (unnest);
//
// then the commit. The decision stays in the database's locked rows, so
// the one-commit-per-epoch rule and the gapless sequence numbers are
// those of the general path.
//
// The statements go to the server in two pipelines on one connection
// (pgx batches): BEGIN with the lock (1), then the write (4) with the
// COMMIT, so a batch costs two round trips (three when (2) must ask the
// server) instead of five. On a loaded machine each round trip waits for
// the server process to be scheduled, and that wait, not the work, was
// most of an append's time.

const pgLockGroupsQuery = `SELECT group_id, epoch, last_seq FROM groups WHERE group_id = ANY($1::bytea[]) ORDER BY group_id FOR UPDATE`

const pgReadersQuery = `SELECT r.group_id, r.user_id, r.from_seq, r.to_seq
	FROM readers r JOIN unnest($1::bytea[], $2::text[]) AS q (g, u) ON r.group_id = q.g AND r.user_id = q.u`

const pgWriteBatchQuery = `WITH ins AS (
	INSERT INTO messages (group_id, seq, kind, epoch, sender, sender_device, data, received_at)
	SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bytea[], $8::bigint[])
), upd AS (
	UPDATE groups g SET last_seq = u.last, log_entries = g.log_entries + u.n, log_bytes = g.log_bytes + u.b
	FROM unnest($9::bytea[], $10::bigint[], $11::bigint[], $12::bigint[]) AS u (id, last, n, b)
	WHERE g.group_id = u.id
)
SELECT pg_notify($13, ev) FROM unnest($14::text[]) AS ev`

// bulkable reports whether entries can take appendBulk.
func (s *sqlStore) bulkable(entries []appendReq) bool {
	if !s.d.bulk {
		return false
	}
	for _, e := range entries {
		if e.hook != nil || e.m.Kind == "commit" {
			return false
		}
	}
	return true
}

// appendBulk is appendTx for a bulkable batch (see above), on a
// connection of the pool used directly through pgx.
func (s *sqlStore) appendBulk(ctx context.Context, entries []appendReq) ([]appendRes, []*groupTx, error) {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return nil, nil, s.dbErr("append", err)
	}
	defer conn.Close()
	var res []appendRes
	var groups []*groupTx
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("relay: postgres: driver connection is %T", dc)
		}
		pc := sc.Conn()
		var err error
		res, groups, err = s.appendPipelined(ctx, pc, entries)
		if err != nil && pc.PgConn().TxStatus() != 'I' { // not idle: in a (failed) transaction
			if _, rerr := pc.Exec(ctx, "ROLLBACK"); rerr != nil {
				// The connection is in an unknown state: the pool must
				// not hand it out again.
				return errors.Join(err, driver.ErrBadConn)
			}
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	slices.SortFunc(groups, func(a, b *groupTx) int { return bytesCompare(a.id, b.id) })
	return res, groups, nil
}

// appendPipelined runs the batch's transaction on pc; on an error the
// transaction may still be open (the caller rolls it back).
func (s *sqlStore) appendPipelined(ctx context.Context, pc *pgx.Conn, entries []appendReq) ([]appendRes, []*groupTx, error) {
	res := make([]appendRes, len(entries))
	var groups []*groupTx
	byID := map[string]*groupTx{}
	var ids [][]byte
	for _, e := range entries {
		if _, ok := byID[string(e.m.GroupID)]; !ok {
			byID[string(e.m.GroupID)] = nil
			ids = append(ids, e.m.GroupID)
		}
	}
	// Round trip 1: BEGIN and the lock.
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(pgLockGroupsQuery, ids)
	br := pc.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return nil, nil, s.dbErr("append", err)
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, nil, s.dbErr("append", err)
	}
	for rows.Next() {
		g := &groupTx{access: map[string]Access{}}
		if err := rows.Scan(&g.id, &g.epoch, &g.last); err != nil {
			rows.Close()
			br.Close()
			return nil, nil, s.dbErr("append", err)
		}
		g.first, g.lockedEpoch = g.last, g.epoch
		byID[string(g.id)] = g
		groups = append(groups, g)
	}
	rows.Close()
	if err := errors.Join(rows.Err(), br.Close()); err != nil {
		return nil, nil, s.dbErr("append", err)
	}
	if err := s.bulkAccess(ctx, pc, entries, byID); err != nil {
		return nil, nil, err
	}
	var (
		mg, md         [][]byte
		mseq, mep, mat []int64
		mkind, ms, msd []string
	)
	for i, e := range entries {
		m := e.m
		g := byID[string(m.GroupID)]
		if g == nil {
			res[i].err = fmt.Errorf("%w: group", ErrNotFound)
			continue
		}
		current := uint64(g.epoch)
		a, ok := g.access[m.Sender]
		if !ok {
			res[i] = appendRes{cur: current, err: fmt.Errorf("%w: not a member of the group", ErrForbidden)}
			continue
		}
		if err := checkEntry(a, m, current); err != nil {
			res[i] = appendRes{cur: current, err: err}
			continue
		}
		g.last++
		g.bytes += int64(len(m.Data))
		res[i] = appendRes{seq: g.last, cur: current}
		mg, mseq, mkind, mep = append(mg, m.GroupID), append(mseq, g.last), append(mkind, m.Kind), append(mep, int64(m.Epoch))
		ms, msd, md, mat = append(ms, m.Sender), append(msd, m.SenderDevice), append(md, m.Data), append(mat, nanos(m.ReceivedAt))
	}
	if len(mg) == 0 {
		if _, err := pc.Exec(ctx, "ROLLBACK"); err != nil { // nothing written
			return nil, nil, s.dbErr("append", err)
		}
		return res, groups, nil
	}
	var (
		gid           [][]byte
		glast, gn, gb []int64
		evs           []string
	)
	for _, g := range groups {
		if g.last == g.first {
			continue
		}
		gid, glast, gn, gb = append(gid, g.id), append(glast, g.last), append(gn, g.last-g.first), append(gb, g.bytes)
		evs = append(evs, encodeEvent(Event{GroupID: g.id, Seq: g.last}))
	}
	// Round trip 2: the write and the COMMIT.
	b = &pgx.Batch{}
	b.Queue(pgWriteBatchQuery, mg, mseq, mkind, mep, ms, msd, md, mat, gid, glast, gn, gb, pgChannel, evs)
	b.Queue("COMMIT")
	br = pc.SendBatch(ctx, b)
	_, err = br.Exec()
	if err == nil {
		_, err = br.Exec()
	}
	if err := errors.Join(err, br.Close()); err != nil {
		return nil, nil, s.dbErr("append", err)
	}
	return res, groups, nil
}

// bulkAccess fills the groups' access maps with the windows of the
// entries' senders: from memberCache at the locked epoch, else in one
// query (whose answers go to the cache). A sender without a row is left
// out: not a member.
func (s *sqlStore) bulkAccess(ctx context.Context, pc *pgx.Conn, entries []appendReq, byID map[string]*groupTx) error {
	var qg [][]byte
	var qu []string
	for _, e := range entries {
		g := byID[string(e.m.GroupID)]
		if g == nil {
			continue
		}
		if _, ok := g.access[e.m.Sender]; ok {
			continue
		}
		if a, ok := s.members.get(g.id, e.m.Sender, g.epoch); ok {
			g.access[e.m.Sender] = a
			continue
		}
		g.access[e.m.Sender] = Access{} // queried once; deleted below if absent
		qg, qu = append(qg, g.id), append(qu, e.m.Sender)
	}
	if len(qg) == 0 {
		return nil
	}
	for i := range qg {
		delete(byID[string(qg[i])].access, qu[i])
	}
	rows, err := pc.Query(ctx, pgReadersQuery, qg, qu)
	if err != nil {
		return s.dbErr("access", err)
	}
	defer rows.Close()
	for rows.Next() {
		var gid []byte
		var user string
		var a Access
		var to *int64
		if err := rows.Scan(&gid, &user, &a.FromSeq, &to); err != nil {
			return s.dbErr("access", err)
		}
		if to != nil {
			a.Removed, a.ToSeq = true, *to
		}
		g := byID[string(gid)]
		if g == nil {
			continue
		}
		g.access[user] = a
		s.members.put(g.id, user, g.epoch, a)
	}
	if err := rows.Err(); err != nil {
		return s.dbErr("access", err)
	}
	return nil
}

// pgMessagesQuery is a page of the log in one statement (a round trip):
// the reader's window as in pageQuery, and the longest prefix of at most
// maxBytes ($6) of data, or the first entry alone when it is larger, from
// a running sum of the sizes (octet_length reads a stored value's size
// without its data). Each row also carries the reader's window and the
// group's epoch, read in the statement's one snapshot: the window as of
// that epoch, for memberCache (which lets tailCache answer the reader's
// next pages).
const pgMessagesQuery = `SELECT seq, kind, epoch, sender, sender_device, data, received_at, from_seq, to_seq, group_epoch FROM (
	SELECT m.seq, m.kind, m.epoch, m.sender, m.sender_device, m.data, m.received_at, r.from_seq, r.to_seq,
		(SELECT g.epoch FROM groups g WHERE g.group_id = $1) AS group_epoch,
		SUM(LENGTH(m.data)) OVER (ORDER BY m.seq) AS total, ROW_NUMBER() OVER (ORDER BY m.seq) AS n
	FROM readers r JOIN messages m ON m.group_id = r.group_id
	WHERE r.group_id = $1 AND r.user_id = $2 AND m.seq > $3 AND m.seq >= r.from_seq AND (r.to_seq IS NULL OR m.seq <= r.to_seq) AND m.seq <= $4
	ORDER BY m.seq LIMIT $5) p
WHERE n = 1 OR total <= $6
ORDER BY seq`

// pgMessages is Messages on PostgreSQL: the page in one statement, and
// the reader's window alone only when it is empty (for 403 or 404).
func (s *sqlStore) pgMessages(ctx context.Context, groupID []byte, userID string, after, hi int64, limit, maxBytes int) ([]Message, Access, error) {
	rows, err := s.r.QueryContext(ctx, pgMessagesQuery, groupID, userID, after, hi, limit, maxBytes)
	if err != nil {
		return nil, Access{}, s.dbErr("messages", err)
	}
	var a Access
	var to sql.NullInt64
	var epoch int64
	out, err := s.scanMessages(groupID, rows, &a.FromSeq, &to, &epoch)
	if err != nil {
		return nil, Access{}, err
	}
	if len(out) > 0 {
		a.Removed, a.ToSeq = to.Valid, to.Int64
		s.members.put(groupID, userID, epoch, a)
		return out, Access{}, nil
	}
	a, err = s.access(ctx, s.r, groupID, userID)
	return nil, a, err
}
