package mlsclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/spacepanda/spacepanda/interop/mlsclient/mlspb"
	"github.com/spacepanda/spacepanda/mls/suite"
)

// A test runner in the manner of the mlswg harness: actors are assigned to
// one of several client processes (here gRPC servers on loopback), and a
// scenario is a sequence of RPCs. After every commit the members must agree
// on the epoch authenticator; verify checks the common state of all
// members: StateAuth, Export, and Protect/Unprotect between every pair.

// startClients starts n interop servers on loopback and connects to them.
func startClients(t testing.TB, n int) []mlspb.MLSClientClient {
	t.Helper()
	var out []mlspb.MLSClientClient
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Serve(ctx, l, New(Options{})) }()
		conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			conn.Close()
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
		out = append(out, mlspb.NewMLSClientClient(conn))
	}
	return out
}

// runner drives one scenario for one suite, handshake mode and assignment
// of actors to clients.
type runner struct {
	t       testing.TB
	ctx     context.Context
	clients []mlspb.MLSClientClient
	suite   uint32
	encrypt bool
	shift   int // actor k goes to client (k+shift) % len(clients)

	assigned map[string]int
	state    map[string]uint32 // actor → state id
	tx       map[string]uint32 // actor → pending join
	signer   map[string]uint32 // actor → external signer id
	members  []string          // the group's members, in join order
	removes  map[string]string // remove proposal → actor it removes
	psks     map[int][2][]byte // installed external PSKs: id, secret
	groupID  []byte
	epoch    uint64 // the group's epoch
	keepOld  bool   // leave replaced and removed states allocated, as the official runner does
	counter  int
}

// totalRPCs counts the calls the runners make.
var totalRPCs atomic.Int64

func newRunner(t testing.TB, clients []mlspb.MLSClientClient, suite uint32, encrypt bool, shift int) *runner {
	return &runner{t: t, ctx: context.Background(), clients: clients, suite: suite, encrypt: encrypt, shift: shift,
		assigned: map[string]int{}, state: map[string]uint32{}, tx: map[string]uint32{}, signer: map[string]uint32{},
		removes: map[string]string{}, psks: map[int][2][]byte{}}
}

// c returns the client an actor is assigned to.
func (r *runner) c(actor string) mlspb.MLSClientClient {
	k, ok := r.assigned[actor]
	if !ok {
		k = (len(r.assigned) + r.shift) % len(r.clients)
		r.assigned[actor] = k
	}
	totalRPCs.Add(1)
	return r.clients[k]
}

func (r *runner) check(what string, err error) {
	r.t.Helper()
	if err != nil {
		r.t.Fatalf("%s: %v", what, err)
	}
}

// fresh returns distinct bytes for labels, plaintexts and ids.
func (r *runner) fresh(prefix string) []byte {
	r.counter++
	return fmt.Appendf(nil, "%s-%d", prefix, r.counter)
}

func (r *runner) createGroup(actor string) {
	r.groupID = make([]byte, 16)
	rand.Read(r.groupID)
	resp, err := r.c(actor).CreateGroup(r.ctx, &mlspb.CreateGroupRequest{GroupId: r.groupID, CipherSuite: r.suite,
		EncryptHandshake: r.encrypt, Identity: []byte(actor)})
	r.check("create group", err)
	r.state[actor] = resp.StateId
	r.members, r.epoch = []string{actor}, 0
}

func (r *runner) keyPackage(actor string) []byte {
	resp, err := r.c(actor).CreateKeyPackage(r.ctx, &mlspb.CreateKeyPackageRequest{CipherSuite: r.suite, Identity: []byte(actor)})
	r.check("key package", err)
	if len(resp.InitPriv) == 0 || len(resp.EncryptionPriv) == 0 || len(resp.SignaturePriv) == 0 {
		r.t.Fatal("key package: private keys missing")
	}
	r.tx[actor] = resp.TransactionId
	return resp.KeyPackage
}

// installPSK stores a fresh external PSK at the actors and returns its handle.
func (r *runner) installPSK(actors ...string) int {
	h := len(r.psks) + 1
	id, secret := r.fresh("psk-id"), r.fresh("psk-secret")
	r.psks[h] = [2][]byte{id, secret}
	for _, a := range actors {
		sid, ok := r.state[a]
		if !ok {
			sid = r.tx[a]
		}
		_, err := r.c(a).StorePSK(r.ctx, &mlspb.StorePSKRequest{StateOrTransactionId: sid, PskId: id, PskSecret: secret})
		r.check("store psk", err)
	}
	return h
}

func (r *runner) pskID(h int) []byte { return r.psks[h][0] }

