package sqlite

import (
	"bytes"
	"context"
	"sync"

	"github.com/spacepanda/spacepanda/store"
)

// chanCache holds the channel rows read through the Store (not inside a
// transaction): a node reads a channel's row several times for every
// message it sends or receives, and each read is a query and two AEAD
// opens. Channel rows change rarely (joins, leaves, renames): from a
// transaction's first channel write until it ends, the cache is not used
// at all, and it starts again empty. gen orders a fill against that: a
// read that began before a write does not fill the cache after it.
type chanCache struct {
	mu      sync.Mutex
	gen     uint64
	writers int // transactions between their first channel write and their end
	m       map[string]store.Channel
}

const maxCachedChannels = 4096

func cloneChannel(c store.Channel) store.Channel {
	c.GroupID = bytes.Clone(c.GroupID)
	c.Extra = bytes.Clone(c.Extra)
	return c
}

// get is the cached row of id and the generation it was looked up at (a
// miss is filled with put at that generation).
func (cc *chanCache) get(id string) (store.Channel, uint64, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	c, ok := cc.m[id]
	if !ok || cc.writers > 0 {
		return store.Channel{}, cc.gen, false
	}
	return cloneChannel(c), cc.gen, true
}

// put caches c, read when the cache was at gen.
func (cc *chanCache) put(c store.Channel, gen uint64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if gen != cc.gen || cc.writers > 0 {
		return // a write began since the read did, or is under way
	}
	if cc.m == nil || len(cc.m) >= maxCachedChannels {
		cc.m = map[string]store.Channel{}
	}
	cc.m[c.ID] = cloneChannel(c)
}

// beginWrite sets the cache aside: a transaction wrote a channel row.
func (cc *chanCache) beginWrite() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.writers++
	cc.gen++
	clear(cc.m)
}

// endWrite ends beginWrite, after the commit or rollback: the cache starts
// again empty.
func (cc *chanCache) endWrite() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.writers--
	cc.gen++
	clear(cc.m)
}

// Channel implements store.Reader, through the cache.
func (s *Store) Channel(ctx context.Context, channelID string) (store.Channel, error) {
	c, gen, ok := s.chans.get(channelID)
	if ok {
		if err := s.check(ctx); err != nil {
			return store.Channel{}, err
		}
		return c, nil
	}
	c, err := s.reader.Channel(ctx, channelID)
	if err != nil {
		return store.Channel{}, err
	}
	s.chans.put(c, gen)
	return c, nil
}
