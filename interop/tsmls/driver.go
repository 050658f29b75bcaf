// Package tsmls drives an interoperability peer built on ts-mls (an
// independent RFC 9420 implementation in TypeScript, npm package
// ts-mls@1.6.4) so Go tests can put SpacePanda's engine and ts-mls in one
// group.
//
// The peer is peer.mjs in this directory, run by `node`; it needs
// `npm ci` in this directory first (.ci/run does that). It speaks JSON
// lines: one command per line on stdin, one reply per line on stdout.
// Binary values travel as standard base64 of RFC 9420 wire bytes
// (MLSMessage framing for KeyPackage, Welcome, GroupInfo, PublicMessage,
// PrivateMessage; the ratchet tree as the ratchet_tree extension data of
// RFC 9420 §12.4.3.3). See README.md for the protocol.
//
// A Peer runs one command at a time; its methods are safe for concurrent use
// but serialise. If a command times out, the peer is killed, because its
// reply stream can no longer be matched to commands.
package tsmls

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"time"
)

// Errors returned by the driver. Peer-side failures wrap ErrPeer and carry
// the peer's message.
var (
	// ErrNodeUnavailable means node is not on PATH or the peer's
	// node_modules is missing (run `npm ci` in interop/tsmls). Tests skip on
	// it unless CI=true.
	ErrNodeUnavailable = errors.New("tsmls: node or interop/tsmls/node_modules unavailable")
	// ErrPeer wraps an {"ok":false} reply.
	ErrPeer = errors.New("tsmls: peer error")
	// ErrTimeout means the peer did not answer within the timeout; the peer
	// has been killed.
	ErrTimeout = errors.New("tsmls: peer timed out")
	// ErrClosed means the peer has exited or was closed.
	ErrClosed = errors.New("tsmls: peer closed")
	// ErrProtocol means the peer's reply was not valid JSON of the expected
	// shape.
	ErrProtocol = errors.New("tsmls: malformed peer reply")
)

// DefaultTimeout bounds one command. ts-mls operations take milliseconds;
// the first command of a suite loads its crypto modules.
const DefaultTimeout = 30 * time.Second

// DirEnv names an environment variable that overrides the peer directory
// (the directory holding peer.mjs and node_modules). By default it is the
// directory of this source file.
const DirEnv = "SPACEPANDA_TSMLS_DIR"

// Peer is one running ts-mls client process.
type Peer struct {
	mu      sync.Mutex // serialises commands
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan []byte
	done    chan struct{} // closed when the process has exited
	quit    chan struct{} // closed once no more replies will be read
	quitMu  sync.Once
	waitErr error // set before done is closed
	stderr  *tailBuffer
	timeout time.Duration
	wire    HandshakeOptions
	broken  error // set once the stream is out of sync
	killed  bool  // the driver killed node (timeout), so its exit status is expected
}

// HandshakeOptions choose how the peer frames its own commits and
// proposals.
type HandshakeOptions struct {
	// PublicMessage sends commits and proposals as PublicMessage
	// (ts-mls's default, used when false, is PrivateMessage).
	PublicMessage bool
	// RatchetTreeExtension puts the ratchet tree into the Welcome's
	// GroupInfo (ts-mls's default is to leave it out; the tree is always
	// returned separately too).
	RatchetTreeExtension bool
}

// Dir returns the peer directory: $SPACEPANDA_TSMLS_DIR, else the directory
// of this source file.
func Dir() (string, error) {
	if d := os.Getenv(DirEnv); d != "" {
		return d, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return "", fmt.Errorf("%w: cannot locate interop/tsmls (built with -trimpath?); set %s", ErrNodeUnavailable, DirEnv)
	}
	return filepath.Dir(file), nil
}

