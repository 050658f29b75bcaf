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
// A task's results are its own writes; they are visible to the goroutine
// after Run (foreground) or Later.Wait (background) returns. The zero value
// is ready to use; a Tasks is used once and by one goroutine.
type Tasks struct {
	mu      sync.Mutex
	cond    sync.Cond // signalled when a task ends
	fg      []func()  // foreground tasks not yet started
	fgLeft  int       // foreground tasks not yet ended
	bg      []*Later  // background tasks not yet started, in order
	closed  bool
	helpers sync.WaitGroup
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

// Run starts as many helpers as there are tasks beyond the first (at most
// GOMAXPROCS-1), runs foreground tasks in the caller's goroutine until none
// is left to start, and returns when every foreground task has ended.
func (t *Tasks) Run() {
	t.cond.L = &t.mu
	for range min(runtime.GOMAXPROCS(0)-1, len(t.fg)+len(t.bg)-1) {
		t.helpers.Add(1)
		go t.help()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		if len(t.fg) > 0 {
			f := t.fg[0]
			t.fg = t.fg[1:]
			t.runFG(f)
			continue
		}
		if t.fgLeft == 0 {
			return
		}
		t.cond.Wait()
	}
}

// runFG runs a foreground task with t.mu released.
func (t *Tasks) runFG(f func()) {
	t.mu.Unlock()
	f()
	t.mu.Lock()
	t.fgLeft--
	t.cond.Broadcast()
}

// help runs foreground tasks first, then background ones, until none is
// left to start or Close is called.
func (t *Tasks) help() {
	defer t.helpers.Done()
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		switch {
		case len(t.fg) > 0:
			f := t.fg[0]
			t.fg = t.fg[1:]
			t.runFG(f)
		case len(t.bg) > 0 && !t.closed:
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
	l.state = running
	l.t.mu.Unlock()
	l.f()
	l.t.mu.Lock()
	l.state = done
	l.t.cond.Broadcast()
}

// Wait runs l in the caller's goroutine if no helper has started it, or
// waits for the helper running it. It reports whether l ran: false after
// Close skipped it.
func (l *Later) Wait() bool {
	t := l.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cond.L == nil {
		t.cond.L = &t.mu
	}
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

// Close skips the background tasks not yet started and waits until every
// helper has returned (each after the task it is running), so nothing of t
// is running once Close returns. Call it after Run, when the results are
// no longer wanted or all have been waited for.
func (t *Tasks) Close() {
	t.mu.Lock()
	t.closed = true
	for _, l := range t.bg {
		if l.state == pending {
			l.state = skipped
		}
	}
	t.bg = nil
	t.mu.Unlock()
	t.helpers.Wait()
}
