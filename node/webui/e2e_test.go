package webui_test

// The browser end-to-end test: a relay and three `spacepanda serve`
// processes on loopback, three pages in Debian's chromium driven by npm
// playwright-core (e2e/driver.mjs). The driver asks this test to stop and
// start processes ("@@ctl stop bob") and reports which steps ran.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// chromiumPath is Debian's chromium unless SPACEPANDA_CHROMIUM names another.
func chromiumPath() string {
	if p := os.Getenv("SPACEPANDA_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// need skips (or, under CI=true, fails) when a prerequisite is missing.
func need(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("browser e2e: %s (CI=true: required; .ci/run installs it)", what)
	}
	t.Skipf("SKIP browser e2e: %s (apt-get install chromium; cd node/webui/e2e && npm ci)", what)
}

// relayTrio starts what every browser test starts (skipping without a
// browser, or in -short mode): a cluster bounded by 4 minutes, stopped at
// the end of the test, with alice, bob and carol on its relay; nodes maps
// their names to their base URLs, for the test to add its own.
func relayTrio(t *testing.T) (ctx context.Context, c *cluster, nodes map[string]string) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser e2e skipped in -short mode")
	}
	browserPrereqs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	c = startCluster(t, ctx)
	t.Cleanup(c.stop) // before cancel: cleanups run last first
	nodes = map[string]string{}
	for _, name := range []string{"alice", "bob", "carol"} {
		nodes[name] = c.serve(name, "--relay", c.relayURL())
	}
	return ctx, c, nodes
}

func TestBrowserE2E(t *testing.T) {
	ctx, c, nodes := relayTrio(t)

	// Two nodes without a relay: dave needs a bearer token (the page asks
	// for it), erin joins dave's channel by key package and invite code.
	token := "e2e-token-0123456789abcdef"
	tokenFile := filepath.Join(c.root, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	nodes["dave"] = c.serveWithToken("dave", token, "--token-file", tokenFile)
	nodes["erin"] = c.serve("erin")

	runDriver(t, ctx, "driver.mjs", map[string]any{"nodes": nodes, "token": token, "profile": filepath.Join(c.root, "chromium-profile")},
		func(args []string) error { return control(ctx, c.procs, args) })
}

// cluster is the processes of a browser test: the spacepanda binary
// built for it, a relay, and the nodes started with serve; at the end of
// the test they are stopped, and on a failure their logs are shown.
type cluster struct {
	t         *testing.T
	ctx       context.Context
	root, exe string
	relay     *proc
	procs     map[string]*proc
	stopOnce  sync.Once
}

// startCluster builds the binary and starts a relay.
func startCluster(t *testing.T, ctx context.Context) *cluster {
	t.Helper()
	root := t.TempDir()
	c := &cluster{t: t, ctx: ctx, root: root, exe: filepath.Join(root, "spacepanda"), procs: map[string]*proc{}}
	build := exec.CommandContext(ctx, "go", "build", "-o", c.exe, "github.com/spacepanda/spacepanda/cmd/spacepanda")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	t.Cleanup(c.stop) // after a t.Fatal here; tests defer stop before ctx ends
	c.relay = &proc{t: t, name: "relay", exe: c.exe, port: freePort(t), logDir: root}
	c.relay.args = []string{"relay", "--data", filepath.Join(root, "relay"), "--listen", c.relay.addr()}
	c.relay.ready = "spacepanda relay serving on "
	c.procs["relay"] = c.relay
	if err := c.relay.start(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// stop stops the processes with SIGTERM (the test defers it, to run
// before its context ends and kills them) and, on a failure, shows their
// logs; once.
func (c *cluster) stop() {
	c.stopOnce.Do(func() {
		for _, p := range c.procs {
			p.stop()
		}
		if c.t.Failed() {
			for _, p := range c.procs {
				if b, err := os.ReadFile(p.logPath()); err == nil {
					c.t.Logf("--- %s log (last 3000 bytes) ---\n%s", p.name, tail(b, 3000))
				}
			}
		}
	})
}

func (c *cluster) relayURL() string { return "http://" + c.relay.addr() }

// serve starts a node named name with the extra flags and returns its
// page's URL.
func (c *cluster) serve(name string, extra ...string) string {
	return c.serveWithToken(name, "", extra...)
}

// serveWithToken is serve for a node that requires the bearer token.
func (c *cluster) serveWithToken(name, token string, extra ...string) string {
	c.t.Helper()
	p := &proc{t: c.t, name: name, exe: c.exe, port: freePort(c.t), logDir: c.root, ready: "spacepanda: ", health: "/healthz", token: token}
	p.args = append([]string{"serve", "--data", filepath.Join(c.root, name), "--listen", p.addr(), "--name", name}, extra...)
	c.procs[name] = p
	if err := p.start(c.ctx); err != nil {
		c.t.Fatal(err)
	}
	return "http://" + p.addr() + "/"
}

// TestBrowserContract drives the page against a fake of the contract's
// node API (fake_test.go): the event stream, invitations, queued sends,
// contacts and safety numbers, which today's node does not have yet.
func TestBrowserContract(t *testing.T) {
	if testing.Short() {
		t.Skip("browser e2e skipped in -short mode")
	}
	browserPrereqs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, urls, stop := startFake("alice", "bob")
	defer stop()
	runDriver(t, ctx, "contract.mjs", map[string]any{"nodes": urls, "profile": filepath.Join(t.TempDir(), "chromium-profile")},
		func(args []string) error { return fmt.Errorf("no processes to control") })
}

// browserPrereqs returns node's path; it skips (fails under CI=true)
// without chromium, node or the driver's npm dependency.
func browserPrereqs(t *testing.T) string {
	t.Helper()
	_, err := os.Stat(chromiumPath())
	need(t, err == nil, "no chromium at "+chromiumPath())
	nodeBin, err := exec.LookPath("node")
	need(t, err == nil, "no node (Node.js) on PATH")
	_, err = os.Stat(filepath.Join("e2e", "node_modules", "playwright-core", "package.json"))
	need(t, err == nil, "e2e/node_modules/playwright-core is not installed")
	return nodeBin
}

// runDriver runs a driver script with node, answers its "@@ctl" requests
// with control, and fails the test if the driver fails or runs no step.
func runDriver(t *testing.T, ctx context.Context, script string, cfg map[string]any, control func([]string) error) {
	t.Helper()
	shots := os.Getenv("SPACEPANDA_SCREENSHOTS") // a directory: the driver writes the PNGs there
	var err error
	if shots == "" {
		shots = filepath.Join(t.TempDir(), "screenshots")
	} else if shots, err = filepath.Abs(shots); err != nil {
		t.Fatal(err)
	}
	cfg["chromium"], cfg["screenshots"] = chromiumPath(), shots
	b, _ := json.Marshal(cfg)
	drv := exec.CommandContext(ctx, browserPrereqs(t), script)
	drv.Dir = "e2e"
	drv.Env = append(os.Environ(), "E2E_CONFIG="+string(b))
	drv.Stderr = &logWriter{t: t, prefix: "driver stderr: "}
	stdin, _ := drv.StdinPipe()
	stdout, _ := drv.StdoutPipe()
	if err := drv.Start(); err != nil {
		t.Fatal(err)
	}
	var ran, skipped []string
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "@@ctl "):
			reply := "ok"
			if err := control(strings.Fields(line)[1:]); err != nil {
				reply = "err " + strings.ReplaceAll(err.Error(), "\n", " ")
			}
			fmt.Fprintln(stdin, reply)
		case strings.HasPrefix(line, "@@ran "):
			ran = append(ran, strings.TrimPrefix(line, "@@ran "))
		case strings.HasPrefix(line, "@@skipped "):
			skipped = append(skipped, strings.TrimPrefix(line, "@@skipped "))
		default:
			t.Log(line)
		}
	}
	err = drv.Wait()
	t.Logf("steps that ran: %s", strings.Join(ran, "; "))
	if len(skipped) > 0 {
		t.Logf("steps skipped (the node lacks the contract's routes): %s", strings.Join(skipped, "; "))
	}
	if err != nil {
		t.Fatalf("%s failed: %v", script, err)
	}
	if len(ran) == 0 {
		t.Fatalf("%s ran no steps", script)
	}
}

