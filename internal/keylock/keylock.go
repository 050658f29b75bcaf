// Package keylock is a set of mutexes by key: work on one key is
// serialised, different keys proceed in parallel (one lock per channel).
package keylock

import "sync"

// Set is a mutex per key, made on first use and dropped when nobody holds
// or waits for it (a node that saw many channels come and go keeps none
// of theirs). Its zero value is ready.
type Set struct {
	mu sync.Mutex
	m  map[string]*entry
}

type entry struct {
	sync.Mutex
	refs int // holders and waiters, under Set.mu
}

// Lock locks key's mutex and returns its unlock.
func (s *Set) Lock(key string) (unlock func()) {
	s.mu.Lock()
	e, ok := s.m[key]
	if !ok {
		if s.m == nil {
			s.m = map[string]*entry{}
		}
		e = &entry{}
		s.m[key] = e
	}
	e.refs++
	s.mu.Unlock()
	e.Lock()
	return func() {
		e.Unlock()
		s.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(s.m, key)
		}
		s.mu.Unlock()
	}
}

// len is the number of keys held or waited for.
func (s *Set) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
