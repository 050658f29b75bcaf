// Package testvec locates and decodes the official MLS test vectors
// (formats in shared/spec/test-vectors.md).
package testvec

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// EnvVar names the directory holding the vector files.
const EnvVar = "MLS_TEST_VECTORS"

// Dir returns the vector directory: $MLS_TEST_VECTORS, else
// <module root>/../shared/testvectors. ok is false when neither exists.
func Dir() (dir string, ok bool) {
	if d := os.Getenv(EnvVar); d != "" {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d, true
		}
		return d, false
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			cand := filepath.Join(d, "..", "shared", "testvectors")
			if st, err := os.Stat(cand); err == nil && st.IsDir() {
				return cand, true
			}
			return cand, false
		}
		if filepath.Dir(d) == d {
			return "", false
		}
	}
}

// Hex is a byte string that JSON-decodes from a hex string.
type Hex []byte

func (h *Hex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("testvec: bad hex: %w", err)
	}
	*h = v
	return nil
}

func (h Hex) String() string { return hex.EncodeToString(h) }