// Start spawns `node peer.mjs`. It returns an error wrapping
// ErrNodeUnavailable when node or the peer's node_modules is missing. The
// process is killed when ctx is done; Close it when finished.
func Start(ctx context.Context) (*Peer, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("%w: node not found on PATH", ErrNodeUnavailable)
	}
	if _, err := os.Stat(filepath.Join(dir, "peer.mjs")); err != nil {
		return nil, fmt.Errorf("%w: %s/peer.mjs missing", ErrNodeUnavailable, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ts-mls", "package.json")); err != nil {
		return nil, fmt.Errorf("%w: %s/node_modules/ts-mls missing (run `npm ci` there)", ErrNodeUnavailable, dir)
	}
	cmd := exec.CommandContext(ctx, node, "peer.mjs")
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("tsmls: stdin pipe: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("tsmls: stdout pipe: %w", err)
	}
	p := &Peer{
		cmd:     cmd,
		stdin:   stdin,
		lines:   make(chan []byte),
		done:    make(chan struct{}),
		quit:    make(chan struct{}),
		stderr:  &tailBuffer{max: 16 << 10},
		timeout: DefaultTimeout,
	}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("tsmls: starting node: %w", err)
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		br := bufio.NewReaderSize(stdout, 64<<10)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 && err == nil {
				select {
				case p.lines <- line:
				case <-p.quit:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		<-readerDone // read everything before Wait closes the pipe
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// SetTimeout sets the per-command timeout (DefaultTimeout initially).
func (p *Peer) SetTimeout(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timeout = d
}

// SetHandshake chooses how later commits and proposals are framed.
func (p *Peer) SetHandshake(o HandshakeOptions) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wire = o
}

// Stderr returns the tail of the peer's standard error.
func (p *Peer) Stderr() string { return p.stderr.String() }

// Close ends the peer: it closes stdin (the peer exits at end of input) and
// kills the process if it has not exited after a few seconds.
func (p *Peer) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken == nil {
		p.broken = ErrClosed
	}
	p.stop()
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("tsmls: node did not exit after stdin closed; killed; stderr: %s", p.stderr.String())
	}
	if p.killed {
		return nil
	}
	var ee *exec.ExitError
	if p.waitErr != nil && !errors.As(p.waitErr, &ee) {
		return fmt.Errorf("tsmls: waiting for node: %w", p.waitErr)
	}
	if p.waitErr != nil {
		return fmt.Errorf("tsmls: node exited: %w; stderr: %s", p.waitErr, p.stderr.String())
	}
	return nil
}

type status struct {
	OK    *bool  `json:"ok"`
	Error string `json:"error"`
}

// Call sends one raw command (a JSON object with a "cmd" field) and decodes
// the reply into out (which may be nil). A {"ok":false} reply returns an
// error wrapping ErrPeer. Typed methods are built on it; tests use it for
// commands the methods do not cover.
func (p *Peer) Call(cmd any, out any) error {
	line, err := json.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("tsmls: encoding command: %w", err)
	}
	raw, err := p.roundTrip(line)
	if err != nil {
		return err
	}
	var st status
	if err := json.Unmarshal(raw, &st); err != nil || st.OK == nil {
		return fmt.Errorf("%w: %q", ErrProtocol, truncate(raw))
	}
	if !*st.OK {
		return fmt.Errorf("%w: %s", ErrPeer, st.Error)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%w: %v", ErrProtocol, err)
		}
	}
	return nil
}

// CallRaw writes one line as is (it must not contain a newline) and returns
// the raw reply line. It exists to test the peer's handling of bad input.
func (p *Peer) CallRaw(line []byte) ([]byte, error) {
	if bytes.IndexByte(line, '\n') >= 0 {
		return nil, errors.New("tsmls: raw command contains a newline")
	}
	return p.roundTrip(line)
}

func (p *Peer) roundTrip(line []byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken != nil {
		return nil, p.broken
	}
	if _, err := p.stdin.Write(append(line, '\n')); err != nil {
		p.broken = fmt.Errorf("%w: writing command: %v; stderr: %s", ErrClosed, err, p.stderr.String())
		p.stop()
		return nil, p.broken
	}
	timer := time.NewTimer(p.timeout)
	defer timer.Stop()
	select {
	case raw := <-p.lines:
		return bytes.TrimRight(raw, "\r\n"), nil
	case <-p.done:
		p.broken = fmt.Errorf("%w: node exited (%v); stderr: %s", ErrClosed, p.waitErr, p.stderr.String())
		p.stop()
		return nil, p.broken
	case <-timer.C:
		p.stop()
		_ = p.cmd.Process.Kill()
		p.killed = true
		p.broken = fmt.Errorf("%w after %v; stderr: %s", ErrTimeout, p.timeout, p.stderr.String())
		return nil, p.broken
	}
}

// stop tells the reader goroutine to stop delivering replies.
func (p *Peer) stop() { p.quitMu.Do(func() { close(p.quit) }) }

func truncate(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
