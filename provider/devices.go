package provider

import (
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// One leaf per device: no two leaves of a group may hold certificates for
// the same (user, device). Otherwise a device could be in a group twice,
// or — with a copy of another device's certificate, which is public — a
// leaf could pass for that device. The identity validator checks each
// leaf alone; this is the check across leaves, on the tree every commit,
// join and external join leads to, by every member, before anything is
// stored (RFC 9420 §12.2: the application may refuse commits).

// ErrDuplicateDevice: two leaves of a group hold the same (user, device).
var ErrDuplicateDevice = errors.New("provider: two leaves hold the same user and device")

// CheckDevices returns ErrDuplicateDevice when two leaves of rt carry
// certificates for the same identity key and device id. Leaves without a
// certificate (unverified, in plain groups) have no device to compare.
func CheckDevices(rt tree.RatchetTreeNodes) error {
	type key struct {
		ik  identity.IdentityKey
		dev identity.DeviceID
	}
	seen := map[key]int{}
	for i := 0; i < len(rt); i += 2 {
		n := rt[i]
		if n == nil || n.Leaf == nil {
			continue
		}
		cert, err := identity.LeafCertificate(n.Leaf)
		if err != nil {
			continue // the validator decides about leaves without a valid certificate
		}
		k := key{cert.IdentityKey, cert.Device.ID}
		if j, dup := seen[k]; dup {
			return fmt.Errorf("%w: leaves %d and %d are device %s of %s", ErrDuplicateDevice, j/2, i/2, cert.Device.ID, cert.UserID().Short())
		}
		seen[k] = i
	}
	return nil
}

// checkGroupDevices is CheckDevices on g's tree, wrapped for the caller of
// the operation that led to g.
func checkGroupDevices(g *mls.Group) error {
	if g.Removed() {
		return nil
	}
	return CheckDevices(g.RatchetTree())
}
