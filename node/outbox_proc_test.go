package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/node"
)

// doStatus sends a JSON request to the node and decodes the answer into
// out; it returns the HTTP status.
func doStatus(t *testing.T, p *proc, method, path string, body any, out any) int {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		rd = bytes.NewReader(jsonBody(body))
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, p.c.BaseURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if p.c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.c.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s %s: %v", p.name, method, path, err)
	}
	defer res.Body.Close()
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatalf("%s %s %s: %d, answer does not decode: %v", p.name, method, path, res.StatusCode, err)
		}
	}
	return res.StatusCode
}

func changesOf(t *testing.T, p *proc, ch string) []node.ChangeResponse {
	t.Helper()
	var r node.ChangesResponse
	if status := doStatus(t, p, "GET", rlPath(ch, "/changes"), nil, &r); status != http.StatusOK {
		t.Fatalf("%s changes: %d", p.name, status)
	}
	return r.Changes
}

// TestRelayDownStateChangesQueued (issue 13.2): with the relay down the
// admin's role change and invite answer 202 queued with an id; the
// admin's node is SIGKILLed and starts again with the relay still down,
// the changes still queued; when the relay returns they are carried out
// in order on the current epoch: every node ends in the same epoch with
// the same members and roles, the invitee joins from the Welcome and
// reads what is sent after.
func TestRelayDownStateChangesQueued(t *testing.T) {
	rp := startRelayProc(t)
	alice, bob, carol := rlNode(t, "alice", rp.url()), rlNode(t, "bob", rp.url()), rlNode(t, "carol", rp.url())
	ch := rlCreate(t, alice, "changes")
	rlInvite(t, alice, ch, bob)
	rlWaitJoined(t, bob, ch)
	ep0 := rlWaitConverged(t, ch, "alice,bob", alice, bob)
	ctx := context.Background()
	// Carol knows alice (a contact is looked up at the relay).
	if err := carol.c.Do(ctx, "PUT", "/v1/contacts/"+url.PathEscape(alice.uid), map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	rlSend(t, alice, ch, "before")
	rlWaitHistory(t, bob, ch, 1)

	rp.kill()
	var role node.CommitResponse
	if status := doStatus(t, alice, "PUT", rlPath(ch, "/members/", url.PathEscape(bob.uid), "/role"), map[string]string{"role": "admin"}, &role); status != http.StatusAccepted || role.Status != "queued" || role.ID == "" {
		t.Fatalf("role change with the relay down: %d %+v", status, role)
	}
	var inv node.InviteResponse
	if status := doStatus(t, alice, "POST", rlPath(ch, "/invites"), map[string]string{"user_id": carol.uid}, &inv); status != http.StatusAccepted || inv.Status != "queued" || inv.ID == "" {
		t.Fatalf("invite with the relay down: %d %+v", status, inv)
	}
	alice.restartHard() // starts with its relay down
	cs := changesOf(t, alice, ch)
	if len(cs) < 2 || cs[len(cs)-2].ID != role.ID || cs[len(cs)-1].ID != inv.ID ||
		cs[len(cs)-2].Status != "queued" || cs[len(cs)-1].Status != "queued" {
		t.Fatalf("alice's changes after the restart: %+v", cs)
	}

	rp.start()
	rlEventually(t, 120*time.Second, "all converge with carol", func() (bool, string) {
		var states []string
		ok := true
		var first uint64
		for i, p := range []*proc{alice, bob, carol} {
			e, ms, err := rlState(p, ch)
			roles := roleOf(p, ch, alice.uid) + "/" + roleOf(p, ch, bob.uid) + "/" + roleOf(p, ch, carol.uid)
			states = append(states, fmt.Sprintf("%s: epoch %d [%s] %s %v", p.name, e, ms, roles, err))
			if i == 0 {
				first = e
			}
			ok = ok && err == nil && ms == "alice,bob,carol" && e == first && roles == "admin/admin/member"
		}
		return ok, strings.Join(states, "; ")
	})
	if ep, _, _ := rlState(alice, ch); ep != ep0+2 {
		t.Fatalf("epoch %d after two changes from %d", ep, ep0)
	}
	cs = changesOf(t, alice, ch)
	if got := cs[len(cs)-2:]; got[0].Status != "sent" || got[0].Epoch != ep0+1 || got[1].Status != "sent" || got[1].Epoch != ep0+2 {
		t.Fatalf("alice's changes: %+v", got)
	}
	rlSend(t, alice, ch, "after")
	for _, p := range []*proc{bob, carol} {
		rlEventually(t, 60*time.Second, p.name+" reads the message sent after", func() (bool, string) {
			tx := rlTexts(rlHistory(t, p, ch))
			return len(tx) > 0 && strings.Contains(fmt.Sprint(tx), "alice:after"), fmt.Sprint(tx)
		})
	}
	if tx := rlTexts(rlHistory(t, carol, ch)); fmt.Sprint(tx) != "[alice:after]" {
		t.Fatalf("carol's history %v", tx)
	}
}
