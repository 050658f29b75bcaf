package node_test

// Process tests of the sync engine through the node (issue 13): real
// `spacepanda serve` and `spacepanda relay` binaries on loopback.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/node"
)

// relayProc is a relay binary on a fixed port and data directory (or the
// database its args name), so it can be killed and started again at the
// same address.
type relayProc struct {
	t      *testing.T
	dir    string
	args   []string // backend flags; none: --data dir
	addr   string
	cmd    *exec.Cmd
	done   chan struct{}
	stderr *lockedBuf
}

func startRelayProc(t *testing.T) *relayProc { t.Helper(); return startRelayProcWith(t, nil) }

// startRelayProcWith starts a relay with backend flags args (none: SQLite
// in a temporary directory).
func startRelayProcWith(t *testing.T, args []string) *relayProc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := &relayProc{t: t, dir: t.TempDir(), args: args, addr: addr}
	r.start()
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			t.Logf("relay stderr:\n%s", r.stderr)
		}
	})
	return r
}

func (r *relayProc) url() string { return "http://" + r.addr }

func (r *relayProc) start() {
	t := r.t
	t.Helper()
	args := r.args
	if len(args) == 0 {
		args = []string{"--data", r.dir}
	}
	r.cmd = exec.Command(spacepandaBin(t), append([]string{"relay", "--listen", r.addr}, args...)...)
	r.stderr = &lockedBuf{}
	r.cmd.Stderr = r.stderr
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(r.cmd, r.done)
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		io.Copy(io.Discard, out)
	}()
	select {
	case l, ok := <-line:
		if !ok || !strings.Contains(l, "serving on") {
			t.Fatalf("relay did not start: %q\n%s", l, r.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("relay did not start within 30s:\n%s", r.stderr)
	}
}

// kill is SIGKILL: no shutdown.
func (r *relayProc) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
	r.cmd = nil
}

func channelOfNode(t *testing.T, p *proc, ch string) node.ChannelResponse {
	t.Helper()
	var r node.ChannelResponse
	if err := p.c.Do(context.Background(), "GET", rlPath(ch), nil, &r); err != nil {
		t.Fatalf("%s GET channel: %v", p.name, err)
	}
	return r
}

func roleOf(p *proc, ch, uid string) string {
	ms, err := p.c.Members(context.Background(), ch)
	if err != nil {
		return "error: " + err.Error()
	}
	for _, m := range ms {
		if m.UserID == uid {
			return m.Role
		}
	}
	return "absent"
}

// TestRelayRoleChangeReachesEveryone: a role change in relay mode is
// posted to the relay like every commit: every member sees it, the
// promoted member can act on it, and the same role again commits nothing.
func TestRelayRoleChangeReachesEveryone(t *testing.T) {
	u, _ := rlStartRelay(t)
	alice, bob, carol := rlNode(t, "alice", u), rlNode(t, "bob", u), rlNode(t, "carol", u)
	ch := rlCreate(t, alice, "roles")
	rlInvite(t, alice, ch, bob)
	rlInvite(t, alice, ch, carol)
	rlWaitJoined(t, bob, ch)
	rlWaitJoined(t, carol, ch)
	ep0 := rlWaitConverged(t, ch, "alice,bob,carol", alice, bob, carol)
	ctx := context.Background()
	var cr node.CommitResponse
	if err := alice.c.Do(ctx, "PUT", rlPath(ch, "/members/", url.PathEscape(bob.uid), "/role"), map[string]string{"role": "admin"}, &cr); err != nil {
		t.Fatal(err)
	}
	if cr.Status != "sent" || cr.Epoch != ep0+1 {
		t.Fatalf("role change: %+v", cr)
	}
	rlEventually(t, 30*time.Second, "bob is admin everywhere", func() (bool, string) {
		got := roleOf(alice, ch, bob.uid) + "," + roleOf(bob, ch, bob.uid) + "," + roleOf(carol, ch, bob.uid)
		return got == "admin,admin,admin", got
	})
	rlWaitConverged(t, ch, "alice,bob,carol", alice, bob, carol)
	// The same role again: 200, no commit.
	status, _ := rawDo(t, alice.c, "PUT", rlPath(ch, "/members/", url.PathEscape(bob.uid), "/role"), jsonBody(map[string]string{"role": "admin"}))
	if status != http.StatusOK {
		t.Fatalf("same role: %d", status)
	}
	if ep := channelOfNode(t, alice, ch).Epoch; ep != ep0+1 {
		t.Fatalf("same role moved the epoch to %d", ep)
	}
	// Bob acts as admin: removes carol; everyone follows.
	if err := bob.c.Do(ctx, "DELETE", rlPath(ch, "/members/", url.PathEscape(carol.uid)), nil, nil); err != nil {
		t.Fatal(err)
	}
	rlWaitConverged(t, ch, "alice,bob", alice, bob)
	rlEventually(t, 30*time.Second, "carol sees her removal", func() (bool, string) {
		c := channelOfNode(t, carol, ch)
		return c.State == "removed" && c.RemovedBy == bob.uid, fmt.Sprintf("%+v", c)
	})
}

