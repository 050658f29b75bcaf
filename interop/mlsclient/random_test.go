package mlsclient

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/spacepanda/spacepanda/mls/suite"
)

// randomBudget is the length of the long random run (operations) and the
// largest group it builds, per suite, handshake mode and assignment: the
// run is long in the suites with fast curves and shorter, in smaller
// groups, where signatures are slow (P-384, P-521, X448/Ed448), and
// shorter still under -short.
func randomBudget(id suite.ID) (ops, maxSize int) {
	slow := id != suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 &&
		id != suite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256 &&
		id != suite.MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519
	switch {
	case testing.Short() && slow:
		return 12, 4
	case testing.Short():
		return 50, 6
	case id == suite.MLS_256_DHKEMP521_AES256GCM_SHA512_P521:
		return 12, 4
	case slow:
		return 24, 4
	}
	return 80, 6
}

// deepRandom is the harness's deep random scenario: members, chosen at
// random, propose adds, removes and updates and commit them together with
// adds and removes by value; after every commit all members agree on the
// epoch authenticator, every 8 commits on StateAuth and Export, every 4 a
// random member's message is read by all, and at the end the whole group
// state is verified.
func deepRandom(r *runner, rng *rand.Rand, ops, maxSize int) (commits int) {
	const minSize = 2
	next := 0
	newActor := func() string { next++; return fmt.Sprintf("m%d", next) }
	r.createGroup("m0")
	r.addMembers("m0", newActor(), newActor(), newActor())

	var byRef [][]byte
	joiners := map[string]string{} // add proposal → joiner
	targeted := map[string]bool{}  // members a pending remove targets
	size := func() int { return len(r.members) + len(joiners) - len(targeted) }
	pick := func(ok func(string) bool) (string, bool) {
		var cand []string
		for _, m := range r.members {
			if ok(m) {
				cand = append(cand, m)
			}
		}
		if len(cand) == 0 {
			return "", false
		}
		return cand[rng.IntN(len(cand))], true
	}
	any := func(string) bool { return true }
	for op := 0; op < ops; op++ {
		switch k := rng.IntN(10); {
		case k < 3 && size() < maxSize: // add by reference
			from, _ := pick(any)
			j := newActor()
			p := r.addProposal(from, r.keyPackage(j))
			byRef, joiners[string(p)] = append(byRef, p), j
		case k < 5 && size() > minSize: // remove by reference
			from, _ := pick(any)
			target, ok := pick(func(m string) bool { return m != from && !targeted[m] })
			if !ok || len(r.members)-len(targeted) < 3 {
				continue // keep a committer
			}
			byRef, targeted[target] = append(byRef, r.removeProposal(from, target)), true
		case k < 7: // update
			from, _ := pick(any)
			byRef = append(byRef, r.updateProposal(from))
		default: // commit, with up to two changes by value
			committer, _ := pick(func(m string) bool { return !targeted[m] })
			c := commit{byRef: byRef, forcePath: rng.IntN(2) == 0, externalTree: rng.IntN(4) == 0}
			for _, p := range byRef {
				if j, ok := joiners[string(p)]; ok {
					c.joiners = append(c.joiners, j)
				}
			}
			for range rng.IntN(3) {
				if rng.IntN(2) == 0 && size() < maxSize {
					j := newActor()
					c.byValue, c.joiners = append(c.byValue, addDesc(r.keyPackage(j))), append(c.joiners, j)
					joiners["by value "+j] = j
				} else if target, ok := pick(func(m string) bool { return m != committer && !targeted[m] }); ok && size() > minSize && len(r.members)-len(targeted) > 2 {
					c.byValue, targeted[target] = append(c.byValue, removeDesc(target)), true
				}
			}
			r.fullCommit(committer, c)
			commits++
			byRef, joiners, targeted = nil, map[string]string{}, map[string]bool{}
			if commits%4 == 0 {
				from, _ := pick(any)
				r.protectAll(from)
			}
			if commits%8 == 0 {
				r.agree()
			}
		}
	}
	if len(byRef) > 0 {
		committer, _ := pick(func(m string) bool { return !targeted[m] })
		c := commit{byRef: byRef}
		for _, p := range byRef {
			if j, ok := joiners[string(p)]; ok {
				c.joiners = append(c.joiners, j)
			}
		}
		r.fullCommit(committer, c)
		commits++
	}
	r.verify()
	return commits
}

// TestDeepRandom runs the long random scenario in every suite, handshake
// mode and assignment (see combos), in parallel.
func TestDeepRandom(t *testing.T) {
	t.Parallel()
	clients := newMatrixClients(t)
	var mu sync.Mutex
	summary := map[suite.ID][2]int{} // runs, commits
	t.Run("runs", func(t *testing.T) {
		for _, c := range combos() {
			t.Run(c.String(), func(t *testing.T) {
				t.Parallel()
				seed := uint64(c.id)<<8 | uint64(c.shift)<<1
				if c.encrypt {
					seed |= 1
				}
				r := newRunner(t, clients.forSuite(c.id), uint32(c.id), c.encrypt, c.shift)
				ops, maxSize := randomBudget(c.id)
				n := deepRandom(r, rand.New(rand.NewPCG(seed, 0x5eed)), ops, maxSize)
				r.done()
				mu.Lock()
				s := summary[c.id]
				summary[c.id] = [2]int{s[0] + 1, s[1] + n}
				mu.Unlock()
			})
		}
	})
	for _, id := range suite.All() {
		ops, maxSize := randomBudget(id)
		t.Logf("suite %d: %d runs of %d operations (groups up to %d), %d commits in all", id, summary[id][0], ops, maxSize, summary[id][1])
	}
}
