package provider_test

// The re-exec harness: the test binary runs itself as a child process that
// plays one identity (an "agent") over a line protocol on stdin/stdout. Each
// child opens the identity's data directory with provider.Open, so a test
// that starts a new child between two steps restarts the PROCESS between
// them: nothing survives but what the store holds on disk.
//
// Protocol: one command per line, fields separated by spaces, binary fields
// in standard base64. The child answers each command with one line:
// "ok field..." or "err CLASS message", CLASS naming the sentinel the error
// wraps (see errClass). The child exits 0 when stdin closes.

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
	"github.com/spacepanda/spacepanda/provider"
	"github.com/spacepanda/spacepanda/store"
)

const (
	agentDirEnv  = "SPACEPANDA_PROVIDER_AGENT_DIR"
	agentNameEnv = "SPACEPANDA_PROVIDER_AGENT_NAME"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(agentDirEnv); dir != "" {
		os.Exit(runAgent(dir, os.Getenv(agentNameEnv)))
	}
	os.Exit(m.Run())
}

var b64 = base64.StdEncoding

func enc(b []byte) string { return b64.EncodeToString(b) }

func dec(s string) ([]byte, error) { return b64.DecodeString(s) }

// errClass names the sentinel an error wraps, for the parent to check with
// errors.Is semantics across the process boundary.
func errClass(err error) string {
	for _, c := range []struct {
		name string
		err  error
	}{
		{"nomatch", mls.ErrNoMatchingKeyPackage},
		{"wrongepoch", mls.ErrWrongEpoch},
		{"keyconsumed", schedule.ErrKeyConsumed},
		{"owncommit", mls.ErrOwnCommit},
		{"groupexists", provider.ErrGroupExists},
		{"groupnotfound", provider.ErrGroupNotFound},
		{"wrongkey", store.ErrWrongKey},
	} {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return "other"
}

// runAgent is the child's main.
func runAgent(dir, name string) int {
	ctx := context.Background()
	p, err := provider.Open(ctx, dir, provider.OpenOptions{Options: provider.Options{Name: name}})
	if err != nil {
		fmt.Printf("err %s open: %v\n", errClass(err), err)
		return 2
	}
	defer p.Close()
	out := bufio.NewWriter(os.Stdout)
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	pending := map[string]*provider.PendingCommit{}
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		res, err := agentCommand(ctx, p, pending, f)
		// The answer leaves only after the command returned, i.e. after
		// whatever it changed is durable (the provider's contract).
		if err != nil {
			fmt.Fprintf(out, "err %s %s: %s\n", errClass(err), f[0], strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			fmt.Fprintln(out, strings.Join(append([]string{"ok"}, res...), " "))
		}
		if err := out.Flush(); err != nil {
			return 3
		}
	}
	return 0
}

func agentCommand(ctx context.Context, p *provider.Provider, pending map[string]*provider.PendingCommit, f []string) ([]string, error) {
	args := make([][]byte, len(f)-1)
	for i, s := range f[1:] {
		if f[0] == "kp" || (f[0] == "send" || f[0] == "remove") && i == 1 {
			args[i] = []byte(s)
			continue
		}
		b, err := dec(s)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		args[i] = b
	}
	need := func(n int) error {
		if len(args) < n {
			return fmt.Errorf("%s needs %d arguments", f[0], n)
		}
		return nil
	}
	switch f[0] {
	case "sigpub":
		return []string{enc(p.SignaturePublicKey())}, nil
	case "userid":
		return []string{string(p.UserID())}, nil
	case "kp": // kp N
		if err := need(1); err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(string(args[0]))
		if err != nil {
			return nil, err
		}
		kps, err := p.GenerateKeyPackages(ctx, n)
		if err != nil {
			return nil, err
		}
		var res []string
		for _, kp := range kps {
			res = append(res, enc(kp))
		}
		return res, nil
	case "lastresort":
		kp, err := p.GenerateLastResortKeyPackage(ctx)
		if err != nil {
			return nil, err
		}
		return []string{enc(kp)}, nil
	case "count":
		c, err := p.KeyPackageCount(ctx)
		if err != nil {
			return nil, err
		}
		return []string{strconv.Itoa(c.OneTime), strconv.Itoa(c.LastResort)}, nil
	case "join": // join WELCOME-MLSMESSAGE TREE
		if err := need(2); err != nil {
			return nil, err
		}
		m, err := mls.UnmarshalMessage(args[0])
		if err != nil {
			return nil, err
		}
		if m.Welcome == nil {
			return nil, errors.New("not a welcome")
		}
		var rt tree.RatchetTreeNodes
		if err := wire.Unmarshal(args[1], &rt); err != nil {
			return nil, err
		}
		j, err := p.Join(ctx, m.Welcome, rt)
		if err != nil {
			return nil, err
		}
		return []string{enc(j.Group.GroupID()), strconv.FormatUint(j.Group.Epoch(), 10)}, nil
	case "send": // send GID TEXT
		if err := need(2); err != nil {
			return nil, err
		}
		m, err := p.Encrypt(ctx, args[0], args[1], nil)
		if err != nil {
			return nil, err
		}
		b, err := wire.Marshal(m)
		if err != nil {
			return nil, err
		}
		return []string{enc(b)}, nil
	case "recv": // recv GID MSG -> ok CONTENTTYPE EPOCH DATA
		if err := need(2); err != nil {
			return nil, err
		}
		m, err := mls.UnmarshalMessage(args[1])
		if err != nil {
			return nil, err
		}
		res, err := p.Process(ctx, args[0], m)
		if err != nil {
			return nil, err
		}
		return []string{strconv.Itoa(int(res.ContentType)), strconv.FormatUint(res.State.Epoch(), 10),
			enc(res.ApplicationData)}, nil
	case "commit": // commit GID [KP...] -> ok COMMIT [WELCOME TREE]; merged by "merge GID"
		if err := need(1); err != nil {
			return nil, err
		}
		var o mls.CommitOptions
		for _, kb := range args[1:] {
			m, err := mls.UnmarshalMessage(kb)
			if err != nil {
				return nil, err
			}
			if m.KeyPackage == nil {
				return nil, errors.New("not a key package")
			}
			o.Add = append(o.Add, m.KeyPackage)
		}
		pc, err := p.Commit(ctx, args[0], o)
		if err != nil {
			return nil, err
		}
		pending[string(args[0])] = pc
		return commitFields(pc.Result)
	case "remove": // remove GID LEAF (pending, like commit)
		if err := need(2); err != nil {
			return nil, err
		}
		leaf, err := strconv.Atoi(string(args[1]))
		if err != nil {
			return nil, err
		}
		pc, err := p.Commit(ctx, args[0], mls.CommitOptions{Remove: []tree.LeafIndex{tree.LeafIndex(leaf)}})
		if err != nil {
			return nil, err
		}
		pending[string(args[0])] = pc
		return commitFields(pc.Result)
	case "merge": // merge GID
		if err := need(1); err != nil {
			return nil, err
		}
		pc := pending[string(args[0])]
		if pc == nil {
			return nil, errors.New("no pending commit in this process")
		}
		delete(pending, string(args[0]))
		return nil, p.MergeCommit(ctx, pc)
	case "epoch": // epoch GID -> ok EPOCH MEMBERS LEAF
		if err := need(1); err != nil {
			return nil, err
		}
		var res []string
		err := p.View(ctx, args[0], func(g *mls.Group) error {
			res = []string{strconv.FormatUint(g.Epoch(), 10), strconv.Itoa(g.MemberCount()), strconv.Itoa(int(g.OwnLeafIndex()))}
			return nil
		})
		return res, err
	}
	return nil, fmt.Errorf("unknown command %q", f[0])
}

func commitFields(r *mls.CommitResult) ([]string, error) {
	cb, err := wire.Marshal(r.Commit)
	if err != nil {
		return nil, err
	}
	res := []string{enc(cb)}
	if r.Welcome != nil {
		wm, err := mls.NewMessage(r.Welcome)
		if err != nil {
			return nil, err
		}
		wb, err := wire.Marshal(wm)
		if err != nil {
			return nil, err
		}
		tb, err := wire.Marshal(r.RatchetTree)
		if err != nil {
			return nil, err
		}
		res = append(res, enc(wb), enc(tb))
	}
	return res, nil
}

// --- parent side ---

// agent is a running child process.
type agent struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr *strings.Builder
	once   sync.Once
}

