package channel_test

import (
	"context"
	"fmt"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/provider"
	"github.com/spacepanda/spacepanda/store/memory"
)

// Alice creates a channel and invites Bob with one of his key packages; Bob
// joins from the invite; Alice's message reaches Bob as MLSMessage bytes,
// the way a relay carries them. Each user is a provider (identity, keys,
// durable state) on a store, here in memory.
func Example() {
	ctx := context.Background()
	newUser := func(name string) (*channel.Manager, *provider.Provider) {
		st := memory.New()
		p, err := provider.New(ctx, st, channel.ProviderOptions(provider.Options{Name: name}))
		if err != nil {
			panic(err)
		}
		return channel.NewManager(channel.NewMLSGroupProvider(p), st, channel.Options{}), p
	}
	alice, alicep := newUser("alice")
	bob, _ := newUser("bob")

	ch, err := alice.CreateChannel(ctx, "general", false)
	if err != nil {
		panic(err)
	}
	kp, err := bob.GenerateKeyPackage(ctx) // Bob publishes it; Alice fetches it
	if err != nil {
		panic(err)
	}
	// The commit is for the channel's existing members: Alice alone here.
	invite, _, err := alice.CreateInvite(ctx, ch.ID, kp)
	if err != nil {
		panic(err)
	}
	joined, err := bob.JoinChannel(ctx, invite)
	if err != nil {
		panic(err)
	}
	fmt.Printf("bob joined %q\n", joined.Name)

	_, msg, err := alice.SendMessage(ctx, ch.ID, "welcome, bob", "")
	if err != nil {
		panic(err)
	}
	ev, err := bob.Receive(ctx, msg)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s (from alice: %v)\n", ev.Message.Body, ev.Sender.Identity == string(alicep.UserID()))
	members, err := bob.Members(ctx, ch.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println("members:", len(members))

	// The same bytes a second time are refused: nothing is stored twice.
	if _, err := bob.Receive(ctx, msg); err != nil {
		fmt.Println("replay refused")
	}
	// Output:
	// bob joined "general"
	// welcome, bob (from alice: true)
	// members: 2
	// replay refused
}
