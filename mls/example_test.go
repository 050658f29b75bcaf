package mls_test

import (
	"fmt"
	"log"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Alice creates a group, adds Bob with a commit, and the two exchange
// messages as bytes, the way a Delivery Service carries them; Bob keeps
// the group across a restart.
func Example() {
	s := suite.MustNew(suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	cfg := mls.Config{RatchetTreeInWelcome: true}
	alice, bob := newClient(s, "alice"), newClient(s, "bob") // a signer, a credential, a KeyPackage each

	// Alice creates the group and commits the Add of Bob's KeyPackage.
	a, err := mls.CreateGroup(s, alice.signer, []byte("example group"), mls.LeafOptions{Credential: alice.cred}, nil, cfg)
	if err != nil {
		log.Fatal(err)
	}
	res, err := a.Commit(mls.CommitOptions{Add: []*mls.KeyPackage{bob.kp}})
	if err != nil {
		log.Fatal(err)
	}
	a = res.State // once the Delivery Service has accepted res.Commit

	// Bob joins from the Welcome, which carries the ratchet tree.
	joined, err := mls.JoinFromWelcome(res.Welcome, nil, bob.find(s), cfg)
	if err != nil {
		log.Fatal(err)
	}
	b := joined.Group
	fmt.Printf("epoch %d, %d members\n", b.Epoch(), b.MemberCount())

	// Alice sends; the bytes go over the wire; Bob receives.
	msg, err := a.Encrypt([]byte("hello, bob"), nil)
	if err != nil {
		log.Fatal(err)
	}
	onWire, err := wire.Marshal(msg)
	if err != nil {
		log.Fatal(err)
	}
	got, err := b.ProcessBytes(onWire)
	if err != nil {
		log.Fatal(err)
	}
	sender, _ := b.Member(got.Sender.LeafIndex)
	fmt.Printf("%s from %s\n", got.ApplicationData, sender.Credential.Identity)

	// Bob saves his state, restarts, and replies.
	epochState, err := b.MarshalEpochState()
	if err != nil {
		log.Fatal(err)
	}
	ratchetState, err := b.MarshalRatchetState()
	if err != nil {
		log.Fatal(err)
	}
	b, err = mls.LoadGroup(epochState, ratchetState, bob.signer, cfg)
	if err != nil {
		log.Fatal(err)
	}
	reply, err := b.Encrypt([]byte("hi, alice"), nil)
	if err != nil {
		log.Fatal(err)
	}
	got, err = a.Process(reply)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", got.ApplicationData)

	// A replayed message is refused, and the group is unchanged.
	if _, err := a.Process(reply); err != nil {
		fmt.Println("replay refused, epoch still", a.Epoch())
	}
	// Output:
	// epoch 1, 2 members
	// hello, bob from alice
	// hi, alice
	// replay refused, epoch still 1
}
