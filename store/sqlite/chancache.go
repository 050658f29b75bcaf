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
// opens. A transaction that wrote a channel row drops the whole cache
// when it commits (channel rows change rarely: joins, leaves, renames).
// gen orders the two: a read that began before a drop does not fill the
// cache after it.
type chanCache struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]store.Channel
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
	if !ok {
		return store.Channel{}, cc.gen, false
	}
	return cloneChannel(c), cc.gen, true
}

// put caches c, read when the cache was at gen.
func (cc *chanCache) put(c store.Channel, gen uint64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if gen != cc.gen {
		return // a write committed since the read began
	}
	if cc.m == nil || len(cc.m) >= maxCachedChannels {
		cc.m = map[string]store.Channel{}
	}
	cc.m[c.ID] = cloneChannel(c)
}

// drop forgets every row: called after a commit that wrote channels.
func (cc *chanCache) drop() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
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
