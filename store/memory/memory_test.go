package memory_test

import (
	"testing"

	"github.com/spacepanda/spacepanda/store"
	"github.com/spacepanda/spacepanda/store/memory"
	"github.com/spacepanda/spacepanda/store/storetest"
)

func open(tb testing.TB) store.Store {
	s := memory.New()
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestSuite(t *testing.T) { storetest.Run(t, open) }

func BenchmarkRatchetWrite(b *testing.B)      { storetest.BenchmarkRatchetWrite(b, open) }
func BenchmarkPut100KeyPackages(b *testing.B) { storetest.BenchmarkPut100KeyPackages(b, open) }
