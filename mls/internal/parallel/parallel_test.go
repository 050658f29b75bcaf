package parallel

import (
	"crypto/sha256"
	"runtime"
	"sync/atomic"
	"testing"
)

func TestWorkers(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	for _, tc := range []struct{ n, per, want int }{
		{0, 16, 1}, {15, 16, 1}, {16, 16, 1}, {32, 16, min(2, procs)}, {1 << 20, 16, procs}, {5, 0, min(5, procs)},
	} {
		if got := Workers(tc.n, tc.per); got != tc.want {
			t.Errorf("Workers(%d, %d) = %d, want %d", tc.n, tc.per, got, tc.want)
		}
	}
}

// TestTasksResults: every task runs exactly once and its result is visible
// after Run (foreground) or Wait (background), at every GOMAXPROCS; run
// with -race.
func TestTasksResults(t *testing.T) {
	data := make([]byte, 1<<16)
	for i := range data {
		data[i] = byte(i)
	}
	want := sha256.Sum256(data)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 4} {
		runtime.GOMAXPROCS(procs)
		for round := 0; round < 20; round++ {
			var tk Tasks
			var fg [3][32]byte
			var runs atomic.Int32
			for i := range fg {
				tk.Go(func() { runs.Add(1); fg[i] = sha256.Sum256(data) })
			}
			var bg [2][32]byte
			var later []*Later
			for i := range bg {
				later = append(later, tk.Later(func() { runs.Add(1); bg[i] = sha256.Sum256(data) }))
			}
			tk.Run()
			for i := range fg {
				if fg[i] != want {
					t.Fatalf("procs=%d: foreground task %d not done when Run returned", procs, i)
				}
			}
			for i, l := range later {
				if !l.Wait() || bg[i] != want {
					t.Fatalf("procs=%d: background task %d", procs, i)
				}
			}
			tk.Close()
			if n := runs.Load(); n != 5 {
				t.Fatalf("procs=%d: %d runs, want 5", procs, n)
			}
		}
	}
}

// TestTasksClose: Close skips what has not started, and after it returns
// nothing of the Tasks is running.
func TestTasksClose(t *testing.T) {
	var tk Tasks
	var ran atomic.Bool
	l := tk.Later(func() { ran.Store(true) })
	tk.Close()
	if l.Wait() || ran.Load() {
		t.Fatal("a background task ran after Close")
	}

	// A background task a helper is running is finished, not abandoned.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	var tk2 Tasks
	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	tk2.Go(func() {})
	l2 := tk2.Later(func() { close(started); <-release; finished.Store(true) })
	tk2.Run()
	<-started
	go func() { close(release) }()
	tk2.Close()
	if !finished.Load() || !l2.Wait() {
		t.Fatal("Close returned while a helper was running a task")
	}
}

// TestLaterWithoutRun: with no Run (or no helper), Wait runs the task in
// the caller's goroutine.
func TestLaterWithoutRun(t *testing.T) {
	var tk Tasks
	x := 0
	l := tk.Later(func() { x = 7 })
	if !l.Wait() || x != 7 {
		t.Fatal("Wait did not run the task")
	}
	if !l.Wait() {
		t.Fatal("second Wait")
	}
	tk.Close()
}

// TestLateHelperDoesNothing: a helper that only gets to run after Close
// starts no task (here the late helper is called by hand), and Close waits
// for no helper that has not started.
func TestLateHelperDoesNothing(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // Run starts no helper
	var tk Tasks
	var ran atomic.Bool
	tk.Go(func() {})
	l := tk.Later(func() { ran.Store(true) })
	tk.Run()
	tk.Close()
	tk.help()
	if ran.Load() || l.Wait() {
		t.Fatal("a background task ran after Close")
	}
}
