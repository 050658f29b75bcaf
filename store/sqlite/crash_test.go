package sqlite_test

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/store"
	"github.com/spacepanda/spacepanda/store/sqlite"
)

const crashEnv = "SPACEPANDA_STORE_CRASH_DIR"

// crashWrite is write number i: the group's epoch, its ratchet blob and the
// channel's history all advance together, so any torn transaction shows.
func crashWrite(s store.Store, i uint64) error {
	return s.Update(ctx, func(tx store.Tx) error {
		if i == 1 {
			if err := tx.PutChannel(ctx, store.Channel{ID: "c", GroupID: []byte("g")}); err != nil {
				return err
			}
		}
		if err := tx.PutGroup(ctx, store.Group{ID: []byte("g"), Epoch: i, State: []byte(fmt.Sprint("state-", i))}); err != nil {
			return err
		}
		if err := tx.PutGroupBlob(ctx, []byte("g"), []byte("ratchet"), []byte(fmt.Sprint(i))); err != nil {
			return err
		}
		_, err := tx.AppendMessage(ctx, store.Message{ChannelID: "c", ID: fmt.Sprint("m-", i), Body: []byte(fmt.Sprint("body-", i))})
		return err
	})
}

// committed reads how many crash writes the database holds, checking that
// they are exactly writes 1..n, each whole.
func committed(t *testing.T, s store.Store) uint64 {
	t.Helper()
	g, err := s.Group(ctx, []byte("g"))
	if errors.Is(err, store.ErrGroupNotFound) {
		if ms, _ := s.Messages(ctx, "c", 0, 1); len(ms) != 0 {
			t.Fatal("messages without the group: torn transaction")
		}
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n := g.Epoch
	if string(g.State) != fmt.Sprint("state-", n) {
		t.Fatalf("state %q at epoch %d", g.State, n)
	}
	blob, err := s.GroupBlob(ctx, []byte("g"), []byte("ratchet"))
	if err != nil || string(blob) != fmt.Sprint(n) {
		t.Fatalf("ratchet blob %q (%v) at epoch %d: torn transaction", blob, err, n)
	}
	ms, err := s.Messages(ctx, "c", 0, int(n)+10)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(ms)) != n {
		t.Fatalf("%d messages at epoch %d: torn transaction", len(ms), n)
	}
	for i, m := range ms {
		if m.Seq != uint64(i+1) || m.ID != fmt.Sprint("m-", i+1) || string(m.Body) != fmt.Sprint("body-", i+1) {
			t.Fatalf("message %d = %+v: not a prefix", i, m)
		}
	}
	return n
}

// TestCrashChild is the child of TestCrashSafety: it writes in a loop and
// prints each write's number after its Update returns.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("run by TestCrashSafety")
	}
	s, err := sqlite.Open(ctx, filepath.Join(dir, "store.db"), sqlite.Options{KeyFile: filepath.Join(dir, "k")})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	start := committed(t, s)
	out := bufio.NewWriter(os.Stdout)
	deadline := time.Now().Add(time.Minute) // bounded even if nobody kills us
	for i := start + 1; time.Now().Before(deadline); i++ {
		if err := crashWrite(s, i); err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		fmt.Fprintln(out, i)
		out.Flush()
	}
	os.Exit(3)
}

// TestCrashSafety kills a writing child with SIGKILL at random points, then
// checks the database opens, passes integrity_check, and holds exactly a
// prefix of the writes, including every write the child reported as
// committed.
func TestCrashSafety(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL")
	}
	if os.Getenv(crashEnv) != "" {
		t.Skip("in child")
	}
	dir := t.TempDir()
	rounds := 5
	if testing.Short() {
		rounds = 2
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var reported uint64
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 1 + rng.IntN(40)
		sc := bufio.NewScanner(stdout)
		lines := 0
		for lines < killAfter && sc.Scan() {
			n, err := strconv.ParseUint(sc.Text(), 10, 64)
			if err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child: %s", sc.Text())
			}
			if n != reported+1 {
				t.Fatalf("child reported %d after %d", n, reported)
			}
			reported = n
			lines++
		}
		// Land the kill at a random point of the next writes.
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if lines < killAfter {
			t.Fatalf("child stopped after %d lines", lines)
		}

		var check string
		raw := rawDB(t, filepath.Join(dir, "store.db"))
		if err := raw.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
			t.Fatalf("round %d: integrity_check = %q, %v", round, check, err)
		}
		raw.Close()
		s, err := sqlite.Open(ctx, filepath.Join(dir, "store.db"), sqlite.Options{KeyFile: filepath.Join(dir, "k")})
		if err != nil {
			t.Fatalf("round %d: open after kill: %v", round, err)
		}
		n := committed(t, s)
		s.Close()
		if n < reported {
			t.Fatalf("round %d: database holds %d writes, child reported %d committed", round, n, reported)
		}
		t.Logf("round %d: killed after report %d, database holds %d", round, reported, n)
		reported = n
	}
}
