// Package childproc starts a spacepanda subcommand (a relay or a node) as
// a child process and reads the address it announces on its first line.
// The demo and the load test start their processes with it.
package childproc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StartTimeout is how long Start waits for the announcing line.
const StartTimeout = 30 * time.Second

// Proc is a started child process.
type Proc struct {
	// Addr is what the process announced: the rest of its first line
	// after the marker, trimmed.
	Addr string
	// Stop sends SIGTERM and kills the process if it has not exited 5 s
	// later; it returns once the process is gone.
	Stop func()
	pid  int
}

// Start runs exe with args, stderr going to stderr (nil discards it) and
// env added to this process's environment, and waits for its first stdout
// line to hold marker. ctx bounds only the wait for the line: the process
// lives until Stop.
func Start(ctx context.Context, exe string, args []string, marker string, stderr io.Writer, env []string) (*Proc, error) {
	cmd := exec.Command(exe, args...)
	cmd.Stderr = stderr
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		io.Copy(io.Discard, out)
	}()
	name := "process"
	if len(args) > 0 {
		name = args[0]
	}
	select {
	case l := <-line:
		if _, a, ok := strings.Cut(l, marker); ok {
			return &Proc{Addr: strings.TrimSpace(a), Stop: stop, pid: cmd.Process.Pid}, nil
		}
		stop()
		return nil, fmt.Errorf("%s did not start (first line %q)", name, l)
	case <-time.After(StartTimeout):
	case <-ctx.Done():
	}
	stop()
	return nil, fmt.Errorf("%s did not start within %s", name, StartTimeout)
}

// ErrNoCPU: the system does not tell a process's CPU time (CPU reads
// Linux's /proc).
var ErrNoCPU = errors.New("childproc: CPU time not available")

// CPU is the CPU time (user and system, all threads) the process has used
// so far, from /proc/PID/stat; ErrNoCPU where there is no such file.
func (p *Proc) CPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNoCPU, err)
	}
	return parseStatCPU(b)
}

// clockTick is the unit of /proc/PID/stat's times: USER_HZ, 100 on every
// Linux the Go runtime supports (sysconf is not reachable without cgo).
const clockTick = 10 * time.Millisecond

// parseStatCPU reads utime and stime (fields 14 and 15) of a
// /proc/PID/stat line. The command name (field 2) is in parentheses and
// may hold spaces and parentheses itself: fields are counted after the
// last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: no command name in stat", ErrNoCPU)
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: stat has %d fields", ErrNoCPU, len(f)+2)
	}
	var sum time.Duration
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 63)
		if err != nil {
			return 0, fmt.Errorf("%w: stat field %q", ErrNoCPU, s)
		}
		sum += time.Duration(n) * clockTick
	}
	return sum, nil
}
