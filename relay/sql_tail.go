package relay

import (
	"sync"
	"sync/atomic"
	"time"
)

// tailCache holds the newest entries of each group that this process
// appended, so that a long poll woken by an append is answered from
// memory. Each such read was a round trip to the database: on PostgreSQL
// it cost the server about as much as the writes, and a loaded machine
// made it wait for the server process to be scheduled.
//
// Why a page it answers is the page the store would answer:
//   - A group's cached entries are a run of consecutive seqs, each written
//     by this process in a committed (and, on SQLite, flushed) batch, none
//     of them a commit, all appended while the group was at one epoch: an
//     entry this process did not write (a gap in the seqs), a commit, or a
//     new epoch starts the run again. Entries never change once written.
//   - A page is answered only when it starts inside the run, and it ends
//     at the run's end at the latest: a page may be any non-empty prefix of
//     what follows (the reader comes back for the rest), so entries another
//     process wrote after the run are read from the store next time.
//   - The reader's window is memberCache's at the run's epoch, or the
//     cache does not answer. A window changes only with a commit, which
//     moves the group to another epoch (memberCache), so that window is
//     exactly the one the store applies to the run's entries. A page
//     that the window would start later or end sooner than the run's first
//     asked entry is left to the store (which also answers the refusals).
//   - Retention deletes entries for storage, not access: Retain empties
//     this process's cache, and entries older than tailMaxAge are not
//     answered, so an entry another process's retention removed may be
//     answered for at most that long, and only to a reader of its window.
type tailCache struct {
	mu    sync.Mutex
	m     map[string]*tailRun
	bytes int // data bytes held, all groups
	// hits counts the pages answered (tests: that it answers at all).
	hits atomic.Int64
}

type tailRun struct {
	epoch   int64
	entries []Message   // consecutive seqs
	added   []time.Time // when each entry was added
	bytes   int
}

// Bounds. A long poll woken by an append reads right after it, so a short
// run per group serves it; past the global bounds the cache starts again
// empty, as memberCache does.
const (
	tailEntries  = 64
	tailRunBytes = 256 << 10
	tailGroups   = 4096
	tailBytes    = 64 << 20
	tailMaxAge   = 10 * time.Second
)

// appended records the entries of one committed batch: live and res as
// in appendBatch, groups the groups it wrote.
func (c *tailCache) appended(live []appendReq, res []appendRes, groups []*groupTx, now time.Time) {
	byGroup := map[string][]int{}
	for i, r := range live {
		if res[i].err == nil && res[i].seq > 0 {
			byGroup[string(r.m.GroupID)] = append(byGroup[string(r.m.GroupID)], i)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range groups {
		if g.last == g.first {
			continue
		}
		if g.epoch != g.lockedEpoch { // a commit: windows changed
			c.dropLocked(g.id)
			continue
		}
		var run []Message
		for _, i := range byGroup[string(g.id)] {
			seq := res[i].seq
			if seq <= g.first || seq > g.last {
				continue // another transaction's (a batch retried entry by entry)
			}
			if len(run) > 0 && seq != run[len(run)-1].Seq+1 {
				run = nil
				break
			}
			m := live[i].m
			m.Seq, m.ReceivedAt = seq, time.Unix(0, nanos(m.ReceivedAt)) // as read back
			m.Added, m.Removed = nil, nil
			run = append(run, m)
		}
		if int64(len(run)) != g.last-g.first || run[0].Seq != g.first+1 {
			c.dropLocked(g.id)
			continue
		}
		c.addLocked(g.id, g.lockedEpoch, run, now)
	}
}

func (c *tailCache) addLocked(gid []byte, epoch int64, run []Message, now time.Time) {
	t := c.m[string(gid)]
	if t == nil || t.epoch != epoch || t.entries[len(t.entries)-1].Seq+1 != run[0].Seq {
		c.dropLocked(gid)
		if c.m == nil || len(c.m) >= tailGroups {
			c.m, c.bytes = map[string]*tailRun{}, 0
		}
		t = &tailRun{epoch: epoch}
		c.m[string(gid)] = t
	}
	for _, m := range run {
		t.entries, t.added = append(t.entries, m), append(t.added, now)
		t.bytes += len(m.Data)
		c.bytes += len(m.Data)
	}
	for len(t.entries) > 1 && (len(t.entries) > tailEntries || t.bytes > tailRunBytes || now.Sub(t.added[0]) > tailMaxAge) {
		t.bytes -= len(t.entries[0].Data)
		c.bytes -= len(t.entries[0].Data)
		t.entries[0] = Message{}
		t.entries, t.added = t.entries[1:], t.added[1:]
	}
	if c.bytes > tailBytes {
		c.m, c.bytes = nil, 0
	}
}

func (c *tailCache) dropLocked(gid []byte) {
	if t, ok := c.m[string(gid)]; ok {
		c.bytes -= t.bytes
		delete(c.m, string(gid))
	}
}

// reset empties the cache.
func (c *tailCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m, c.bytes = nil, 0
}

// page returns the page after `after` (at most limit entries, the longest
// prefix of at most maxBytes of data or the first entry alone, none past
// hi) for a reader whose window at an epoch window returns, when the cache
// can answer it; false when the store must be read.
func (c *tailCache) page(gid []byte, after, hi int64, limit, maxBytes int, now time.Time, window func(epoch int64) (Access, bool)) ([]Message, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.m[string(gid)]
	if t == nil {
		return nil, false
	}
	first := t.entries[0].Seq
	if after+1 < first || after+1 > t.entries[len(t.entries)-1].Seq || after+1 > hi {
		return nil, false
	}
	if now.Sub(t.added[after+1-first]) > tailMaxAge { // and those before it
		return nil, false
	}
	a, ok := window(t.epoch)
	if !ok || after+1 < a.FromSeq || (a.Removed && after+1 > a.ToSeq) {
		return nil, false
	}
	var out []Message
	size := 0
	for _, m := range t.entries[after+1-first:] {
		if len(out) == limit || m.Seq > hi || (a.Removed && m.Seq > a.ToSeq) {
			break
		}
		if size += len(m.Data); len(out) > 0 && size > maxBytes {
			break
		}
		out = append(out, m)
	}
	c.hits.Add(1)
	return out, true
}
