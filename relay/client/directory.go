package relayclient

import (
	"context"
	"net/url"

	"github.com/spacepanda/spacepanda/identity"
)

// DeviceEntry is a device the relay lists for a user: its certificate as
// the device last logged in with. Verify it (identity.Validator) before
// trusting it.
type DeviceEntry struct {
	DeviceID    string
	Certificate []byte
}

// Directory is what the relay knows of a user's devices.
type Directory struct {
	UserID      identity.UserID
	Devices     []DeviceEntry
	Revocations [][]byte // identity.Revocation encodings, to verify and keep
}

// Devices returns the relay's directory entry of userID: its unrevoked
// devices and its revocations.
func (c *Client) Devices(ctx context.Context, userID identity.UserID) (*Directory, error) {
	var out struct {
		UserID  string `json:"user_id"`
		Devices []struct {
			DeviceID    string `json:"device_id"`
			Certificate b64    `json:"certificate"`
		} `json:"devices"`
		Revocations []b64 `json:"revocations"`
	}
	if err := c.do(ctx, "GET", "/v1/users/"+url.PathEscape(string(userID))+"/devices", nil, &out, devicesBound); err != nil {
		return nil, err
	}
	d := &Directory{UserID: identity.UserID(out.UserID), Devices: make([]DeviceEntry, len(out.Devices)), Revocations: make([][]byte, len(out.Revocations))}
	for i, x := range out.Devices {
		d.Devices[i] = DeviceEntry{DeviceID: x.DeviceID, Certificate: x.Certificate}
	}
	for i, r := range out.Revocations {
		d.Revocations[i] = r
	}
	return d, nil
}

// Revoke posts a revocation (identity.Revocation encoding, signed by the
// user's identity key) of one of our user's devices. The relay then
// refuses that device's tokens, logins and key packages.
func (c *Client) Revoke(ctx context.Context, revocation []byte) error {
	return c.do(ctx, "POST", "/v1/devices/revocations", map[string]b64{"revocation": revocation}, nil, smallAnswer)
}

// PublishKeyPackages publishes this device's one-time key packages
// (MLSMessage encodings, their leaves carrying this device's certificate)
// and, when lastResort is non-nil, replaces its last-resort one.
func (c *Client) PublishKeyPackages(ctx context.Context, kps [][]byte, lastResort []byte) (int, error) {
	req := struct {
		KeyPackages []b64 `json:"key_packages"`
		LastResort  b64   `json:"last_resort,omitempty"`
	}{KeyPackages: make([]b64, len(kps)), LastResort: lastResort}
	for i, k := range kps {
		req.KeyPackages[i] = k
	}
	var out struct {
		Stored int `json:"stored"`
	}
	err := c.do(ctx, "POST", "/v1/key-packages", req, &out, smallAnswer)
	return out.Stored, err
}

// KeyPackageCount is how many one-time key packages of this device the
// relay holds, and whether it holds a last-resort one.
func (c *Client) KeyPackageCount(ctx context.Context) (available int, lastResort bool, err error) {
	var out struct {
		Available  int  `json:"available"`
		LastResort bool `json:"last_resort"`
	}
	err = c.do(ctx, "GET", "/v1/key-packages/count", nil, &out, smallAnswer)
	return out.Available, out.LastResort, err
}

// ClaimedKeyPackage is one device's key package from a claim.
type ClaimedKeyPackage struct {
	DeviceID   string
	KeyPackage []byte // MLSMessage(KeyPackage): validate it before use
	LastResort bool
}

// ClaimKeyPackages claims one key package for each of userID's unrevoked
// devices that has one (ErrNotFound when none has): inviting a user adds
// all of its devices.
func (c *Client) ClaimKeyPackages(ctx context.Context, userID identity.UserID) ([]ClaimedKeyPackage, error) {
	var out struct {
		KeyPackages []struct {
			DeviceID   string `json:"device_id"`
			KeyPackage b64    `json:"key_package"`
			LastResort bool   `json:"last_resort"`
		} `json:"key_packages"`
	}
	if err := c.do(ctx, "POST", "/v1/key-packages/claim", map[string]string{"user_id": string(userID)}, &out, claimBound); err != nil {
		return nil, err
	}
	kps := make([]ClaimedKeyPackage, len(out.KeyPackages))
	for i, k := range out.KeyPackages {
		kps[i] = ClaimedKeyPackage{DeviceID: k.DeviceID, KeyPackage: k.KeyPackage, LastResort: k.LastResort}
	}
	return kps, nil
}
