package mlsclient

import (
	"fmt"
	"slices"
	"testing"

	"github.com/spacepanda/spacepanda/interop/mlsclient/mlspb"
	"github.com/spacepanda/spacepanda/mls/suite"
)

// The test matrix: suite × handshake mode × assignment of actors to the two
// clients. Under the race detector the pure-Go P-521 and P-384 arithmetic
// is about ten times slower than the other suites' (their scenarios alone
// took three minutes of CPU), so those two run each handshake mode once,
// with the assignments alternating — both modes and both assignments are
// still covered — while the other five run the full product. Every
// combination, and every scenario in it, is a parallel subtest, the slow
// suites first, so that the two cores stay busy and no long serial tail is
// left.

// combo is one run of a scenario.
type combo struct {
	id      suite.ID
	encrypt bool
	shift   int
}

func (c combo) String() string {
	return fmt.Sprintf("suite-%d/encrypt=%v/assignment-%d", c.id, c.encrypt, c.shift)
}

// slowSuite reports whether id is one of the suites the race detector
// makes slow.
func slowSuite(id suite.ID) bool {
	return id == suite.MLS_256_DHKEMP521_AES256GCM_SHA512_P521 || id == suite.MLS_256_DHKEMP384_AES256GCM_SHA384_P384
}

// combos lists the runs, slow suites first.
func combos() []combo {
	ids := slices.Clone(suite.All())
	slices.SortStableFunc(ids, func(a, b suite.ID) int {
		switch {
		case slowSuite(a) && !slowSuite(b):
			return -1
		case slowSuite(b) && !slowSuite(a):
			return 1
		}
		return 0
	})
	var out []combo
	for _, id := range ids {
		for i, encrypt := range []bool{false, true} {
			for shift := range 2 {
				if slowSuite(id) && shift != i {
					continue
				}
				out = append(out, combo{id: id, encrypt: encrypt, shift: shift})
			}
		}
	}
	return out
}

// matrixClients are the two clients of the matrix: the mandatory suite's
// runs go through loopback gRPC (grpc), the others call the servers in
// process (direct), which costs a third less under the race detector.
type matrixClients struct {
	grpc, direct []mlspb.MLSClientClient
}

func newMatrixClients(t *testing.T) matrixClients {
	return matrixClients{grpc: startClients(t, 2), direct: directClients(2)}
}

func (m matrixClients) forSuite(id suite.ID) []mlspb.MLSClientClient {
	if id == suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 {
		return m.grpc
	}
	return m.direct
}
