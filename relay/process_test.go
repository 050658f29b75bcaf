package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls"
)

// The test binary doubles as `spacepanda relay`: with
// SPACEPANDA_RELAY_CHILD set it runs Main with the JSON-encoded arguments
// in it, the same code path as the CLI, in a real separate process.
func TestMain(m *testing.M) {
	if a := os.Getenv("SPACEPANDA_SQUAT_CHILD"); a != "" {
		os.Exit(squatChild(a))
	}
	if a := os.Getenv("SPACEPANDA_RELAY_CHILD"); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := childMain(ctx, args, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

type relayProc struct {
	cmd    *exec.Cmd
	base   string
	stderr *bytes.Buffer
	done   chan error
}

// startRelay runs a relay process with args (plus --listen 127.0.0.1:0)
// and waits for its first stdout line.
func startRelay(t *testing.T, args ...string) *relayProc {
	t.Helper()
	a, _ := json.Marshal(append(args, "--listen", "127.0.0.1:0"))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SPACEPANDA_RELAY_CHILD="+string(a))
	p := &relayProc{cmd: cmd, stderr: new(bytes.Buffer), done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		for sc.Scan() {
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() { p.kill() })
	select {
	case l, ok := <-line:
		base, found := strings.CutPrefix(l, "spacepanda relay serving on ")
		if !ok || !found {
			p.kill()
			t.Fatalf("relay did not start: %q; stderr: %s", l, p.stderr)
		}
		p.base = base
	case <-time.After(30 * time.Second):
		p.kill()
		t.Fatalf("relay did not start in time; stderr: %s", p.stderr)
	}
	return p
}

// kill sends SIGKILL and reaps the process.
func (p *relayProc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		<-p.done
	}
}

// TestRelayKillRestart: a relay killed with SIGKILL in the middle of
// traffic and restarted on the same data directory has every message it
// accepted (same seq, same bytes), every key package it did not hand out,
// the cursors and the welcomes, and the tokens still work.
func TestRelayKillRestart(t *testing.T) {
	dir := t.TempDir()
	p := startRelay(t, "--data", dir)
	alice, bob := newIdent(t, "alice"), newIdent(t, "bob")
	ca, cb := login(t, p.base, alice), login(t, p.base, bob)
	gid := []byte("durable")
	gp := "/v1/groups/" + gidPath(gid)
	setupGroup(t, ca, gid, alice, bob)
	var kps [][]byte
	for range 30 {
		kps = append(kps, alice.keyPackage(t, false))
	}
	ca.must(200, "POST", "/v1/key-packages", map[string]any{"key_packages": kps, "last_resort": alice.keyPackage(t, true)})

	accepted := map[int64][]byte{} // seq -> message bytes, acknowledged by the relay
	claimedOK := 0                 // claims whose response arrived
	claimsTried := 0
	welcomes := map[int64]bool{}
	var cursor int64
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 5 {
		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range 4 {
			c := ca
			if w%2 == 1 {
				c = cb
			}
			c = &client{t: t, base: p.base, id: c.id, token: c.token}
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					switch {
					case w == 3 && i%5 == 0:
						mu.Lock()
						claimsTried++
						mu.Unlock()
						r, err := tryDo(c, "POST", "/v1/key-packages/claim", map[string]any{"user_id": alice.uid()})
						if err == nil && r.status == 200 && r.body["key_packages"].([]any)[0].(map[string]any)["last_resort"] == false {
							mu.Lock()
							claimedOK++
							mu.Unlock()
						}
					case w == 2 && i%7 == 0:
						r, err := tryDo(c, "POST", "/v1/welcomes", map[string]any{"recipients": []string{bob.uid()}, "welcome": welcomeMsg(t), "group_id": gid})
						if err == nil && r.status == 200 {
							mu.Lock()
							welcomes[int64(r.body["ids"].([]any)[0].(float64))] = true
							mu.Unlock()
						}
					default:
						msg := privMsg(t, gid, 1, mls.ContentTypeApplication)
						r, err := tryDo(c, "POST", gp+"/messages", map[string]any{"message": msg, "kind": "application", "epoch": 1})
						if err == nil && r.status == 200 {
							mu.Lock()
							accepted[r.num("seq")] = msg
							mu.Unlock()
						} else if err == nil {
							t.Errorf("post refused: %d %s", r.status, r.raw)
						}
					}
				}
			})
		}
		// A cursor saved just before the kill.
		time.Sleep(time.Duration(20+rng.IntN(100)) * time.Millisecond)
		mu.Lock()
		cursor = int64(len(accepted))
		mu.Unlock()
		cb.base = p.base
		cb.must(200, "PUT", gp+"/cursor", map[string]any{"after": cursor})
		time.Sleep(time.Duration(rng.IntN(80)) * time.Millisecond)
		p.kill() // SIGKILL mid-traffic
		close(stop)
		wg.Wait()

		p = startRelay(t, "--data", dir)
		ca.base, cb.base = p.base, p.base
		// Everything acknowledged is there, byte for byte, in order.
		var after int64
		seen := 0
		for {
			r := cb.must(200, "GET", fmt.Sprintf("%s/messages?after=%d&limit=1000", gp, after), nil)
			ms := r.body["messages"].([]any)
			if len(ms) == 0 {
				break
			}
			for _, m := range ms {
				m := m.(map[string]any)
				seq := int64(m["seq"].(float64))
				if seq != after+1 && after != 0 {
					t.Fatalf("round %d: gap: seq %d after %d", round, seq, after)
				}
				after = seq
				if want, ok := accepted[seq]; ok {
					got, _ := base64.StdEncoding.DecodeString(m["message"].(string))
					if !bytes.Equal(got, want) {
						t.Fatalf("round %d: seq %d changed", round, seq)
					}
					seen++
				}
			}
		}
		if seen != len(accepted) {
			t.Fatalf("round %d: %d of %d acknowledged messages survived", round, seen, len(accepted))
		}
		if r := cb.must(200, "GET", gp+"/cursor", nil); r.num("after") != cursor {
			t.Fatalf("round %d: cursor %d, want %d", round, r.num("after"), cursor)
		}
		r := ca.must(200, "GET", "/v1/key-packages/count", nil)
		// A claim cut off by the kill may or may not have committed.
		if avail := int(r.num("available")); avail > 30-claimedOK || avail < 30-claimsTried || r.body["last_resort"] != true {
			t.Fatalf("round %d: %d key packages left after %d acknowledged of %d claims", round, avail, claimedOK, claimsTried)
		}
		r = cb.must(200, "GET", "/v1/welcomes", nil)
		have := map[int64]bool{}
		for _, w := range r.body["welcomes"].([]any) {
			have[int64(w.(map[string]any)["id"].(float64))] = true
		}
		for id := range welcomes {
			if !have[id] {
				t.Fatalf("round %d: welcome %d lost", round, id)
			}
		}
		t.Logf("round %d: %d messages, %d claims, %d welcomes acknowledged so far", round, len(accepted), claimedOK, len(welcomes))
	}
	// A graceful stop (SIGTERM) exits 0.
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("SIGTERM: %v; stderr: %s", err, p.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not stop on SIGTERM")
	}
}

