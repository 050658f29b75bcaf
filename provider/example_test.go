package provider_test

import (
	"context"
	"fmt"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/provider"
	"github.com/spacepanda/spacepanda/store/memory"
)

// A user's first device creates the user; a second device, made with
// Options.Link, is certified by the first through a device link (its
// messages travel over the relay's mailbox; here, in memory) and installs
// its certificate. Both are then the same user.
func Example_linkDevice() {
	ctx := context.Background()
	laptop, err := provider.New(ctx, memory.New(), provider.Options{Name: "alice"})
	if err != nil {
		panic(err)
	}
	phone, err := provider.New(ctx, memory.New(), provider.Options{Name: "alice's phone", Link: true})
	if err != nil {
		panic(err)
	}

	// The laptop shows the code; the user types it on the phone.
	offer, _ := identity.NewLinkOffer(nil)
	join, _ := identity.NewLinkJoin(offer.Code(), phone.Device(), phone.LinkSigner(), "phone", nil)
	request, _ := join.Respond(offer.Hello())
	if _, err := offer.ReadRequest(request); err != nil { // show its name, ask the user
		panic(err)
	}
	answer, _, err := laptop.AcceptLink(offer, 0)
	if err != nil {
		panic(err)
	}
	cert, err := join.Finish(answer)
	if err != nil {
		panic(err)
	}
	if err := phone.InstallCertificate(ctx, cert); err != nil {
		panic(err)
	}

	fmt.Println("same user:", phone.UserID() == laptop.UserID())
	fmt.Println("same device:", phone.DeviceID() == laptop.DeviceID())
	fmt.Println("the phone holds the identity key:", phone.HoldsIdentityKey())
	fmt.Println("same safety fingerprint:", identity.Fingerprint(phone.IdentityKey()) == identity.Fingerprint(laptop.IdentityKey()))
	// Output:
	// same user: true
	// same device: false
	// the phone holds the identity key: false
	// same safety fingerprint: true
}
