package relay

import (
	"errors"
	"io/fs"
	"os"
	"sync"
)

// walFlusher makes SQLite commits durable outside the writer connection.
// The writer runs with synchronous=NORMAL, so a commit appends its frames
// to the WAL without waiting for the disk; no answer leaves before an
// fsync of the WAL file that started after the commit returned. One fsync
// covers every commit made before it started, so concurrent transactions
// share it, and the writer prepares the next batch meanwhile.
//
// Why this is as durable as synchronous=FULL: a returned commit's frames
// are in the WAL file, or (after an automatic checkpoint, which in NORMAL
// mode syncs the WAL, copies it and syncs the database file before the
// commit returns) already durable in the database file; the WAL is only
// rewritten from its start after such a complete checkpoint. The file is
// opened for each fsync, so a WAL that SQLite deleted and created again is
// never missed; without a WAL file the database file is synced.
type walFlusher struct {
	wal, db string

	mu      sync.Mutex
	running bool
	waiters []func(error)
}

// after runs fn (on the flusher's goroutine) once an fsync that started
// after this call has finished, with its error.
func (f *walFlusher) after(fn func(error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waiters = append(f.waiters, fn)
	if !f.running {
		f.running = true
		go f.loop()
	}
}

// sync waits for such an fsync.
func (f *walFlusher) sync() error {
	ch := make(chan error, 1)
	f.after(func(err error) { ch <- err })
	return <-ch
}

func (f *walFlusher) loop() {
	for {
		f.mu.Lock()
		ws := f.waiters
		f.waiters = nil
		if len(ws) == 0 {
			f.running = false
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		err := f.fsync()
		for _, w := range ws {
			w(err)
		}
	}
}

func (f *walFlusher) fsync() error {
	fh, err := os.OpenFile(f.wal, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		fh, err = os.OpenFile(f.db, os.O_RDWR, 0)
	}
	if err != nil {
		return err
	}
	err = fh.Sync()
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}

// unsynced tracks, per group, the last sequence number that is durable
// while later entries are committed but not yet flushed, so that readers
// never see an entry a crash could take back (and hand its seq to another
// message). It holds only groups with a flush outstanding. Without a
// flusher (PostgreSQL: a commit is durable) it stays empty.
type unsynced struct {
	mu sync.Mutex
	m  map[string]*unsyncedGroup
}

type unsyncedGroup struct {
	durable int64 // the log is durable up to here
	batches int   // flushes outstanding for the group
}

// add records that groups' rows were committed without a flush; a call of
// done follows once it is durable (see sqlStore.settle).
func (u *unsynced) add(groups []*groupTx) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[string]*unsyncedGroup{}
	}
	for _, g := range groups {
		if g.last == g.first {
			continue
		}
		e := u.m[string(g.id)]
		if e == nil {
			e = &unsyncedGroup{durable: g.first}
			u.m[string(g.id)] = e
		}
		e.batches++
	}
}

// done records that groups' rows of one add are durable. Flushes finish
// in the order of their adds.
func (u *unsynced) done(groups []*groupTx) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, g := range groups {
		if g.last == g.first {
			continue
		}
		e := u.m[string(g.id)]
		if e == nil {
			continue
		}
		if e.batches--; e.batches == 0 {
			delete(u.m, string(g.id))
		} else {
			e.durable = g.last
		}
	}
}

// limit returns the last readable seq of the group: hi, or less while a
// flush is outstanding.
func (u *unsynced) limit(gid []byte, hi int64) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	if e := u.m[string(gid)]; e != nil && e.durable < hi {
		return e.durable
	}
	return hi
}
