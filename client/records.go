package client

import (
	"context"
	"sync"

	"github.com/spacepanda/spacepanda/store"
)

// memRecords is store.Records for a store without them (the memory store
// of tests): nothing survives a restart.
type memRecords struct {
	mu   sync.Mutex
	seq  uint64
	recs map[string]map[string]store.Record
}

func newMemRecords() *memRecords { return &memRecords{recs: map[string]map[string]store.Record{}} }

func (m *memRecords) PutRecord(_ context.Context, kind, id string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := m.recs[kind]
	if k == nil {
		k = map[string]store.Record{}
		m.recs[kind] = k
	}
	r, ok := k[id]
	if !ok {
		m.seq++
		r = store.Record{Kind: kind, ID: id, Seq: m.seq}
	}
	r.Value = append([]byte(nil), value...)
	k[id] = r
	return nil
}

func (m *memRecords) DeleteRecord(_ context.Context, kind, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.recs[kind], id)
	return nil
}

func (m *memRecords) Records(_ context.Context, kind string) ([]store.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Record
	for _, r := range m.recs[kind] {
		out = append(out, r)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Seq < out[j-1].Seq; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}

// recordCache keeps the records of one kind in memory, for a kind this
// Client alone writes, and writes only through the cache (put, del):
// contacts are looked up for the sender of every message of a history
// page. While a write is under way the cache is not used, and it starts
// again empty after it; gen orders a load against a write: a load that
// began before a write does not fill the cache after it.
type recordCache struct {
	kind    string
	mu      sync.Mutex
	gen     uint64
	writers int
	recs    []store.Record // nil: not loaded
}

// list is the records of the kind, in the order first stored. The caller
// must not change them.
func (rc *recordCache) list(ctx context.Context, recs store.Records) ([]store.Record, error) {
	rc.mu.Lock()
	out, gen, busy := rc.recs, rc.gen, rc.writers > 0
	rc.mu.Unlock()
	if out != nil && !busy {
		return out, nil
	}
	out, err := recs.Records(ctx, rc.kind)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []store.Record{}
	}
	rc.mu.Lock()
	if rc.gen == gen && rc.writers == 0 {
		rc.recs = out
	}
	rc.mu.Unlock()
	return out, nil
}

// write runs w with the cache set aside.
func (rc *recordCache) write(w func() error) error {
	rc.mu.Lock()
	rc.writers++
	rc.gen++
	rc.recs = nil
	rc.mu.Unlock()
	defer func() { // whether or not the write went through
		rc.mu.Lock()
		rc.writers--
		rc.gen++
		rc.recs = nil
		rc.mu.Unlock()
	}()
	return w()
}

func (rc *recordCache) put(ctx context.Context, recs store.Records, id string, value []byte) error {
	return rc.write(func() error { return recs.PutRecord(ctx, rc.kind, id, value) })
}

func (rc *recordCache) del(ctx context.Context, recs store.Records, id string) error {
	return rc.write(func() error { return recs.DeleteRecord(ctx, rc.kind, id) })
}
