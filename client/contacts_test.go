package client_test

import (
	"errors"
	"testing"

	"github.com/spacepanda/spacepanda/client"
)

// Contacts are cached in memory: every change is seen at once, and what
// was stored is there after a restart.
func TestContactsFollowWrites(t *testing.T) {
	f := newFakeRelay()
	dir := t.TempDir()
	alice := openDir(t, f, dir, "alice")
	bob := open(t, f, "bob", client.Limits{})
	if _, err := alice.Contact(ctx, bob.uid); !errors.Is(err, client.ErrContactNotFound) {
		t.Fatalf("before: %v, want ErrContactNotFound", err)
	}
	yes := true
	if _, err := alice.PutContact(ctx, bob.uid, &yes); err != nil {
		t.Fatal(err)
	}
	if ct, err := alice.Contact(ctx, bob.uid); err != nil || !ct.Verified {
		t.Fatalf("after verifying: %+v %v", ct, err)
	}
	no := false
	if _, err := alice.PutContact(ctx, bob.uid, &no); err != nil {
		t.Fatal(err)
	}
	if ct, err := alice.Contact(ctx, bob.uid); err != nil || ct.Verified {
		t.Fatalf("after unverifying: %+v %v", ct, err)
	}
	if _, err := alice.PutContact(ctx, bob.uid, &yes); err != nil {
		t.Fatal(err)
	}
	alice.Close()
	alice = openDir(t, f, dir, "alice")
	defer alice.Close()
	if ct, err := alice.Contact(ctx, bob.uid); err != nil || !ct.Verified {
		t.Fatalf("after a restart: %+v %v", ct, err)
	}
	if err := alice.DeleteContact(ctx, bob.uid); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Contact(ctx, bob.uid); !errors.Is(err, client.ErrContactNotFound) {
		t.Fatalf("after delete: %v, want ErrContactNotFound", err)
	}
	if cs, err := alice.Contacts(ctx); err != nil || len(cs) != 0 {
		t.Fatalf("contacts after delete: %v %v", cs, err)
	}
}
