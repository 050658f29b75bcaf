package tsmls_test

import (
	"context"
	"encoding/base64"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/client"
	spnode "github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/provider"
)

// TestNodePlainChannelWithTSMLS (issue 12.8): a plain channel created
// through the node's HTTP API (`"roles": false`) carries no private
// extension, so ts-mls, a plain RFC 9420 client, is invited by key
// package, joins, and chats both ways; its commit is processed by the
// node; a channel with roles refuses its key package with the clear error.
func TestNodePlainChannelWithTSMLS(t *testing.T) {
	ctx := context.Background()
	p, err := provider.Open(ctx, filepath.Join(t.TempDir(), "alice"), provider.OpenOptions{Options: channel.ProviderOptions(provider.Options{Name: "alice"})})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(ctx, p, client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(spnode.New(cl, spnode.Options{}).Handler())
	t.Cleanup(func() { hs.Close(); cl.Close(); p.Close() })
	alice := &spnode.Client{BaseURL: hs.URL}
	bob := eiStartTS(t, "bob", 1) // the node's suite

	b64 := base64.StdEncoding.EncodeToString
	un64 := func(s string) []byte {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// A channel with roles: ts-mls cannot list the roles extension.
	var withRoles spnode.ChannelResponse
	if err := alice.Do(ctx, "POST", "/v1/channels", map[string]any{"name": "roles"}, &withRoles); err != nil {
		t.Fatal(err)
	}
	err = alice.Do(ctx, "POST", "/v1/channels/"+withRoles.ChannelID+"/invites", spnode.InviteRequest{KeyPackage: b64(bob.KeyPackage())}, nil)
	if ne, ok := err.(*spnode.Error); !ok || ne.Status != 400 {
		t.Fatalf("a ts-mls key package into a channel with roles: %v", err)
	}

	var ch spnode.ChannelResponse
	if err := alice.Do(ctx, "POST", "/v1/channels", map[string]any{"name": "plain", "roles": false}, &ch); err != nil {
		t.Fatal(err)
	}
	if ch.Roles {
		t.Fatalf("a plain channel with roles: %+v", ch)
	}
	var inv spnode.InviteResponse
	if err := alice.Do(ctx, "POST", "/v1/channels/"+ch.ChannelID+"/invites", spnode.InviteRequest{KeyPackage: b64(bob.KeyPackage())}, &inv); err != nil {
		t.Fatal(err)
	}
	bob.Join(un64(inv.Welcome), un64(inv.RatchetTree))
	if b64(bob.gid) != ch.GroupID {
		t.Fatalf("ts-mls joined group %x, the channel's is %s", bob.gid, ch.GroupID)
	}

	// alice → bob: a ChatMessage in application data.
	var sent spnode.SendResponse
	if err := alice.Do(ctx, "POST", "/v1/channels/"+ch.ChannelID+"/messages", spnode.SendRequest{Text: "hello ts-mls"}, &sent); err != nil {
		t.Fatal(err)
	}
	got, err := bob.Process(un64(sent.Ciphertext))
	if err != nil {
		t.Fatal(err)
	}
	if cm, err := channel.UnmarshalChat(got.Data); err != nil || string(cm.Body) != "hello ts-mls" {
		t.Fatalf("ts-mls got %+v %v", cm, err)
	}
	// bob → alice: plain application data, shown under bob's identity.
	var in spnode.InboxResponse
	if err := alice.Do(ctx, "POST", "/v1/channels/"+ch.ChannelID+"/inbox", spnode.InboxRequest{Message: b64(bob.Send([]byte("hello go")))}, &in); err != nil {
		t.Fatal(err)
	}
	if in.Message == nil || in.Message.Text != "hello go" || in.Message.Sender.Verified {
		t.Fatalf("alice got %+v", in)
	}
	// bob's self-update commit moves alice's epoch with it.
	up := bob.Update()
	if err := alice.Do(ctx, "POST", "/v1/channels/"+ch.ChannelID+"/inbox", spnode.InboxRequest{Message: b64(up.Commit)}, &in); err != nil {
		t.Fatal(err)
	}
	if v := bob.View(); in.Kind != "commit" || in.Epoch != v.Epoch {
		t.Fatalf("alice after bob's update: %+v, bob at epoch %d", in, v.Epoch)
	}
	ms, err := alice.Members(ctx, ch.ChannelID)
	if err != nil || len(ms) != 2 {
		t.Fatalf("alice's members %+v %v", ms, err)
	}
}
