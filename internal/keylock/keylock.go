// Package keylock is a set of mutexes by key: work on one key is
// serialised, different keys proceed in parallel (one lock per channel).
package keylock

import "sync"

// Set is a mutex per key, made on first use. Its zero value is ready.
type Set struct {
	mu sync.Mutex
	m  map[string]*sync.Mutex
}

// Lock locks key's mutex and returns its unlock.
func (s *Set) Lock(key string) (unlock func()) {
	s.mu.Lock()
	l, ok := s.m[key]
	if !ok {
		if s.m == nil {
			s.m = map[string]*sync.Mutex{}
		}
		l = &sync.Mutex{}
		s.m[key] = l
	}
	s.mu.Unlock()
	l.Lock()
	return l.Unlock
}
