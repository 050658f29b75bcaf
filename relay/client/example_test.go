package relayclient_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"time"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
	"github.com/spacepanda/spacepanda/relay"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
)

// The main path: a device logs in with its certificate, publishes a key
// package whose leaf carries that certificate, and another user claims
// one key package per device of the first.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "relay-example")
	defer os.RemoveAll(dir)
	st, err := relay.OpenSQLite(ctx, dir)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	srv := relay.New(st, relay.Options{})
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	// A user's identity certifies this device's MLS signature key.
	user, _ := identity.GenerateIdentity(nil)
	cs := suite.MustNew(suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	priv, _, _ := cs.GenerateSignatureKeyPair(nil)
	signer, _ := cs.NewSigner(priv)
	id, _ := identity.NewDeviceID(nil)
	dev, _ := identity.NewDevice(id, cs.ID(), signer.PublicKey())
	cert, _ := user.Certify(dev, time.Now(), 0)
	certBytes, _ := cert.Marshal()

	c := relayclient.New(hs.URL, relayclient.Identity{Certificate: certBytes, Signer: signer}, relayclient.Options{})
	ext, _ := cert.Extension()
	kp, _, _ := mls.NewKeyPackage(cs, nil, signer, tree.NewBasicCredential([]byte(user.UserID())),
		mls.KeyPackageOptions{LeafExtensions: tree.Extensions{ext}})
	msg, _ := mls.NewMessage(kp)
	enc, _ := wire.Marshal(msg)
	if _, err := c.PublishKeyPackages(ctx, [][]byte{enc}, nil); err != nil { // logs in first
		log.Fatal(err)
	}

	// Anyone logged in claims one key package per device of the user.
	kps, err := c.ClaimKeyPackages(ctx, user.UserID())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("devices with a key package:", len(kps))
	fmt.Println("this device's:", kps[0].DeviceID == c.DeviceID().String())
	// Output:
	// devices with a key package: 1
	// this device's: true
}
