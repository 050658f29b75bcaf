package conformance

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/spacepanda/spacepanda/internal/testvec"
	"github.com/spacepanda/spacepanda/mls/suite"
)

// hexBytes is the vectors' hex byte string.
type hexBytes = testvec.Hex

// errMismatch reports a value that differs from the vector. Vector values
// are public test data, so printing them is fine.
func mismatch(what string, got, want []byte) error {
	if bytes.Equal(got, want) {
		return nil
	}
	return fmt.Errorf("%s mismatch: got %s, want %s", what, short(got), short(want))
}

func short(b []byte) string {
	s := hex.EncodeToString(b)
	if len(s) > 48 {
		s = s[:48] + "…"
	}
	return s
}

// decodeCases decodes a vector file (a JSON array) into a slice of T.
func decodeCases[T any](data []byte) ([]T, error) {
	var cases []T
	if err := json.Unmarshal(data, &cases); err != nil {
		return nil, fmt.Errorf("decode vector file: %w", err)
	}
	return cases, nil
}

// suiteCase names a case and returns its suite, or an error result.
func suiteFor(id uint16) (*suite.Suite, error) {
	return suite.New(suite.ID(id))
}

func caseName(id uint16, i int) string { return fmt.Sprintf("suite %d #%d", id, i) }

// vectorCase is one test case of a vector file: it checks itself.
type vectorCase[T any] interface {
	*T
	check() error
}

// runCases runs every case of a vector file whose cases are T. Cases that
// name a cipher suite (suiteID) are reported as "suite N #i", others as "#i".
func runCases[T any, P vectorCase[T]](data []byte) ([]caseResult, error) {
	cases, err := decodeCases[T](data)
	if err != nil {
		return nil, err
	}
	out := make([]caseResult, len(cases))
	for i := range cases {
		c := P(&cases[i])
		name := fmt.Sprintf("#%d", i)
		if s, ok := any(c).(interface{ suiteID() uint16 }); ok {
			name = caseName(s.suiteID(), i)
		}
		out[i] = caseResult{Name: name, Err: c.check()}
	}
	return out, nil
}
