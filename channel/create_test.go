package channel_test

import (
	"context"
	"errors"
	"testing"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/store"
)

// A channel and what its creator writes with it (the sync engine: the
// group's registration in its outbox) are stored together or not at all:
// a failing write leaves no channel and no group behind.
func TestCreateChannelWithTx(t *testing.T) {
	ctx := context.Background()
	alice := newSQLPeer(t, "alice", channel.Options{}, false)
	errBoom := errors.New("boom")
	_, err := alice.CreateChannelWith(ctx, channel.CreateOptions{Name: "fails", Tx: func(store.Tx, *channel.Descriptor) error { return errBoom }})
	if !errors.Is(err, errBoom) {
		t.Fatalf("create with a failing write: %v", err)
	}
	if cs := must[[]*channel.Descriptor](t)(alice.Channels(ctx)); len(cs) != 0 {
		t.Fatalf("a channel was stored without its write: %+v", cs[0])
	}
	if gs, err := alice.st.Groups(ctx); err != nil || len(gs) != 0 {
		t.Fatalf("groups left behind: %v %v", gs, err)
	}
	var id string
	d, err := alice.CreateChannelWith(ctx, channel.CreateOptions{Name: "stored", Tx: func(tx store.Tx, d *channel.Descriptor) error {
		id = d.ID
		return tx.PutExternalPSK(ctx, []byte("with "+d.ID), []byte("secret"))
	}})
	if err != nil || d.ID != id {
		t.Fatalf("create: %v (%s, %s)", err, d.ID, id)
	}
	if _, err := alice.st.ExternalPSK(ctx, []byte("with "+d.ID)); err != nil {
		t.Fatalf("the write that went with the channel: %v", err)
	}
}