func (r *runner) groupInfo(actor string, externalTree bool) (gi, tree []byte) {
	resp, err := r.c(actor).GroupInfo(r.ctx, &mlspb.GroupInfoRequest{StateId: r.state[actor], ExternalTree: externalTree})
	r.check("group info", err)
	if externalTree == (len(resp.RatchetTree) == 0) {
		r.t.Fatalf("group info: external_tree %v but ratchet tree of %d bytes", externalTree, len(resp.RatchetTree))
	}
	return resp.GroupInfo, resp.RatchetTree
}

// Proposals by members.

func (r *runner) addProposal(actor string, kp []byte) []byte {
	resp, err := r.c(actor).AddProposal(r.ctx, &mlspb.AddProposalRequest{StateId: r.state[actor], KeyPackage: kp})
	r.check("add proposal", err)
	return resp.Proposal
}

func (r *runner) updateProposal(actor string) []byte {
	resp, err := r.c(actor).UpdateProposal(r.ctx, &mlspb.UpdateProposalRequest{StateId: r.state[actor]})
	r.check("update proposal", err)
	return resp.Proposal
}

func (r *runner) removeProposal(actor, removed string) []byte {
	resp, err := r.c(actor).RemoveProposal(r.ctx, &mlspb.RemoveProposalRequest{StateId: r.state[actor], RemovedId: []byte(removed)})
	r.check("remove proposal", err)
	r.removes[string(resp.Proposal)] = removed
	return resp.Proposal
}

func (r *runner) externalPSKProposal(actor string, h int) []byte {
	resp, err := r.c(actor).ExternalPSKProposal(r.ctx, &mlspb.ExternalPSKProposalRequest{StateId: r.state[actor], PskId: r.pskID(h)})
	r.check("external psk proposal", err)
	return resp.Proposal
}

func (r *runner) resumptionPSKProposal(actor string, epoch uint64) []byte {
	resp, err := r.c(actor).ResumptionPSKProposal(r.ctx, &mlspb.ResumptionPSKProposalRequest{StateId: r.state[actor], EpochId: epoch})
	r.check("resumption psk proposal", err)
	return resp.Proposal
}

func (r *runner) gceProposal(actor string, exts ...*mlspb.Extension) []byte {
	resp, err := r.c(actor).GroupContextExtensionsProposal(r.ctx, &mlspb.GroupContextExtensionsProposalRequest{StateId: r.state[actor], Extensions: exts})
	r.check("group context extensions proposal", err)
	return resp.Proposal
}

// Descriptions of by-value proposals.

func addDesc(kp []byte) *mlspb.ProposalDescription {
	return &mlspb.ProposalDescription{ProposalType: []byte(descAdd), KeyPackage: kp}
}

func removeDesc(actor string) *mlspb.ProposalDescription {
	return &mlspb.ProposalDescription{ProposalType: []byte(descRemove), RemovedId: []byte(actor)}
}

func (r *runner) externalPSKDesc(h int) *mlspb.ProposalDescription {
	return &mlspb.ProposalDescription{ProposalType: []byte(descExternalPSK), PskId: r.pskID(h)}
}

func resumptionDesc(epoch uint64) *mlspb.ProposalDescription {
	return &mlspb.ProposalDescription{ProposalType: []byte(descResumptionPSK), EpochId: epoch}
}

func gceDesc(exts ...*mlspb.Extension) *mlspb.ProposalDescription {
	return &mlspb.ProposalDescription{ProposalType: []byte(descGCE), Extensions: exts}
}

// The extensions the official scenarios use: required_capabilities with
// empty lists, and an empty external_senders.
var (
	extRequiredCaps     = &mlspb.Extension{ExtensionType: 3, ExtensionData: []byte{0, 0, 0}}
	extExternalSenders0 = &mlspb.Extension{ExtensionType: 5, ExtensionData: []byte{0}}
)

// commit is a commit by committer: members (everyone else in the group but
// the removed) handle it, joiners join from its Welcome, and all must agree
// on the epoch authenticator.
type commit struct {
	byRef        [][]byte
	byValue      []*mlspb.ProposalDescription
	joiners      []string
	forcePath    bool
	externalTree bool
}