// control runs one "@@ctl" command: stop NAME | start NAME.
func control(ctx context.Context, procs map[string]*proc, args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("bad control command %q", args)
	}
	p, ok := procs[args[1]]
	if !ok {
		return fmt.Errorf("no process %q", args[1])
	}
	switch args[0] {
	case "stop":
		p.stop()
		return nil
	case "start":
		return p.start(ctx)
	}
	return fmt.Errorf("unknown control %q", args[0])
}

// proc is one spacepanda process on a fixed loopback port, so that a
// restart keeps its URL.
type proc struct {
	t             *testing.T
	name, exe     string
	args          []string
	port          int
	logDir        string
	ready, health string
	token         string // bearer token of the health check
	mu            sync.Mutex
	cmd           *exec.Cmd
	done          chan struct{}
	logFile       *os.File
}

func (p *proc) addr() string    { return fmt.Sprintf("127.0.0.1:%d", p.port) }
func (p *proc) logPath() string { return filepath.Join(p.logDir, p.name+".log") }

func (p *proc) start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	lf, err := os.OpenFile(p.logPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, p.exe, p.args...)
	cmd.Stderr = lf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd, p.logFile, p.done = cmd, lf, make(chan struct{})
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			first <- sc.Text()
		}
		close(first)
		io.Copy(lf, out)
		cmd.Wait()
		close(p.done)
	}()
	select {
	case l := <-first:
		if !strings.HasPrefix(l, p.ready) {
			return fmt.Errorf("%s did not start (first line %q)", p.name, l)
		}
	case <-time.After(60 * time.Second):
		return fmt.Errorf("%s did not start within 60s", p.name)
	}
	if p.health == "" {
		return nil
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+p.addr()+p.health, nil)
		if p.token != "" {
			req.Header.Set("Authorization", "Bearer "+p.token)
		}
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy within 60s: %v", p.name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits (SIGKILL after 10 s).
func (p *proc) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	p.logFile.Close()
	p.cmd = nil
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

type logWriter struct {
	t      *testing.T
	prefix string
}

func (w *logWriter) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.t.Log(w.prefix + l)
	}
	return len(b), nil
}