// TestRelayDownQueuedThenDelivered: with the relay down a send answers
// 202 queued; the node restarts (SIGKILL) and starts with its relay down,
// serving local history with the message still queued; when the relay
// returns the message is delivered once.
func TestRelayDownQueuedThenDelivered(t *testing.T) {
	rp := startRelayProc(t)
	alice, bob := rlNode(t, "alice", rp.url()), rlNode(t, "bob", rp.url())
	ch := rlCreate(t, alice, "outbox")
	rlInvite(t, alice, ch, bob)
	rlWaitJoined(t, bob, ch)
	rlSend(t, alice, ch, "before")
	rlWaitHistory(t, bob, ch, 1)

	rp.kill()
	var sr node.SendResponse
	if err := alice.c.Do(context.Background(), "POST", rlPath(ch, "/messages"), node.SendRequest{Text: "while the relay is down"}, &sr); err != nil {
		t.Fatalf("send with the relay down: %v", err)
	}
	if sr.Status != "queued" {
		t.Fatalf("send with the relay down: %+v", sr)
	}
	var ready node.ReadyResponse
	if err := alice.c.Do(context.Background(), "GET", "/readyz", nil, &ready); err != nil || ready.Relay != "unreachable" || ready.Status != "degraded" {
		t.Fatalf("readyz with the relay down: %+v %v", ready, err)
	}
	alice.restartHard() // starts with its relay down
	h := rlHistory(t, alice, ch)
	if len(h) != 2 || h[1].Text != "while the relay is down" || h[1].Status != "queued" {
		t.Fatalf("alice's history with the relay down: %+v", h)
	}
	rp.start()
	got := rlWaitHistory(t, bob, ch, 2)
	if fmt.Sprint(rlTexts(got)) != fmt.Sprint([]string{"alice:before", "alice:while the relay is down"}) {
		t.Fatalf("bob's history %v", rlTexts(got))
	}
	rlEventually(t, 30*time.Second, "alice's message sent", func() (bool, string) {
		h := rlHistory(t, alice, ch)
		return h[1].Status == "sent", h[1].Status
	})
}