func (r *runner) fullCommit(committer string, c commit) {
	r.t.Helper()
	resp, err := r.c(committer).Commit(r.ctx, &mlspb.CommitRequest{StateId: r.state[committer], ByReference: c.byRef,
		ByValue: c.byValue, ForcePath: c.forcePath, ExternalTree: c.externalTree})
	r.check("commit by "+committer, err)
	if len(c.joiners) > 0 && len(resp.Welcome) == 0 {
		r.t.Fatalf("commit: %d joiners, welcome of %d bytes", len(c.joiners), len(resp.Welcome))
	}
	if c.externalTree == (len(resp.RatchetTree) == 0) {
		r.t.Fatalf("commit: external_tree %v, ratchet tree of %d bytes", c.externalTree, len(resp.RatchetTree))
	}
	hp, err := r.c(committer).HandlePendingCommit(r.ctx, &mlspb.HandlePendingCommitRequest{StateId: r.state[committer]})
	r.check("handle pending commit", err)
	auth := hp.EpochAuthenticator

	removed := map[string]bool{}
	for _, p := range c.byRef {
		if a, ok := r.removes[string(p)]; ok {
			removed[a] = true
		}
	}
	for _, d := range c.byValue {
		if string(d.ProposalType) == descRemove {
			removed[string(d.RemovedId)] = true
		}
	}
	var next []string
	for _, m := range r.members {
		if removed[m] {
			continue
		}
		next = append(next, m)
		if m == committer {
			continue
		}
		h, err := r.c(m).HandleCommit(r.ctx, &mlspb.HandleCommitRequest{StateId: r.state[m], Proposal: c.byRef, Commit: resp.Commit})
		r.check("handle commit at "+m, err)
		if !bytes.Equal(h.EpochAuthenticator, auth) {
			r.t.Fatalf("%s disagrees with %s on the epoch authenticator", m, committer)
		}
		r.state[m] = h.StateId
	}
	for _, j := range c.joiners {
		req := &mlspb.JoinGroupRequest{TransactionId: r.tx[j], Welcome: resp.Welcome, EncryptHandshake: r.encrypt, Identity: []byte(j)}
		if c.externalTree {
			req.RatchetTree = resp.RatchetTree
		}
		jr, err := r.c(j).JoinGroup(r.ctx, req)
		r.check("join "+j, err)
		if !bytes.Equal(jr.EpochAuthenticator, auth) {
			r.t.Fatalf("joiner %s disagrees with %s on the epoch authenticator", j, committer)
		}
		r.state[j] = jr.StateId
		delete(r.tx, j)
		next = append(next, j)
	}
	for a := range removed {
		if r.keepOld {
			delete(r.state, a)
		} else {
			r.free(a)
		}
	}
	r.members = next
	r.epoch++
}

// externalJoin: joiner joins by external commit from actor's GroupInfo,
// injecting the external PSKs psks (installed at the members); every member
// handles the commit.
func (r *runner) externalJoin(actor, joiner string, externalTree, removePrior bool, psks ...int) {
	r.t.Helper()
	gi, tree := r.groupInfo(actor, externalTree)
	req := &mlspb.ExternalJoinRequest{GroupInfo: gi, RatchetTree: tree,
		EncryptHandshake: r.encrypt, Identity: []byte(joiner), RemovePrior: removePrior}
	for _, h := range psks {
		req.Psks = append(req.Psks, &mlspb.PreSharedKey{PskId: r.psks[h][0], PskSecret: r.psks[h][1]})
	}
	resp, err := r.c(joiner).ExternalJoin(r.ctx, req)
	r.check("external join "+joiner, err)
	for _, m := range r.members {
		if m == joiner {
			continue
		}
		h, err := r.c(m).HandleCommit(r.ctx, &mlspb.HandleCommitRequest{StateId: r.state[m], Commit: resp.Commit})
		r.check("handle external commit at "+m, err)
		if !bytes.Equal(h.EpochAuthenticator, resp.EpochAuthenticator) {
			r.t.Fatalf("%s disagrees with joiner %s on the epoch authenticator", m, joiner)
		}
	}
	if removePrior {
		if r.keepOld {
			delete(r.state, joiner)
		} else {
			r.free(joiner)
		}
	} else {
		r.members = append(r.members, joiner)
	}
	r.state[joiner] = resp.StateId
	r.epoch++
}

// addMembers has actor add the joiners by value, one commit.
func (r *runner) addMembers(actor string, joiners ...string) {
	var descs []*mlspb.ProposalDescription
	for _, j := range joiners {
		descs = append(descs, addDesc(r.keyPackage(j)))
	}
	r.fullCommit(actor, commit{byValue: descs, joiners: joiners})
}

// free frees an actor's state; later calls on it must fail with NotFound.
func (r *runner) free(actor string) {
	id, ok := r.state[actor]
	if !ok {
		return
	}
	_, err := r.c(actor).Free(r.ctx, &mlspb.FreeRequest{StateId: id})
	r.check("free", err)
	_, err = r.c(actor).StateAuth(r.ctx, &mlspb.StateAuthRequest{StateId: id})
	wantCode(r.t, "state auth after free", err, codes.NotFound)
	delete(r.state, actor)
}

