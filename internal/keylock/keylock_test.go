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
