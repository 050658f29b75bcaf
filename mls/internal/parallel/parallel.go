// Package parallel spreads independent pieces of the engine's work over the
// available cores: a fan-out rule for many small items (HPKE seals) and a
// set of a few long tasks (hashes over a large message) of which only some
// must be done before the caller moves on.
package parallel

import (
	"runtime"
	"sync"
)

// Workers returns how many goroutines n independent items are spread over
// when each goroutine should get at least perWorker of them: from 1 (the
// caller's goroutine alone) to GOMAXPROCS.
func Workers(n, perWorker int) int {
	return max(1, min(runtime.GOMAXPROCS(0), n/max(perWorker, 1)))
}

// HashBytes is the message size from which the hashes over one message
// are worth running on several cores: below it, starting a goroutine costs
// more than it saves.
const HashBytes = 32 << 10

// sealsPerWorker is how many HPKE seals justify a goroutine of their own.
const sealsPerWorker = 16

// SealWorkers is the number of goroutines a commit's n HPKE seals are
// spread over (the tree's path encryption); the benchmark's floor divides
// the seals the same way.
func SealWorkers(n int) int { return Workers(n, sealsPerWorker) }

// Tasks runs a few independent tasks on up to GOMAXPROCS goroutines, the
// caller's included. Foreground tasks (Go) must be done before Run returns;
// background tasks (Later) are what the caller needs further on: helpers
// take them once no foreground task is left to start, and the caller's own
// goroutine runs any that no helper started when it waits for one. The
// caller never starts a background task itself during Run, so Run returns
// as soon as the last foreground task ends.
//
// A helper only takes a task when it gets to run: on a busy machine the
// caller may do everything itself, and waits for nobody who has not
// started. After Close no task starts, so a helper scheduled late exits
// without touching anything.
//
// A task's results are its own writes; they are visible to the goroutine
// after Run (foreground) or Later.Wait (background) returns. The zero value
// is ready to use; a Tasks is used once and by one goroutine.
type Tasks struct {
	mu      sync.Mutex
	cond    sync.Cond // signalled when a task ends
	fg      []func()  // foreground tasks not yet started
	fgLeft  int       // foreground tasks not yet ended
	bg      []*Later  // background tasks not yet started, in order
	running int       // tasks running now
	closed  bool
}

// Later is a background task.
type Later struct {
	t     *Tasks
	f     func()
	state int // pending, running, done or skipped
}

const (
	pending = iota
	running
	done
	skipped
)

// Go adds a foreground task.
func (t *Tasks) Go(f func()) {
	t.fg = append(t.fg, f)
	t.fgLeft++
}

// Later adds a background task.
func (t *Tasks) Later(f func()) *Later {
	l := &Later{t: t, f: f}
	t.bg = append(t.bg, l)
	return l
}

func (t *Tasks) init() {
	if t.cond.L == nil {
		t.cond.L = &t.mu
	}
}

// Run starts as many helpers as there are tasks beyond the first (at most
// GOMAXPROCS-1), runs foreground tasks in the caller's goroutine until none
// is left to start, and returns when every foreground task has ended.
func (t *Tasks) Run() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.init()
	for range min(runtime.GOMAXPROCS(0)-1, len(t.fg)+len(t.bg)-1) {
		go t.help()
	}
	for {
		if len(t.fg) > 0 {
			t.runFG()
			continue
		}
		if t.fgLeft == 0 {
			return
		}
		t.cond.Wait()
	}
}

// runFG runs the next foreground task with t.mu released meanwhile.
func (t *Tasks) runFG() {
	f := t.fg[0]
	t.fg = t.fg[1:]
	t.running++
	t.mu.Unlock()
	f()
	t.mu.Lock()
	t.running--
	t.fgLeft--
	t.cond.Broadcast()
}

// help runs foreground tasks first, then background ones, until none is
// left to start or Close has been called.
func (t *Tasks) help() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for !t.closed {
		switch {
		case len(t.fg) > 0:
			t.runFG()
		case len(t.bg) > 0:
			l := t.bg[0]
			t.bg = t.bg[1:]
			if l.state == pending {
				l.run()
			}
		default:
			return
		}
	}
}

// run runs l with t.mu held on entry and exit (released meanwhile).
func (l *Later) run() {
	t := l.t
	l.state = running
	t.running++
	t.mu.Unlock()
	l.f()
	t.mu.Lock()
	t.running--
	l.state = done
	t.cond.Broadcast()
}

// Wait runs l in the caller's goroutine if no helper has started it, or
// waits for the helper running it. It reports whether l ran: false after
// Close skipped it.
func (l *Later) Wait() bool {
	t := l.t
	t.mu.Lock()
	defer t.mu.Unlock()
	t.init()
	for {
		switch l.state {
		case pending:
			if t.closed {
				l.state = skipped
				return false
			}
			l.run()
		case running:
			t.cond.Wait()
		case done:
			return true
		case skipped:
			return false
		}
	}
}

// Close skips the background tasks not yet started and returns once no
// task is running; none starts afterwards. Call it after Run, when the
// results are no longer wanted or all have been waited for: what the
// tasks read may then be reused.
func (t *Tasks) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.init()
	t.closed = true
	for _, l := range t.bg {
		if l.state == pending {
			l.state = skipped
		}
	}
	t.bg = nil
	for t.running > 0 {
		t.cond.Wait()
	}
}
