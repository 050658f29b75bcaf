package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/spacepanda/spacepanda/client"
)

// Two identities without a relay: alice creates a channel and invites
// bob by one of his key packages; the engine merges the commit at once
// and returns the Welcome, which bob joins from. Messages are carried by
// the caller (with a relay, Config.RelayURL, the engine delivers them and
// Subscribe reports what arrives).
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "client-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	alice, err := client.Open(ctx, client.Config{DataDir: filepath.Join(dir, "alice"), DisplayName: "alice"})
	if err != nil {
		log.Fatal(err)
	}
	defer alice.Close()
	bob, err := client.Open(ctx, client.Config{DataDir: filepath.Join(dir, "bob"), DisplayName: "bob"})
	if err != nil {
		log.Fatal(err)
	}
	defer bob.Close()

	ch, err := alice.CreateChannel(ctx, "general", false, true)
	if err != nil {
		log.Fatal(err)
	}
	kp, err := bob.Manager().GenerateKeyPackage(ctx)
	if err != nil {
		log.Fatal(err)
	}
	inv, err := alice.Invite(ctx, ch.ID, client.InviteRequest{KeyPackages: [][]byte{kp}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("invite:", inv.Status, "epoch", inv.Epoch)
	if _, err := bob.JoinWelcome(ctx, inv.Welcome, inv.RatchetTree); err != nil {
		log.Fatal(err)
	}
	sent, err := alice.Send(ctx, ch.ID, "hello bob", "")
	if err != nil {
		log.Fatal(err)
	}
	ev, err := bob.Receive(ctx, ch.ID, sent.Ciphertext)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bob reads %q\n", ev.Message.Body)
	st, _ := bob.State(ctx, ch.ID)
	fmt.Println("bob's channel is", st.State)
	// Output:
	// invite: merged epoch 1
	// bob reads "hello bob"
	// bob's channel is active
}
