package conformance

import (
	"testing"

	"github.com/spacepanda/spacepanda/internal/testvec"
)

// TestVectors runs every implemented vector kind; any failing case fails the test.
func TestVectors(t *testing.T) {
	dir, ok := testvec.Dir()
	if !ok {
		t.Skipf("MLS test vectors not found (set %s, or place them at ../shared/testvectors)", testvec.EnvVar)
	}
	for _, k := range kinds() {
		t.Run(k.File, func(t *testing.T) {
			rep := runFile(dir, k)
			if rep.Skipped != "" {
				t.Skip(rep.Skipped)
			}
			if rep.Err != nil {
				t.Fatal(rep.Err)
			}
			if len(rep.Results) == 0 {
				t.Fatal("no test cases ran")
			}
			for _, c := range rep.Results {
				if c.Err != nil {
					t.Errorf("%s: %v", c.Name, c.Err)
				}
			}
		})
	}
}
