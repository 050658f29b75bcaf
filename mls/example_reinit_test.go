package mls_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// client is one member's keys for one cipher suite.
type client struct {
	signer *suite.Signer
	cred   tree.Credential
	kp     *mls.KeyPackage
	priv   *mls.KeyPackagePrivate
}

func newClient(s *suite.Suite, name string) *client {
	priv, _, err := s.GenerateSignatureKeyPair(nil)
	if err != nil {
		log.Fatal(err)
	}
	c := &client{cred: tree.NewBasicCredential([]byte(name))}
	if c.signer, err = s.NewSigner(priv); err != nil {
		log.Fatal(err)
	}
	if c.kp, c.priv, err = mls.NewKeyPackage(s, nil, c.signer, c.cred, mls.KeyPackageOptions{}); err != nil {
		log.Fatal(err)
	}
	return c
}

func (c *client) find(s *suite.Suite) mls.KeyPackageFinder {
	ref, _ := c.kp.Ref(s)
	return func(r mls.KeyPackageRef) (*mls.KeyPackageBundle, error) {
		if !bytes.Equal(r, ref) {
			return nil, mls.ErrKeyPackageNotFound
		}
		return &mls.KeyPackageBundle{KeyPackage: c.kp, Private: c.priv, Signer: c.signer}, nil
	}
}

// A group of two moves from suite 1 to suite 3 (RFC 9420 §11.2): Alice
// commits a ReInit, Bob processes it, makes a KeyPackage for the new suite,
// and Alice creates the new group, which Bob joins with the old group.
func ExampleGroup_ReInitGroup() {
	s1, s3 := suite.MustNew(1), suite.MustNew(3)
	cfg := mls.Config{RatchetTreeInWelcome: true}
	alice, bob := newClient(s1, "alice"), newClient(s1, "bob")
	a, err := mls.CreateGroup(s1, alice.signer, []byte("old group"), mls.LeafOptions{Credential: alice.cred}, nil, cfg)
	if err != nil {
		log.Fatal(err)
	}
	add, err := a.Commit(mls.CommitOptions{Add: []*mls.KeyPackage{bob.kp}})
	if err != nil {
		log.Fatal(err)
	}
	a = add.State
	joined, err := mls.JoinFromWelcome(add.Welcome, nil, bob.find(s1), cfg)
	if err != nil {
		log.Fatal(err)
	}
	b := joined.Group

	// The ReInit, committed by Alice and processed by Bob: both groups freeze.
	ri := &mls.ReInit{GroupID: []byte("new group"), Version: tree.ProtocolVersionMLS10, CipherSuite: s3.ID(), Extensions: tree.Extensions{}}
	res, err := a.Commit(mls.CommitOptions{ReInit: ri})
	if err != nil {
		log.Fatal(err)
	}
	a = res.State
	p, err := b.Process(res.Commit)
	if err != nil {
		log.Fatal(err)
	}
	b = p.State
	fmt.Println("reinit pending:", b.ReInitPending() != nil)

	// Each member needs keys of the new suite.
	alice3, bob3 := newClient(s3, "alice"), newClient(s3, "bob")
	created, err := a.ReInitGroup(mls.SuccessorOptions{Signer: alice3.signer, Members: []*mls.KeyPackage{bob3.kp}}, cfg)
	if err != nil {
		log.Fatal(err)
	}
	joined, err = mls.JoinReInitWelcome(created.Welcome, nil, bob3.find(s3), b, cfg)
	if err != nil {
		log.Fatal(err)
	}
	a2, b2 := created.State, joined.Group
	fmt.Printf("new group %q, %v, epoch %d\n", b2.GroupID(), b2.Suite(), b2.Epoch())
	fmt.Println("same epoch authenticator:", bytes.Equal(a2.EpochAuthenticator(), b2.EpochAuthenticator()))

	msg, err := a2.Encrypt([]byte("hello from the new group"), nil)
	if err != nil {
		log.Fatal(err)
	}
	got, err := b2.Process(msg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", got.ApplicationData)
	// Output:
	// reinit pending: true
	// new group "new group", MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519, epoch 1
	// same epoch authenticator: true
	// hello from the new group
}
