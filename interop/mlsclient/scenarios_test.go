package mlsclient

import (
	"fmt"
	"sync"
	"testing"

	"github.com/spacepanda/spacepanda/interop/mlsclient/mlspb"
	"github.com/spacepanda/spacepanda/mls/suite"
)

// The scenarios of shared/interop/test-scenarios.md and of the harness's
// configurations (welcome joins, external joins, commits by reference and
// by value, application messages, external proposals and signers).
var scenarios = append(baseScenarios, successorScenarios...)

// scenario is a named sequence of RPCs.
type scenario struct {
	name string
	run  func(r *runner)
}

var baseScenarios = []scenario{
	{"join/1:1", func(r *runner) {
		r.createGroup("alice")
		r.addMembers("alice", "bob")
		r.verify()
	}},
	{"join/3-party", func(r *runner) {
		r.createGroup("alice")
		r.addMembers("alice", "bob")
		kp := r.keyPackage("charlie")
		r.fullCommit("alice", commit{byRef: [][]byte{r.addProposal("alice", kp)}, joiners: []string{"charlie"}})
		r.verify()
	}},
	{"join/multiple", func(r *runner) {
		r.createGroup("alice")
		b, c := r.keyPackage("bob"), r.keyPackage("charlie")
		r.fullCommit("alice", commit{byRef: [][]byte{r.addProposal("alice", b), r.addProposal("alice", c)}, joiners: []string{"bob", "charlie"}})
		r.verify()
	}},
	{"join/welcome-variants", func(r *runner) {
		r.createGroup("alice")
		b := r.keyPackage("bob")
		r.fullCommit("alice", commit{byRef: [][]byte{r.addProposal("alice", b)}, joiners: []string{"bob"}, forcePath: true})
		c := r.keyPackage("charlie")
		r.fullCommit("alice", commit{byValue: []*mlspb.ProposalDescription{addDesc(c)}, joiners: []string{"charlie"}, externalTree: true})
		d := r.keyPackage("diana")
		h := r.installPSK("alice", "bob", "charlie", "diana")
		r.fullCommit("bob", commit{byValue: []*mlspb.ProposalDescription{addDesc(d), r.externalPSKDesc(h)}, joiners: []string{"diana"}})
		r.verify()
	}},
	{"external-join", func(r *runner) {
		r.createGroup("alice")
		r.externalJoin("alice", "bob", false, false)
		r.externalJoin("bob", "charlie", true, false)
		r.addMembers("alice", "diana")
		r.externalJoin("diana", "ellen", false, false)
		r.agree()
		r.externalJoin("alice", "bob", false, true) // removing the prior bob
		r.agree()
		h1, h2 := r.installPSK(r.members...), r.installPSK(r.members...)
		r.externalJoin("bob", "frank", true, false, h1, h2)
		r.externalJoin("frank", "charlie", false, true, h2) // a resync with a PSK
		r.verify()
	}},
	{"update", func(r *runner) {
		r.createGroup("alice")
		r.addMembers("alice", "bob", "charlie")
		r.fullCommit("alice", commit{byRef: [][]byte{r.updateProposal("bob")}})
		r.fullCommit("bob", commit{byRef: [][]byte{r.updateProposal("alice"), r.updateProposal("charlie")}, forcePath: true})
		r.fullCommit("charlie", commit{}) // empty commit: a path update
		r.verify()
	}},
	{"remove", func(r *runner) {
		r.createGroup("alice")
		r.addMembers("alice", "bob", "charlie", "diana", "ellen")
		r.fullCommit("alice", commit{byRef: [][]byte{r.removeProposal("alice", "bob"), r.removeProposal("charlie", "diana")},
			byValue: []*mlspb.ProposalDescription{removeDesc("ellen")}})
		r.verify()
	}},
	{"psk/external", func(r *runner) {
		r.createGroup("alice")
		r.externalJoin("alice", "bob", false, false)
		h1, h2, h3 := r.installPSK("alice", "bob"), r.installPSK("alice", "bob"), r.installPSK("alice", "bob")
		for _, path := range []bool{true, false} {
			r.fullCommit("alice", commit{byRef: [][]byte{r.externalPSKProposal("alice", h1), r.externalPSKProposal("bob", h2)},
				byValue: []*mlspb.ProposalDescription{r.externalPSKDesc(h3)}, forcePath: path})
		}
		r.verify()
	}},
	{"psk/resumption", func(r *runner) {
		r.createGroup("alice")
		r.externalJoin("alice", "bob", false, false)
		r.fullCommit("alice", commit{})
		r.fullCommit("alice", commit{})
		r.fullCommit("alice", commit{byRef: [][]byte{r.resumptionPSKProposal("alice", 1), r.resumptionPSKProposal("bob", 2)},
			byValue: []*mlspb.ProposalDescription{resumptionDesc(3)}, forcePath: true})
		r.fullCommit("bob", commit{byRef: [][]byte{r.resumptionPSKProposal("alice", 2), r.resumptionPSKProposal("bob", 3)},
			byValue: []*mlspb.ProposalDescription{resumptionDesc(4)}})
		r.verify()
	}},
	{"group-context-extensions", func(r *runner) {
		r.createGroup("alice")
		r.externalJoin("alice", "bob", false, false)
		r.fullCommit("alice", commit{byRef: [][]byte{r.gceProposal("alice", extRequiredCaps, extExternalSenders0)}})
		r.fullCommit("alice", commit{byRef: [][]byte{r.gceProposal("bob")}})
		r.fullCommit("bob", commit{byValue: []*mlspb.ProposalDescription{gceDesc(extRequiredCaps)}})
		r.verify()
	}},
	{"commit/all-together", func(r *runner) {
		for _, proposer := range []string{"alice", "bob"} {
			r.createGroup("alice")
			r.externalJoin("alice", "bob", false, false)
			c1, c2 := r.keyPackage("charlie1"), r.keyPackage("charlie2")
			r.fullCommit("alice", commit{byRef: [][]byte{r.addProposal("alice", c1), r.addProposal("alice", c2)}, joiners: []string{"charlie1", "charlie2"}})
			h1, h2 := r.installPSK(r.members...), r.installPSK(r.members...)
			// Not joiners: a Welcome with resumption PSKs of earlier
			// epochs cannot be joined by a new member.
			c3, c4 := r.keyPackage("charlie3"), r.keyPackage("charlie4")
			refs := [][]byte{
				r.addProposal(proposer, c3),
				r.removeProposal(proposer, "charlie1"),
				r.gceProposal(proposer, extRequiredCaps, extExternalSenders0),
				r.externalPSKProposal(proposer, h1),
				r.resumptionPSKProposal(proposer, 1),
			}
			if proposer == "bob" {
				refs = append(refs, r.updateProposal("bob"))
			}
			r.fullCommit("alice", commit{byRef: refs, byValue: []*mlspb.ProposalDescription{
				addDesc(c4), removeDesc("charlie2"), r.externalPSKDesc(h2), resumptionDesc(2)}})
			r.verify()
			r.done()
		}
	}},
	{"commit/self-and-others", func(r *runner) {
		r.createGroup("alice1")
		r.addMembers("alice1", "alice2", "alice3", "alice4")
		r.fullCommit("alice1", commit{byRef: [][]byte{r.removeProposal("alice1", "alice4"), r.removeProposal("alice2", "alice3")}})
		r.fullCommit("alice1", commit{byRef: [][]byte{r.updateProposal("alice2"), r.updateProposal("alice1")}})
		r.verify()
	}},
	{"application", func(r *runner) {
		r.createGroup("alice")
		r.addMembers("alice", "bob")
		send := func() ([]byte, []byte, []byte) {
			aad, pt := r.fresh("btw"), r.fresh("hello world")
			p, err := r.c("alice").Protect(r.ctx, &mlspb.ProtectRequest{StateId: r.state["alice"], AuthenticatedData: aad, Plaintext: pt})
			r.check("protect", err)
			return p.Ciphertext, aad, pt
		}
		open := func(ct, aad, pt []byte) {
			u, err := r.c("bob").Unprotect(r.ctx, &mlspb.UnprotectRequest{StateId: r.state["bob"], Ciphertext: ct})
			r.check("unprotect", err)
			if string(u.Plaintext) != string(pt) || string(u.AuthenticatedData) != string(aad) {
				r.t.Fatalf("unprotect: %q/%q, want %q/%q", u.Plaintext, u.AuthenticatedData, pt, aad)
			}
		}
		var msgs [][3][]byte
		for range 3 {
			c, a, p := send()
			msgs = append(msgs, [3][]byte{c, a, p})
		}
		for _, i := range []int{0, 1, 2} { // in order
			open(msgs[i][0], msgs[i][1], msgs[i][2])
		}
		msgs = msgs[:0]
		for range 3 {
			c, a, p := send()
			msgs = append(msgs, [3][]byte{c, a, p})
		}
		for _, i := range []int{2, 1, 0} { // out of order within the epoch
			open(msgs[i][0], msgs[i][1], msgs[i][2])
		}
		msgs = msgs[:0]
		for range 2 {
			c, a, p := send()
			msgs = append(msgs, [3][]byte{c, a, p})
		}
		r.fullCommit("alice", commit{})
		for range 2 {
			c, a, p := send()
			msgs = append(msgs, [3][]byte{c, a, p})
		}
		for _, i := range []int{3, 2, 1, 0} { // out of order across epochs
			open(msgs[i][0], msgs[i][1], msgs[i][2])
		}
		r.verify()
	}},
	{"external-proposals/joiner-signed-add", func(r *runner) {
		r.createGroup("alice")
		r.addMembers("alice", "bob")
		gi, _ := r.groupInfo("alice", false)
		resp, err := r.c("charlie").NewMemberAddProposal(r.ctx, &mlspb.NewMemberAddProposalRequest{GroupInfo: gi, Identity: []byte("charlie")})
		r.check("new member add proposal", err)
		r.tx["charlie"] = resp.TransactionId
		r.fullCommit("bob", commit{byRef: [][]byte{resp.Proposal}, joiners: []string{"charlie"}})
		r.verify()
	}},
	{"external-proposals/external-signer", func(r *runner) {
		r.createGroup("alice")
		r.externalJoin("alice", "bob", false, false)
		r.externalJoin("alice", "charlie", false, false)
		r.fullCommit("alice", commit{byRef: [][]byte{r.addExternalSigner("alice", "ds1")}})
		r.fullCommit("alice", commit{byRef: [][]byte{r.addExternalSigner("bob", "ds2")}})
		h1, h2 := r.installPSK(r.members...), r.installPSK(r.members...)
		d := r.keyPackage("diana")
		r.fullCommit("alice", commit{byRef: [][]byte{r.externalSignerProposal("ds1", "alice", addDesc(d))}, joiners: []string{"diana"}})
		p := r.externalSignerProposal("ds2", "bob", removeDesc("charlie"))
		r.removes[string(p)] = "charlie"
		r.fullCommit("alice", commit{byRef: [][]byte{p}})
		r.fullCommit("diana", commit{byRef: [][]byte{
			r.externalSignerProposal("ds1", "alice", r.externalPSKDesc(h1)),
			r.externalSignerProposal("ds2", "alice", r.externalPSKDesc(h2)),
		}})
		r.fullCommit("bob", commit{byRef: [][]byte{r.externalSignerProposal("ds2", "diana", resumptionDesc(r.epoch))}})
		r.fullCommit("alice", commit{byRef: [][]byte{r.externalSignerProposal("ds1", "bob", gceDesc(extRequiredCaps))}})
		r.verify()
	}},
}

