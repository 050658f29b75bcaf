package keylock

import (
	"sync"
	"testing"
)

// TestSet: one key's holders exclude each other; another key is free.
func TestSet(t *testing.T) {
	var s Set
	unlock := s.Lock("a")
	done := make(chan struct{})
	go func() { s.Lock("b")(); close(done) }()
	<-done // "b" does not wait for "a"
	var n int
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { defer s.Lock("a")(); n++ })
	}
	unlock()
	wg.Wait()
	if n != 50 {
		t.Fatalf("n = %d", n)
	}
}

// TestSetForgets: a key nobody holds or waits for takes no room.
func TestSetForgets(t *testing.T) {
	var s Set
	for i := range 100 {
		s.Lock(string(rune('a' + i%26)))()
	}
	unlock := s.Lock("held")
	if n := s.len(); n != 1 {
		t.Fatalf("%d keys kept, want 1 (the one held)", n)
	}
	unlock()
	if n := s.len(); n != 0 {
		t.Fatalf("%d keys kept after the last unlock", n)
	}
}
