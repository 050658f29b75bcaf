package node_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/relay/api"
)

// TestRelayLargeBacklogToOfflineMember (issue 13 "bounded everything"):
// while bob's node is down alice sends more than a relay page of bytes in
// messages of the largest text the node takes. Bob's node, started again,
// reads the backlog in byte-bounded pages — in order, none lost, none
// twice — and then what follows, instead of refetching an oversized page
// forever.
func TestRelayLargeBacklogToOfflineMember(t *testing.T) {
	rp := startRelayProc(t)
	alice, bob := rlNode(t, "alice", rp.url()), rlNode(t, "bob", rp.url())
	ch := rlCreate(t, alice, "backlog")
	rlInvite(t, alice, ch, bob)
	rlWaitJoined(t, bob, ch)

	bob.kill()
	body := strings.Repeat("x", node.MaxTextBytes-16)
	n := 3*api.MaxPageBytes/len(body)/2 + 1 // one and a half pages of bytes
	var want []string
	for i := range n {
		text := fmt.Sprintf("%04d %s", i, body)
		rlSend(t, alice, ch, text)
		want = append(want, "alice:"+text[:4])
	}
	bob.start()
	rlSend(t, alice, ch, "after the backlog")
	want = append(want, "alice:after the backlog")

	var got []string
	rlEventually(t, 90*time.Second, "bob reads the backlog and what follows", func() (bool, string) {
		got = got[:0]
		for _, m := range rlHistory(t, bob, ch) {
			text := m.Text
			if len(text) == len(body)+5 {
				text = text[:4]
			}
			got = append(got, named(m.Sender.UserID)+":"+text)
		}
		return len(got) >= len(want), fmt.Sprintf("%d of %d", len(got), len(want))
	})
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("bob's history (%d) differs from what alice sent (%d):\n got %v\nwant %v", len(got), len(want), got, want)
	}
}