// tryDo is client.do that reports transport errors (the relay being
// killed) instead of failing the test.
func tryDo(c *client, method, path string, body any) (r resp, err error) {
	ft := &fakeT{TB: c.t}
	cc := *c
	cc.t = ft
	func() {
		defer func() {
			if v := recover(); v != nil {
				if _, ok := v.(fakeFatal); !ok {
					panic(v)
				}
				err = fmt.Errorf("transport: %s", ft.msg)
			}
		}()
		r = cc.do(method, path, body)
	}()
	return r, err
}

type fakeFatal struct{}

type fakeT struct {
	testing.TB
	msg string
}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(fakeFatal{})
}
func (f *fakeT) Fatal(args ...any) { f.msg = fmt.Sprint(args...); panic(fakeFatal{}) }
func (f *fakeT) Helper()           {}

// TestTwoRelaysOnePostgres: two relay processes on one PostgreSQL database,
// hammered with concurrent commits for the same epochs through both, accept
// exactly one commit per epoch; a long-poll on one is woken by a post on
// the other (LISTEN/NOTIFY).
func TestTwoRelaysOnePostgres(t *testing.T) {
	url := freshPG(t)
	a, b := startRelay(t, "--postgres", url), startRelay(t, "--postgres", url)
	alice := newIdent(t, "alice")
	ca := login(t, a.base, alice)
	gid := []byte("contended")
	gp := "/v1/groups/" + gidPath(gid)
	mg := setupGroup(t, ca, gid, alice)
	// Every committer commits from the state of the epoch it tries; the
	// winner of an epoch publishes the next one's.
	var smu sync.Mutex
	published := sync.NewCond(&smu)
	states := map[uint64]*mls.Group{0: mg.g[alice]}
	// commitAt waits for the winner to publish the epoch's state and
	// commits from it (a Group is not for concurrent use: one at a time).
	commitAt := func(epoch uint64) (*mls.CommitResult, error) {
		smu.Lock()
		defer smu.Unlock()
		for states[epoch] == nil {
			published.Wait()
		}
		return states[epoch].Commit(mls.CommitOptions{})
	}

	// Cross-instance wake-up: wait on B, post on A.
	cbB := login(t, b.base, alice)
	got := make(chan resp, 1)
	go func() { got <- cbB.do("GET", gp+"/messages?wait=30", nil) }()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	ca.must(200, "POST", gp+"/messages", map[string]any{"message": privMsg(t, gid, 0, mls.ContentTypeApplication), "kind": "application", "epoch": 0})
	select {
	case r := <-got:
		if len(r.body["messages"].([]any)) != 1 {
			t.Fatalf("woken with %s", r.raw)
		}
		t.Logf("long-poll on B woken %v after the post on A", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("long-poll on B not woken by a post on A")
	}

	const epochs, perRelay = 40, 4
	var accepted, conflicts atomic.Int64
	var wg sync.WaitGroup
	for i := range 2 * perRelay {
		p := a
		if i%2 == 1 {
			p = b
		}
		c := login(t, p.base, alice)
		wg.Go(func() {
			epoch := uint64(0)
			for epoch < epochs {
				res, err := commitAt(epoch)
				if err != nil {
					t.Error(err)
					return
				}
				gi, err := res.State.GroupInfo(true)
				if err != nil {
					t.Error(err)
					return
				}
				r, err := tryDo(c, "POST", gp+"/messages", map[string]any{"message": mlsWire(t, res.Commit), "group_info": mlsBytes(t, gi)})
				switch {
				case err != nil:
					t.Error(err)
					return
				case r.status == 200:
					accepted.Add(1)
					smu.Lock()
					states[epoch+1] = res.State
					published.Broadcast()
					smu.Unlock()
					epoch++
				case r.status == 409 && r.code() == "commit_conflict":
					conflicts.Add(1)
					epoch = uint64(r.num("current_epoch"))
				default:
					t.Errorf("commit: %d %s", r.status, r.raw)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := accepted.Load(); n != epochs {
		t.Fatalf("%d commits accepted", n)
	}
	// The log holds exactly one commit per epoch, in epoch order.
	r := ca.must(200, "GET", gp+"/messages?limit=1000", nil)
	var commits []uint64
	for _, m := range r.body["messages"].([]any) {
		m := m.(map[string]any)
		if m["kind"] == "commit" {
			commits = append(commits, uint64(m["epoch"].(float64)))
		}
	}
	if int64(len(commits)) != accepted.Load() {
		t.Fatalf("%d commits in the log, %d acknowledged", len(commits), accepted.Load())
	}
	for i, e := range commits {
		if e != uint64(i) {
			t.Fatalf("commit %d is for epoch %d: %v", i, e, commits)
		}
	}
	if g := ca.must(200, "GET", gp, nil); g.num("epoch") != int64(len(commits)) {
		t.Fatalf("group epoch %d after %d commits", g.num("epoch"), len(commits))
	}
	if conflicts.Load() == 0 {
		t.Fatal("no commit was refused: the relays were not contended")
	}
	t.Logf("%d commits accepted for %d epochs across two relays, %d refused with commit_conflict", len(commits), epochs, conflicts.Load())
}
