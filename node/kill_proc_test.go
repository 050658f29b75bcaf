package node_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/node"
)

// TestKilledMidStream: SIGKILL at the moments the engine defers writes
// to. A sender killed right after its sends were answered (their outbox
// entries are deleted up to 100 ms later) posts them again at restart; a
// reader killed while messages stream in (its read position is stored
// about once a second) reads part of its log again. Either way every
// message is in the reader's history exactly once, none is reported
// unreadable, and the sender's outbox drains.
func TestKilledMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	r := startRelayProc(t)
	alice, bob := rlNode(t, "alice", r.url()), rlNode(t, "bob", r.url())
	ch := rlCreate(t, alice, "general")
	rlInvite(t, alice, ch, bob)
	rlWaitJoined(t, bob, ch)
	rlWaitConverged(t, ch, "alice,bob", alice, bob)

	send := func(from, to int) {
		t.Helper()
		var wg sync.WaitGroup
		for i := from; i < to; i++ {
			wg.Go(func() { rlSend(t, alice, ch, fmt.Sprintf("m%03d", i)) })
		}
		wg.Wait()
	}
	// The sender dies just after its posts were answered.
	send(0, 30)
	alice.restartHard()
	// The reader dies while a stream of messages comes in.
	var wg sync.WaitGroup
	wg.Go(func() { send(30, 90) })
	time.Sleep(150 * time.Millisecond)
	bob.restartHard()
	wg.Wait()

	ctx := context.Background()
	rlEventually(t, 30*time.Second, "alice's outbox drains", func() (bool, string) {
		var st node.RelayStatus
		err := alice.c.Do(ctx, "GET", "/v1/relay", nil, &st)
		return err == nil && st.OutboxDepth == 0, fmt.Sprintf("%+v %v", st, err)
	})
	h := rlWaitHistory(t, bob, ch, 90)
	time.Sleep(500 * time.Millisecond) // copies posted again would come in now
	h = rlHistory(t, bob, ch)
	seen := map[string]int{}
	for _, m := range h {
		if strings.Contains(m.Text, "could not be read") {
			t.Errorf("bob's history reports a message unreadable: %q", m.Text)
		}
		seen[m.Text]++
	}
	for i := range 90 {
		if n := seen[fmt.Sprintf("m%03d", i)]; n != 1 {
			t.Errorf("m%03d is in bob's history %d times, want once", i, n)
		}
	}
}
