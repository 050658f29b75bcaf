package relay

import "sync"

// memberCache holds users' windows on group logs (the readers rows the
// append path checks on every post) as of a group epoch, so that a post
// does not read them again while the group stays at that epoch.
//
// Why it is exact, across processes: readers rows change only when the
// group is created and when a commit is appended, and that commit takes
// the group to the next epoch in the same transaction (writeCommit). So a
// user's window is a function of (group, epoch). An append looks the
// cache up only under the group's row lock, with the epoch it just read
// from that row, and only before its own transaction applied a commit to
// the group: an entry of an older epoch never matches, so a removal (or a
// re-add) by any process is seen by the very next append after its
// commit. Entries are stored only from what a transaction read before it
// changed the group's readers, i.e. committed rows, or (PostgreSQL's page
// read, pgMessages) a reader's row and the group's epoch read in one
// statement's snapshot, which a commit changes together. tailCache asks
// it for readers' windows at the epoch of the entries it holds.

type memberCache struct {
	mu sync.Mutex
	m  map[memberKey]memberEntry
}

type memberKey struct{ group, user string }

type memberEntry struct {
	epoch int64
	a     Access
}

// memberCacheMax bounds the cache; past it, it starts again empty.
const memberCacheMax = 1 << 16

func (c *memberCache) get(gid []byte, user string, epoch int64) (Access, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[memberKey{string(gid), user}]
	if !ok || e.epoch != epoch {
		return Access{}, false
	}
	return e.a, true
}

func (c *memberCache) put(gid []byte, user string, epoch int64, a Access) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= memberCacheMax {
		c.m = map[memberKey]memberEntry{}
	}
	k := memberKey{string(gid), user}
	if e, ok := c.m[k]; ok && e.epoch > epoch {
		return // a later epoch's window is already known
	}
	c.m[k] = memberEntry{epoch: epoch, a: a}
}
