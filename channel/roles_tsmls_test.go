package channel_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/interop/tsmls"
)

// A plain RFC 9420 peer (ts-mls, which knows nothing of the roles
// extension and cannot list it in its capabilities) is refused at invite
// time with a clear error, rather than joining a group whose roles it
// could not enforce. The channel is unchanged.
func TestRolesTSMLSPeerRefusedAtInvite(t *testing.T) {
	ctx := context.Background()
	ts := tsmls.StartT(t, "tsmls", 1)
	alice, bob, _, ch := threeParty(t)
	kp, _, err := ts.KeyPackage()
	if err != nil {
		t.Fatal(err)
	}
	e := epochOf(t, alice, ch)
	_, _, err = alice.CreateInvite(ctx, ch, kp)
	if !errors.Is(err, channel.ErrRolesUnsupported) || !strings.Contains(err.Error(), `"tsmls"`) {
		t.Fatalf("invite of a ts-mls peer: %v", err)
	}
	t.Log(err)
	if epochOf(t, alice, ch) != e {
		t.Fatal("epoch moved")
	}
	deliver(t, bob, send(t, alice, ch, "still fine"), "alice", "still fine")
	// A channel made by the ts-mls peer has no roles: joining it works,
	// and nobody's role is enforced.
	gid := []byte("tsmls-made-group")
	if err := ts.CreateGroup(gid); err != nil {
		t.Fatal(err)
	}
	kpb := must[[]byte](t)(bob.GenerateKeyPackage(ctx))
	res, err := ts.Add(gid, kpb)
	if err != nil {
		t.Fatal(err)
	}
	d, err := bob.JoinWelcome(ctx, res.Welcome, res.RatchetTree)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Roles(ctx, d.ID); !errors.Is(err, channel.ErrNoRoles) {
		t.Fatalf("roles of a ts-mls group: %v", err)
	}
}
