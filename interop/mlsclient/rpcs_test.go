package mlsclient

import (
	"bytes"
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/spacepanda/spacepanda/interop/mlsclient/mlspb"
)

// TestEveryRPCServed calls every method of the MLSClient service, as the
// descriptor lists them, with an empty request: none may answer
// Unimplemented, and every error is a status error with a message.
func TestEveryRPCServed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, New(Options{})) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	sd := mlspb.File_mls_client_proto.Services().ByName("MLSClient")
	if sd == nil {
		t.Fatal("no MLSClient service in the descriptor")
	}
	methods := sd.Methods()
	if methods.Len() < 34 {
		t.Fatalf("%d methods in the descriptor", methods.Len())
	}
	newMsg := func(name protoreflect.FullName) protoreflect.ProtoMessage {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(name)
		if err != nil {
			t.Fatal(err)
		}
		return mt.New().Interface()
	}
	for i := range methods.Len() {
		m := methods.Get(i)
		t.Run(string(m.Name()), func(t *testing.T) {
			in, out := newMsg(m.Input().FullName()), newMsg(m.Output().FullName())
			err := conn.Invoke(context.Background(), "/"+string(sd.FullName())+"/"+string(m.Name()), in, out)
			st, ok := status.FromError(err)
			switch {
			case !ok:
				t.Fatalf("not a status error: %v", err)
			case st.Code() == codes.Unimplemented:
				t.Fatalf("Unimplemented: %v", err)
			case err != nil && st.Message() == "":
				t.Fatalf("%v without a message", st.Code())
			}
		})
	}
}

// TestSuccessorRefusals: bad input to the ReInit, branch and external join
// RPCs gets a status error and consumes nothing: the same transaction or
// reinit id then works with the right input.
func TestSuccessorRefusals(t *testing.T) {
	clients := startClients(t, 2)
	r := newRunner(t, clients, 1, false, 0)
	r.createGroup("alice")
	r.addMembers("alice", "bob", "charlie")

	// A plain Welcome is not a branch's: refused, the transaction is kept.
	kp := r.keyPackage("dave")
	c, err := r.c("alice").Commit(r.ctx, &mlspb.CommitRequest{StateId: r.state["alice"], ByValue: []*mlspb.ProposalDescription{addDesc(kp)}})
	r.check("commit", err)
	_, err = r.c("bob").HandleBranch(r.ctx, &mlspb.HandleBranchRequest{StateId: r.state["bob"], TransactionId: r.tx["dave"], Welcome: c.Welcome})
	wantCode(t, "branch join of a plain welcome", err, codes.InvalidArgument)
	_, err = r.c("dave").JoinGroup(r.ctx, &mlspb.JoinGroupRequest{TransactionId: r.tx["dave"], Welcome: c.Welcome, Identity: []byte("dave")})
	r.check("join after the refused branch join", err)
	_, err = r.c("alice").Free(r.ctx, &mlspb.FreeRequest{StateId: r.state["alice"]})
	r.check("free", err)
	delete(r.state, "alice")
	r.createGroup("alice")
	r.addMembers("alice", "bob", "charlie")

	// Only a ReInit may be committed as one.
	up := r.updateProposal("bob")
	_, err = r.c("alice").ReInitCommit(r.ctx, &mlspb.CommitRequest{StateId: r.state["alice"], ByReference: [][]byte{up}})
	wantCode(t, "reinit commit of an update", err, codes.InvalidArgument)
	r.fullCommit("alice", commit{byRef: [][]byte{up}})

	// remove_prior for someone not in the group.
	gi, _ := r.groupInfo("alice", false)
	_, err = r.c("erin").ExternalJoin(r.ctx, &mlspb.ExternalJoinRequest{GroupInfo: gi, Identity: []byte("erin"), RemovePrior: true})
	wantCode(t, "remove_prior of a stranger", err, codes.FailedPrecondition)
	// A PSK the members lack: the joiner's commit is refused, and nothing changes.
	before, err := r.c("bob").StateAuth(r.ctx, &mlspb.StateAuthRequest{StateId: r.state["bob"]})
	r.check("state auth", err)
	ej, err := r.c("erin").ExternalJoin(r.ctx, &mlspb.ExternalJoinRequest{GroupInfo: gi, Identity: []byte("erin"),
		Psks: []*mlspb.PreSharedKey{{PskId: []byte("nobody has it"), PskSecret: []byte("s")}}})
	r.check("external join with a psk", err)
	_, err = r.c("bob").HandleCommit(r.ctx, &mlspb.HandleCommitRequest{StateId: r.state["bob"], Commit: ej.Commit})
	if err == nil {
		t.Fatal("a commit with an unknown PSK was accepted")
	}
	after, err := r.c("bob").StateAuth(r.ctx, &mlspb.StateAuthRequest{StateId: r.state["bob"]})
	r.check("state auth", err)
	if !bytes.Equal(before.StateAuthSecret, after.StateAuthSecret) {
		t.Fatal("a refused external commit changed the state")
	}

	// A branch Welcome is not a reinit's: refused, the reinit id is kept.
	kps := [][]byte{r.keyPackage("bob"), r.keyPackage("charlie")}
	br, err := r.c("alice").CreateBranch(r.ctx, &mlspb.CreateBranchRequest{StateId: r.state["alice"], KeyPackages: kps})
	r.check("create branch", err)
	ri := reinit{proposer: "alice", committer: "bob", welcomer: "charlie", newGroupID: true}
	cs, gid := r.reinitParams(ri)
	p, err := r.c("alice").ReInitProposal(r.ctx, &mlspb.ReInitProposalRequest{StateId: r.state["alice"], CipherSuite: cs, GroupId: gid})
	r.check("reinit proposal", err)
	rc, err := r.c("bob").ReInitCommit(r.ctx, &mlspb.CommitRequest{StateId: r.state["bob"], ByReference: [][]byte{p.Proposal}})
	r.check("reinit commit", err)
	_, err = r.c("bob").HandlePendingReInitCommit(r.ctx, &mlspb.HandlePendingCommitRequest{StateId: r.state["bob"]})
	r.check("handle pending reinit commit", err)
	h, err := r.c("charlie").HandleReInitCommit(r.ctx, &mlspb.HandleCommitRequest{StateId: r.state["charlie"], Proposal: [][]byte{p.Proposal}, Commit: rc.Commit})
	r.check("handle reinit commit", err)
	_, err = r.c("charlie").HandleReInitWelcome(r.ctx, &mlspb.HandleReInitWelcomeRequest{ReinitId: h.ReinitId, Welcome: br.Welcome})
	wantCode(t, "reinit join of a branch welcome", err, codes.InvalidArgument)
	_, err = r.c("charlie").ReInitWelcome(r.ctx, &mlspb.ReInitWelcomeRequest{ReinitId: h.ReinitId, KeyPackage: [][]byte{kps[0]}})
	if err == nil {
		t.Fatal("a new group without all the old members was created")
	}
	_, err = r.c("charlie").Free(r.ctx, &mlspb.FreeRequest{StateId: h.ReinitId})
	r.check("free the reinit id after the refusals", err)
}
