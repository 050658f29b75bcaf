package provider

import (
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
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
// It runs on every commit that changes the tree, so it reads only the
// certificates' prefix (devicePrefix), parsing the rest never.
func CheckDevices(rt tree.RatchetTreeNodes) error {
	seen := make(map[string]int, len(rt)/2+1)
	for i := 0; i < len(rt); i += 2 {
		n := rt[i]
		if n == nil || n.Leaf == nil {
			continue
		}
		e := n.Leaf.Extensions.Find(identity.ExtensionTypeDeviceCertificate)
		if e == nil {
			continue
		}
		k, ok := devicePrefix(e.ExtensionData)
		if !ok {
			cert, err := identity.ParseCertificate(e.ExtensionData)
			if err != nil {
				continue // the validator decides about leaves without a valid certificate
			}
			b := wire.NewBuilder(devicePrefixLen)
			b.AddUint8(1)
			b.AddOpaque(cert.IdentityKey[:])
			b.AddOpaque(cert.Device.ID[:])
			p, err := b.Bytes()
			if err != nil {
				return err
			}
			k = string(p)
		}
		if j, dup := seen[k]; dup {
			cert, _ := identity.LeafCertificate(n.Leaf)
			who := "a user"
			if cert != nil {
				who = fmt.Sprintf("device %s of %s", cert.Device.ID, cert.UserID().Short())
			}
			return fmt.Errorf("%w: leaves %d and %d are %s", ErrDuplicateDevice, j/2, i/2, who)
		}
		seen[k] = i
	}
	return nil
}

// devicePrefixLen is the length of a certificate's version, identity key
// and device id in their strict encoding (identity.Certificate: uint8
// version = 1, then opaque<V> of 32 and 16 bytes, one-byte lengths).
const devicePrefixLen = 1 + 1 + 32 + 1 + 16

// devicePrefix returns the first devicePrefixLen bytes of an encoded
// certificate when they are a version 1 prefix: two certificates share it
// exactly when they name the same identity key and device id.
func devicePrefix(cert []byte) (string, bool) {
	if len(cert) < devicePrefixLen || cert[0] != 1 || cert[1] != 32 || cert[34] != 16 {
		return "", false
	}
	return string(cert[:devicePrefixLen]), true
}

// checkGroupDevices is CheckDevices on g's tree, wrapped for the caller of
// the operation that led to g.
func checkGroupDevices(g *mls.Group) error {
	if g.Removed() {
		return nil
	}
	return CheckDevices(g.RatchetTree())
}