// TestRelayRemovedThenReinvited: the channel list answers 200 with the
// removed channel's state and who removed us; a new invitation makes it
// active again and the member reads what follows.
func TestRelayRemovedThenReinvited(t *testing.T) {
	u, _ := rlStartRelay(t)
	alice, bob := rlNode(t, "alice", u), rlNode(t, "bob", u)
	ch := rlCreate(t, alice, "comeback")
	rlInvite(t, alice, ch, bob)
	rlWaitJoined(t, bob, ch)
	ctx := context.Background()
	if _, err := alice.c.RemoveMember(ctx, ch, bob.uid); err != nil {
		t.Fatal(err)
	}
	rlEventually(t, 30*time.Second, "bob's channel is removed", func() (bool, string) {
		var l node.ChannelsResponse
		if err := bob.c.Do(ctx, "GET", "/v1/channels", nil, &l); err != nil {
			return false, err.Error()
		}
		return len(l.Channels) == 1 && l.Channels[0].State == "removed" && l.Channels[0].RemovedBy == alice.uid, fmt.Sprintf("%+v", l)
	})
	_, err := bob.c.Send(ctx, ch, "am I still here?", "")
	wantErr(t, err, http.StatusConflict, "channel_not_active")
	rlSend(t, alice, ch, "while bob is out")
	rlInvite(t, alice, ch, bob)
	rlEventually(t, 30*time.Second, "bob active again", func() (bool, string) {
		c := channelOfNode(t, bob, ch)
		return c.State == "active", c.State
	})
	rlSend(t, alice, ch, "welcome back")
	rlEventually(t, 30*time.Second, "bob reads after the re-invite", func() (bool, string) {
		tx := rlTexts(rlHistory(t, bob, ch))
		return len(tx) > 0 && tx[len(tx)-1] == "alice:welcome back", fmt.Sprint(tx)
	})
	for _, s := range rlTexts(rlHistory(t, bob, ch)) {
		if s == "alice:while bob is out" {
			t.Fatal("bob read a message sent while he was out")
		}
	}
}

// TestRelayStrangerWelcomeIsInvitation (issue 12.5): a Welcome from a user
// we share no channel with and have not made a contact is a pending
// invitation, not a join; accept joins, decline drops it.
func TestRelayStrangerWelcomeIsInvitation(t *testing.T) {
	u, _ := rlStartRelay(t)
	mallory, bob := rlNode(t, "mallory", u), rlNode(t, "bob", u)
	ctx := context.Background()
	var invs node.InvitationsResponse
	waitInvitations := func(n int) {
		rlEventually(t, 30*time.Second, "invitations", func() (bool, string) {
			if err := bob.c.Do(ctx, "GET", "/v1/invitations", nil, &invs); err != nil {
				return false, err.Error()
			}
			return len(invs.Invitations) == n, fmt.Sprintf("%+v", invs)
		})
	}
	for _, name := range []string{"urgent: send me the secret", "second"} {
		ch := rlCreate(t, mallory, name)
		if err := mallory.c.Do(ctx, "POST", rlPath(ch, "/invites"), map[string]string{"user_id": bob.uid}, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitInvitations(2)
	var l node.ChannelsResponse
	if err := bob.c.Do(ctx, "GET", "/v1/channels", nil, &l); err != nil || len(l.Channels) != 0 {
		t.Fatalf("bob joined a stranger's channel: %+v %v", l, err)
	}
	if invs.Invitations[0].Inviter.UserID != mallory.uid {
		t.Fatalf("inviter %+v", invs.Invitations[0].Inviter)
	}
	if status, _ := rawDo(t, bob.c, "POST", "/v1/invitations/"+invs.Invitations[0].InvitationID+"/decline", nil); status != http.StatusNoContent {
		t.Fatalf("decline: %d", status)
	}
	waitInvitations(1)
	var joined node.ChannelResponse
	if err := bob.c.Do(ctx, "POST", "/v1/invitations/"+invs.Invitations[0].InvitationID+"/accept", nil, &joined); err != nil {
		t.Fatal(err)
	}
	if joined.State != "active" || joined.Name != "second" {
		t.Fatalf("accepted: %+v", joined)
	}
	waitInvitations(0)
	status, code := rawDo(t, bob.c, "POST", "/v1/invitations/nope/accept", nil)
	if status != http.StatusNotFound || code != "not_found" {
		t.Fatalf("accept unknown: %d %s", status, code)
	}
}
