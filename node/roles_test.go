package node_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/node"
)

func rolesView(t testing.TB, c *node.Client, ch string) string {
	t.Helper()
	ms, err := c.Members(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	out := ""
	for _, m := range ms {
		out += fmt.Sprintf("%s:%s ", named(m.UserID), m.Role)
	}
	return out
}

// Roles over the node API: GET members shows them, PUT .../role commits a
// change that the other member's inbox accepts, errors are typed.
func TestRolesAPI(t *testing.T) {
	ctx := context.Background()
	alice, bob, chn := inProcPair(t)
	ch := chn.id
	aliceID, bobID := uidOf(t, alice.c), uidOf(t, bob.c)
	if got := rolesView(t, alice.c, ch); got != "alice:admin bob:member " {
		t.Fatalf("alice sees %q", got)
	}
	var apiErr *node.Error
	if _, err := bob.c.SetRole(ctx, ch, bobID, "admin"); !errors.As(err, &apiErr) || apiErr.Status != 403 || apiErr.Code != "forbidden" {
		t.Fatalf("member promotes itself: %v", err)
	}
	if _, err := alice.c.SetRole(ctx, ch, bobID, "boss"); !errors.As(err, &apiErr) || apiErr.Code != "bad_role" {
		t.Fatalf("bad role: %v", err)
	}
	if _, err := alice.c.SetRole(ctx, ch, aliceID, "member"); !errors.As(err, &apiErr) || apiErr.Code != "last_admin" {
		t.Fatalf("last admin: %v", err)
	}
	if _, err := alice.c.SetRole(ctx, ch, "nobody", "member"); !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Fatalf("unknown member: %v", err)
	}
	cr, err := alice.c.SetRole(ctx, ch, bobID, "read-only")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.c.Inbox(ctx, ch, cr.Commit); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*node.Client{alice.c, bob.c} {
		if got := rolesView(t, c, ch); got != "alice:admin bob:read_only " {
			t.Fatalf("sees %q", got)
		}
	}
	if _, err := bob.c.Send(ctx, ch, "hi", ""); !errors.As(err, &apiErr) || apiErr.Status != 403 {
		t.Fatalf("read-only sends: %v", err)
	}
}
