package relay

import (
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/relay/api"
)

// TestPostBatch: a batch of application messages is appended in order
// with consecutive seqs; a message of a future epoch is refused alone
// (409 future_epoch in its result, the others accepted); a batch holding
// a handshake, another group's message, nothing or too many is refused
// whole, with nothing appended; a non-member's messages are forbidden.
func TestPostBatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		_, base := newTestServer(t, st, Options{})
		alice, mallory := newIdent(t, "alice"), newIdent(t, "mallory")
		ca, cm := login(t, base, alice), login(t, base, mallory)
		gid := []byte("batch")
		gp := "/v1/groups/" + gidPath(gid)
		setupGroup(t, ca, gid, alice)
		msg := func(epoch uint64) []byte { return privMsg(t, gid, epoch, mls.ContentTypeApplication) }
		lastSeq := func() int64 { return ca.must(200, "GET", "/v1/groups/"+gidPath(gid), nil).num("last_seq") }
		before := lastSeq()

		r := ca.must(200, "POST", gp+"/messages/batch", map[string]any{"messages": [][]byte{msg(0), msg(0), msg(5), msg(0)}})
		rs, _ := r.body["results"].([]any)
		if len(rs) != 4 {
			t.Fatalf("results %s", r.raw)
		}
		var got []string
		for _, x := range rs {
			m := x.(map[string]any)
			if e, ok := m["error"].(map[string]any); ok {
				got = append(got, fmt.Sprintf("%v(current %v)", e["code"], m["current_epoch"]))
			} else {
				got = append(got, fmt.Sprint(int64(m["seq"].(float64))-before))
			}
		}
		if fmt.Sprint(got) != "[1 2 future_epoch(current 0) 3]" {
			t.Fatalf("results %v (%s)", got, r.raw)
		}
		page := ca.must(200, "GET", fmt.Sprintf("%s/messages?after=%d", gp, before), nil)
		if es, _ := page.body["messages"].([]any); len(es) != 3 {
			t.Fatalf("log after the batch: %s", page.raw)
		}

		other := privMsg(t, []byte("another group"), 0, mls.ContentTypeApplication)
		many := make([][]byte, api.MaxBatchMessages+1)
		for i := range many {
			many[i] = msg(0)
		}
		for name, c := range map[string]struct {
			msgs   [][]byte
			status int
			code   string
		}{
			"a proposal":          {[][]byte{msg(0), privMsg(t, gid, 0, mls.ContentTypeProposal)}, 400, "invalid_message"},
			"another group's":     {[][]byte{msg(0), other}, 400, "invalid_message"},
			"nothing":             {[][]byte{}, 400, "bad_request"},
			"more than the limit": {many, 400, "bad_request"},
		} {
			r := ca.do("POST", gp+"/messages/batch", map[string]any{"messages": c.msgs})
			if r.status != c.status || r.code() != c.code {
				t.Errorf("%s: %d %s, want %d %s", name, r.status, r.code(), c.status, c.code)
			}
		}
		r = cm.must(200, "POST", gp+"/messages/batch", map[string]any{"messages": [][]byte{msg(0)}})
		if e, _ := r.body["results"].([]any)[0].(map[string]any)["error"].(map[string]any); e["code"] != "forbidden" {
			t.Fatalf("a stranger's batch: %s", r.raw)
		}
		if n := lastSeq(); n != before+3 {
			t.Fatalf("refused batches appended: last seq %d, want %d", n, before+3)
		}
	})
}
