// Package childproc starts a spacepanda subcommand (a relay or a node) as
// a child process and reads the address it announces on its first line.
// The demo and the load test start their processes with it.
package childproc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// StartTimeout is how long Start waits for the announcing line.
const StartTimeout = 30 * time.Second

// Start runs exe with args, stderr going to stderr (nil discards it) and
// env added to this process's environment, and waits for its first stdout
// line to hold marker: the rest of that line,
// trimmed, is addr. stop sends SIGTERM and kills the process if it has not
// exited 5 s later; it returns once the process is gone. ctx bounds only
// the wait for the line: the process lives until stop.
func Start(ctx context.Context, exe string, args []string, marker string, stderr io.Writer, env []string) (addr string, stop func(), err error) {
	cmd := exec.Command(exe, args...)
	cmd.Stderr = stderr
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop = func() {
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
			return strings.TrimSpace(a), stop, nil
		}
		stop()
		return "", nil, fmt.Errorf("%s did not start (first line %q)", name, l)
	case <-time.After(StartTimeout):
	case <-ctx.Done():
	}
	stop()
	return "", nil, fmt.Errorf("%s did not start within %s", name, StartTimeout)
}
