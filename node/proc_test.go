package node_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/node"
)

// The process tests run the real `spacepanda serve` binary, built once by
// TestMain into a temporary directory. A failed build fails only the
// process tests (spacepandaBin), so the in-process tests, the fuzz target and the
// benchmarks run regardless.

var (
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "spacepanda-node-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	path := filepath.Join(dir, "spacepanda")
	out, err := exec.Command(goTool, "build", "-o", path, "github.com/spacepanda/spacepanda/cmd/spacepanda").CombinedOutput()
	if err != nil {
		binError = fmt.Errorf("building spacepanda: %v\n%s", err, out)
	} else {
		binPath = path
	}
	return m.Run()
}

// spacepandaBin is the built command's path; it fails the test when the
// command did not build.
func spacepandaBin(t testing.TB) string {
	t.Helper()
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

// proc is one running `spacepanda serve`.
type proc struct {
	t      *testing.T
	name   string
	dir    string
	args   []string
	cmd    *exec.Cmd
	done   chan struct{}
	stderr *lockedBuf
	c      *node.Client
	uid    string // its user id
}

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startProc starts a node named name on a fresh data directory.
func startProc(t *testing.T, name string, extra ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, dir: filepath.Join(t.TempDir(), name), args: extra}
	p.start()
	t.Cleanup(p.stop)
	return p
}

// start (re)starts the node on its data directory and waits until it
// answers /healthz.
func (p *proc) start() {
	t := p.t
	t.Helper()
	args := append([]string{"serve", "--data", p.dir, "--listen", "127.0.0.1:0", "--name", p.name}, p.args...)
	p.cmd = exec.Command(spacepandaBin(t), args...)
	p.stderr = &lockedBuf{}
	p.cmd.Stderr = p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(p.cmd, p.done)
	line := make(chan string, 2)
	go func() {
		sc := bufio.NewScanner(out)
		for range 2 {
			if sc.Scan() {
				line <- sc.Text()
			}
		}
		close(line)
		io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		want := "spacepanda: " + p.name + " serving on "
		if !strings.HasPrefix(l, want) {
			p.kill()
			t.Fatalf("%s: first stdout line %q, want prefix %q; stderr:\n%s", p.name, l, want, p.stderr)
		}
		// The second line names the user: "spacepanda: user id U, device D".
		id := strings.TrimPrefix(<-line, "spacepanda: user id ")
		p.uid, _, _ = strings.Cut(id, ",")
		userNames.Store(p.uid, p.name)
		// The same *Client across restarts (tests hold it), new address.
		if p.c == nil {
			p.c = &node.Client{}
		}
		p.c.BaseURL = strings.TrimPrefix(l, want)
	case <-time.After(30 * time.Second):
		p.kill()
		t.Fatalf("%s: no address within 30s; stderr:\n%s", p.name, p.stderr)
	}
	ctx := context.Background()
	for i := 0; ; i++ {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second) // a hung node fails, not the test
		err := p.c.Do(hctx, "GET", "/healthz", nil, nil)
		cancel()
		var ne *node.Error
		if err == nil || errors.As(err, &ne) { // an answer, even a 401, means up
			return
		}
		if i == 200 {
			p.kill()
			t.Fatalf("%s: not answering: %v", p.name, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL: no shutdown, no flush.
func (p *proc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// restartHard is SIGKILL, then start on the same data directory.
func (p *proc) restartHard() {
	p.t.Helper()
	p.kill()
	p.start()
}

// stop ends the process with SIGTERM (SIGKILL after 5s).
func (p *proc) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

// runServe runs `spacepanda serve` expecting it to exit by itself (a
// refused configuration) within 10s; it returns the exit code and stderr.
func runServe(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, spacepandaBin(t), append([]string{"serve"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), stderr.String()
	}
	if err != nil {
		t.Fatalf("serve %v: %v", args, err)
	}
	return 0, stderr.String()
}