// startAgent starts a child process for the identity in dir.
func startAgent(t testing.TB, dir, name string) *agent {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), agentDirEnv+"="+dir, agentNameEnv+"="+name,
		// The race detector sleeps 1s at exit by default; a child per
		// restart would spend most of the test there.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	a := &agent{t: t, name: name, cmd: cmd, in: in, stderr: &strings.Builder{}}
	cmd.Stderr = lockedWriter{w: a.stderr}
	a.out = bufio.NewScanner(out)
	a.out.Buffer(make([]byte, 1<<20), 64<<20)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.kill() })
	return a
}

type lockedWriter struct{ w *strings.Builder }

var stderrMu sync.Mutex

func (l lockedWriter) Write(b []byte) (int, error) {
	stderrMu.Lock()
	defer stderrMu.Unlock()
	return l.w.Write(b)
}

// agentError is an "err" answer.
type agentError struct{ class, msg string }

func (e *agentError) Error() string { return e.class + ": " + e.msg }

// send writes a command without waiting for its answer.
func (a *agent) send(fields ...string) error {
	_, err := io.WriteString(a.in, strings.Join(fields, " ")+"\n")
	return err
}

// answer reads one answer line.
func (a *agent) answer() ([]string, error) {
	if !a.out.Scan() {
		return nil, fmt.Errorf("%s: child gone (%v); stderr: %s", a.name, a.out.Err(), a.stderr)
	}
	f := strings.SplitN(a.out.Text(), " ", 3)
	switch f[0] {
	case "ok":
		return strings.Fields(a.out.Text())[1:], nil
	case "err":
		if len(f) < 3 {
			f = append(f, "", "")
		}
		return nil, &agentError{class: f[1], msg: f[2]}
	}
	return nil, fmt.Errorf("%s: bad answer %q", a.name, a.out.Text())
}

