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