// protect has actor send a message and every other member open it.
func (r *runner) protectAll(from string) {
	r.t.Helper()
	aad, pt := r.fresh("aad"), r.fresh("hello from "+from)
	p, err := r.c(from).Protect(r.ctx, &mlspb.ProtectRequest{StateId: r.state[from], AuthenticatedData: aad, Plaintext: pt})
	r.check("protect", err)
	for _, m := range r.members {
		if m == from {
			continue
		}
		u, err := r.c(m).Unprotect(r.ctx, &mlspb.UnprotectRequest{StateId: r.state[m], Ciphertext: p.Ciphertext})
		r.check("unprotect at "+m, err)
		if !bytes.Equal(u.Plaintext, pt) || !bytes.Equal(u.AuthenticatedData, aad) {
			r.t.Fatalf("%s read %q/%q from %s, want %q/%q", m, u.Plaintext, u.AuthenticatedData, from, pt, aad)
		}
	}
}

// agree checks that all members have the same StateAuth and Export.
func (r *runner) agree() {
	r.t.Helper()
	label, ctx := string(r.fresh("label")), r.fresh("context")
	var auth, exp []byte
	for i, m := range r.members {
		a, err := r.c(m).StateAuth(r.ctx, &mlspb.StateAuthRequest{StateId: r.state[m]})
		r.check("state auth", err)
		e, err := r.c(m).Export(r.ctx, &mlspb.ExportRequest{StateId: r.state[m], Label: label, Context: ctx, KeyLength: 32})
		r.check("export", err)
		if len(a.StateAuthSecret) == 0 || len(e.ExportedSecret) != 32 {
			r.t.Fatalf("%s: state auth of %d bytes, export of %d", m, len(a.StateAuthSecret), len(e.ExportedSecret))
		}
		if i == 0 {
			auth, exp = a.StateAuthSecret, e.ExportedSecret
			continue
		}
		if !bytes.Equal(a.StateAuthSecret, auth) || !bytes.Equal(e.ExportedSecret, exp) {
			r.t.Fatalf("%s disagrees with %s on state auth or export", m, r.members[0])
		}
	}
}

// verify is the harness's "verify group state": agreement, and every
// member's message read by all others. In the suites the race detector
// makes slow (slowSuite), every member's message is read by the next
// member instead, after agreement on StateAuth and Export: the pairs that
// read each other still cover every member as sender and receiver.
func (r *runner) verify() {
	r.t.Helper()
	r.agree()
	if !slowSuite(suite.ID(r.suite)) || len(r.members) < 3 {
		for _, m := range r.members {
			r.protectAll(m)
		}
		return
	}
	for i, m := range r.members {
		r.protectTo(m, r.members[(i+1)%len(r.members)])
	}
}

// protectTo has from send a message and to open it.
func (r *runner) protectTo(from, to string) {
	r.t.Helper()
	aad, pt := r.fresh("aad"), r.fresh("hello from "+from)
	p, err := r.c(from).Protect(r.ctx, &mlspb.ProtectRequest{StateId: r.state[from], AuthenticatedData: aad, Plaintext: pt})
	r.check("protect", err)
	u, err := r.c(to).Unprotect(r.ctx, &mlspb.UnprotectRequest{StateId: r.state[to], Ciphertext: p.Ciphertext})
	r.check("unprotect at "+to, err)
	if !bytes.Equal(u.Plaintext, pt) || !bytes.Equal(u.AuthenticatedData, aad) {
		r.t.Fatalf("%s read %q/%q from %s, want %q/%q", to, u.Plaintext, u.AuthenticatedData, from, pt, aad)
	}
}

// done frees every state.
func (r *runner) done() {
	for _, a := range slices.Sorted(maps.Keys(r.state)) {
		r.free(a)
	}
	r.members, r.epoch = nil, 0
}

// addExternalSigner creates an external signer and has actor propose it.
func (r *runner) addExternalSigner(actor, signer string) []byte {
	cs, err := r.c(signer).CreateExternalSigner(r.ctx, &mlspb.CreateExternalSignerRequest{CipherSuite: r.suite, Identity: []byte(signer)})
	r.check("create external signer", err)
	r.signer[signer] = cs.SignerId
	p, err := r.c(actor).AddExternalSigner(r.ctx, &mlspb.AddExternalSignerRequest{StateId: r.state[actor], ExternalSender: cs.ExternalSender})
	r.check("add external signer", err)
	return p.Proposal
}

// externalSignerProposal has signer propose d for the epoch member's
// GroupInfo describes.
func (r *runner) externalSignerProposal(signer, member string, d *mlspb.ProposalDescription) []byte {
	gi, tree := r.groupInfo(member, true)
	p, err := r.c(signer).ExternalSignerProposal(r.ctx, &mlspb.ExternalSignerProposalRequest{SignerId: r.signer[signer],
		GroupInfo: gi, RatchetTree: tree, Description: d})
	r.check("external signer proposal", err)
	if string(d.ProposalType) == descRemove {
		r.removes[string(p.Proposal)] = string(d.RemovedId)
	}
	return p.Proposal
}

func wantCode(t testing.TB, what string, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("%s: got %v, want code %v", what, err, code)
	}
}