// try runs a command and returns its answer.
func (a *agent) try(fields ...string) ([]string, error) {
	if err := a.send(fields...); err != nil {
		return nil, fmt.Errorf("%s: write: %w; stderr: %s", a.name, err, a.stderr)
	}
	return a.answer()
}

// do runs a command that must succeed.
func (a *agent) do(fields ...string) []string {
	a.t.Helper()
	res, err := a.try(fields...)
	if err != nil {
		a.t.Fatalf("%s %s: %v", a.name, fields[0], err)
	}
	return res
}

// stop ends the child cleanly (stdin closed) and checks it exited 0.
func (a *agent) stop() {
	a.t.Helper()
	a.in.Close()
	done := make(chan error, 1)
	go func() { done <- a.cmd.Wait() }()
	select {
	case err := <-done:
		a.once.Do(func() {})
		if err != nil {
			a.t.Fatalf("%s exited: %v; stderr: %s", a.name, err, a.stderr)
		}
	case <-time.After(30 * time.Second):
		a.kill()
		a.t.Fatalf("%s did not exit", a.name)
	}
}

// kill SIGKILLs the child (once) and reaps it.
func (a *agent) kill() {
	a.once.Do(func() {
		a.cmd.Process.Kill()
		a.cmd.Wait()
	})
}

// run starts a child, runs the commands (each must succeed), stops it, and
// returns the answers.
func run(t testing.TB, dir, name string, cmds ...[]string) [][]string {
	t.Helper()
	a := startAgent(t, dir, name)
	var res [][]string
	for _, c := range cmds {
		res = append(res, a.do(c...))
	}
	a.stop()
	return res
}

func mustDec(t testing.TB, s string) []byte {
	t.Helper()
	b, err := dec(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