// TestScenarios runs every scenario in every suite, with PublicMessage and
// PrivateMessage handshakes, in both assignments of actors to the two
// clients (see combos for the slow suites). Combinations run in parallel on
// the same clients: calls for different states proceed concurrently.
func TestScenarios(t *testing.T) {
	t.Parallel()
	clients := newMatrixClients(t)
	var mu sync.Mutex
	counts := map[string]map[suite.ID]int{}
	for _, sc := range scenarios {
		counts[sc.name] = map[suite.ID]int{}
	}
	t.Run("runs", func(t *testing.T) {
		for _, c := range combos() {
			t.Run(c.String(), func(t *testing.T) {
				t.Parallel()
				for _, sc := range scenarios {
					t.Run(sc.name, func(t *testing.T) {
						t.Parallel() // a slow suite's run is no serial chain
						r := newRunner(t, clients.forSuite(c.id), uint32(c.id), c.encrypt, c.shift)
						sc.run(r)
						r.done()
						mu.Lock()
						counts[sc.name][c.id]++
						mu.Unlock()
					})
				}
			})
		}
	})
	t.Logf("%d RPCs; runs passed per suite 1..7:", totalRPCs.Load())
	for _, sc := range scenarios {
		line := fmt.Sprintf("%-40s", sc.name)
		for _, id := range suite.All() {
			line += fmt.Sprintf(" %d", counts[sc.name][id])
		}
		t.Log(line)
	}
}
