package identity_test

import (
	"fmt"
	"log"
	"time"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// The main path: a user's identity certifies a device's MLS signature key,
// the device publishes a KeyPackage whose leaf carries the certificate and
// presents the user id, and a peer's validator checks it.
func Example() {
	// The user's identity key (stored sealed: MarshalBinary).
	me, err := identity.GenerateIdentity(nil)
	if err != nil {
		log.Fatal(err)
	}

	// A device: its own MLS signature key, in its cipher suite.
	s := suite.MustNew(suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	priv, _, err := s.GenerateSignatureKeyPair(nil)
	if err != nil {
		log.Fatal(err)
	}
	signer, err := s.NewSigner(priv)
	if err != nil {
		log.Fatal(err)
	}
	deviceID, err := identity.NewDeviceID(nil)
	if err != nil {
		log.Fatal(err)
	}
	device, err := identity.NewDevice(deviceID, s.ID(), signer.PublicKey())
	if err != nil {
		log.Fatal(err)
	}

	// The identity certifies the device; the certificate goes into the
	// device's leaves as an extension, and the credential is the user id.
	cert, err := me.Certify(device, time.Now(), 0)
	if err != nil {
		log.Fatal(err)
	}
	ext, err := cert.Extension()
	if err != nil {
		log.Fatal(err)
	}
	kp, _, err := mls.NewKeyPackage(s, nil, signer, tree.NewBasicCredential([]byte(me.UserID())),
		mls.KeyPackageOptions{LeafExtensions: tree.Extensions{ext}})
	if err != nil {
		log.Fatal(err)
	}

	// A peer validates it (and gives the same Validator to its groups as
	// mls.Config.Credentials).
	v := &identity.Validator{}
	if err := mls.ValidateKeyPackage(s, kp, time.Now(), mls.ValidateOptions{Credentials: v}); err != nil {
		log.Fatal(err)
	}
	m, err := v.Verify(&kp.LeafNode)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verified:", m.Verified)
	fmt.Println("same user:", m.UserID == me.UserID())
	fmt.Println("same device:", m.DeviceID == deviceID)
	// Output:
	// verified: true
	// same user: true
	// same device: true
}
