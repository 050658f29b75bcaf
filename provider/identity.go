package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
	"github.com/spacepanda/spacepanda/store"
)

// Who this device is. A Provider is one device of one user: its own MLS
// signature key and device id, certified by the user's identity key
// (identity.Certificate). The first device of a user generates the
// identity key and keeps it sealed in its store; a device linked to an
// existing user (Options.Link, then InstallCertificate) keeps only its
// certificate. The BasicCredential identity of every leaf is the user id,
// and every leaf carries the certificate (extension
// identity.ExtensionTypeDeviceCertificate) and the display name
// (ExtensionTypeDisplayName), both listed in its capabilities.

// Errors of the device identity.
var (
	// ErrLegacyIdentity: the store was made before user ids were derived
	// from keys; its identity cannot be given one its groups would accept.
	ErrLegacyIdentity = errors.New("provider: this store was made before self-certifying user ids")
	// ErrNotLinked: the device waits for its certificate (Options.Link):
	// it has no user yet.
	ErrNotLinked = errors.New("provider: this device has no certificate yet: link it to its user first")
	// ErrNoIdentityKey: the operation needs the user's identity key, which
	// this device (a linked one) does not hold.
	ErrNoIdentityKey = errors.New("provider: this device does not hold its user's identity key")
	// ErrCertificate: a certificate to install is not for this device, or
	// does not verify.
	ErrCertificate = errors.New("provider: certificate not valid for this device")
	// ErrSelfRevoked: this device is revoked by its user.
	ErrSelfRevoked = errors.New("provider: this device is revoked")
)

// self is the device's identity as the provider uses it. It changes only
// when a certificate is installed or renewed or the display name changes.
type self struct {
	rec      store.Identity // as stored
	userID   identity.UserID
	cred     tree.Credential
	cert     *identity.Certificate     // nil while waiting for linking
	priv     *identity.PrivateIdentity // nil on a linked device
	display  string
	leafExts tree.Extensions // certificate and display name
}

// renewBefore is how long before its expiry a device holding the identity
// key renews its own certificate when it starts.
const renewBefore = 30 * 24 * time.Hour

// newIdentity makes the store record of a new device: a signature key, a
// device id and, unless it waits for linking, a new user (identity key)
// and the device's certificate.
func (p *Provider) newIdentity(o Options) (store.Identity, error) {
	if err := CheckDisplayName(o.Name); err != nil {
		return store.Identity{}, err
	}
	id := o.Suite
	if id == 0 {
		id = suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	}
	s, err := suite.New(id)
	if err != nil {
		return store.Identity{}, err
	}
	priv, pub, err := s.GenerateSignatureKeyPair(p.rand)
	if err != nil {
		return store.Identity{}, err
	}
	dev, err := identity.NewDeviceID(p.rand)
	if err != nil {
		return store.Identity{}, err
	}
	rec := store.Identity{SignaturePrivateKey: priv, SignaturePublicKey: pub, CipherSuite: uint16(id),
		DeviceID: dev[:], DisplayName: o.Name, CreatedAt: p.now()}
	if o.Link {
		return rec, nil
	}
	pi, err := identity.GenerateIdentity(p.rand)
	if err != nil {
		return store.Identity{}, err
	}
	d, err := identity.NewDevice(dev, id, pub)
	if err != nil {
		return store.Identity{}, err
	}
	cert, err := pi.Certify(d, p.now(), p.certLife)
	if err != nil {
		return store.Identity{}, err
	}
	if rec.PrivateIdentity, err = pi.MarshalBinary(); err != nil {
		return store.Identity{}, err
	}
	return withCertificate(rec, cert)
}

// withCertificate is rec with cert's user id, credential and certificate.
func withCertificate(rec store.Identity, cert *identity.Certificate) (store.Identity, error) {
	enc, err := cert.Marshal()
	if err != nil {
		return store.Identity{}, err
	}
	cred := tree.NewBasicCredential([]byte(cert.UserID()))
	credBytes, err := wire.Marshal(&cred)
	if err != nil {
		return store.Identity{}, err
	}
	rec.UserID, rec.Credential, rec.Certificate = string(cert.UserID()), credBytes, enc
	return rec, nil
}

// loadSelf checks a stored identity against this device's signature key
// and makes it usable.
func (p *Provider) loadSelf(rec store.Identity) (*self, error) {
	if len(rec.DeviceID) == 0 {
		return nil, fmt.Errorf("%w: its identity %q has no identity key, and its groups would refuse a new one; "+
			"start again with a new data directory (the channels must be rejoined)", ErrLegacyIdentity, rec.UserID)
	}
	if len(rec.DeviceID) != len(p.devID) {
		return nil, fmt.Errorf("provider: stored identity: device id of %d bytes", len(rec.DeviceID))
	}
	me := &self{rec: rec, display: rec.DisplayName}
	if rec.UserID == "" {
		return me, nil
	}
	cert, err := identity.ParseCertificate(rec.Certificate)
	if err != nil {
		return nil, fmt.Errorf("provider: stored identity: %w", err)
	}
	if err := p.checkOwnCertificate(cert); err != nil {
		return nil, fmt.Errorf("provider: stored identity: %w", err)
	}
	if string(cert.UserID()) != rec.UserID {
		return nil, fmt.Errorf("provider: stored identity: the certificate is not for user %s", identity.UserID(rec.UserID).Short())
	}
	if err := wire.Unmarshal(rec.Credential, &me.cred); err != nil {
		return nil, fmt.Errorf("provider: stored identity credential: %w", err)
	}
	if me.cred.CredentialType != tree.CredentialTypeBasic || string(me.cred.Identity) != rec.UserID {
		return nil, errors.New("provider: stored identity: the credential does not present the user id")
	}
	if len(rec.PrivateIdentity) > 0 {
		if me.priv, err = identity.ParsePrivateIdentity(rec.PrivateIdentity); err != nil {
			return nil, fmt.Errorf("provider: stored identity: %w", err)
		}
		if me.priv.IdentityKey() != cert.IdentityKey {
			return nil, errors.New("provider: stored identity: the identity key did not issue the certificate")
		}
	}
	me.userID, me.cert = cert.UserID(), cert
	if err := me.buildLeafExtensions(); err != nil {
		return nil, err
	}
	return me, nil
}

// checkOwnCertificate checks that cert is for this very device.
func (p *Provider) checkOwnCertificate(cert *identity.Certificate) error {
	scheme, err := identity.SchemeOf(p.suite.ID())
	if err != nil {
		return err
	}
	switch {
	case cert.Device.ID != p.devID:
		return fmt.Errorf("%w: it certifies device %s, this is %s", ErrCertificate, cert.Device.ID, p.devID)
	case cert.Device.Scheme != scheme || !bytes.Equal(cert.Device.SignatureKey, p.signer.PublicKey()):
		return fmt.Errorf("%w: it certifies another signature key", ErrCertificate)
	}
	return nil
}

func (me *self) buildLeafExtensions() error {
	ce, err := me.cert.Extension()
	if err != nil {
		return err
	}
	me.leafExts = tree.Extensions{ce}
	if me.display != "" {
		de, err := DisplayNameExtension(me.display)
		if err != nil {
			return err
		}
		me.leafExts = append(me.leafExts, de)
	}
	return nil
}

// current returns this device's identity, or ErrNotLinked while it has
// no certificate.
func (p *Provider) current() (*self, error) {
	p.idMu.RLock()
	defer p.idMu.RUnlock()
	if p.me.cert == nil {
		return nil, ErrNotLinked
	}
	if p.revs.Revoked(p.me.cert.IdentityKey, p.devID) {
		return nil, fmt.Errorf("%w: device %s of %s", ErrSelfRevoked, p.devID, p.me.userID.Short())
	}
	return p.me, nil
}

// changeSelf applies change to the stored identity record, stores the
// result (UpdateIdentity) and adopts it. Changes are serialised; readers
// see the old identity until the new one is stored.
func (p *Provider) changeSelf(ctx context.Context, change func(rec store.Identity, cur *self) (store.Identity, bool, error)) error {
	p.idWrite.Lock()
	defer p.idWrite.Unlock()
	p.idMu.RLock()
	cur := p.me
	p.idMu.RUnlock()
	rec, changed, err := change(cur.rec, cur)
	if err != nil || !changed {
		return err
	}
	me, err := p.loadSelf(rec)
	if err != nil {
		return err
	}
	if err := p.st.Update(ctx, func(tx store.Tx) error { return tx.UpdateIdentity(ctx, rec) }); err != nil {
		return fmt.Errorf("provider: store identity: %w", err)
	}
	p.idMu.Lock()
	p.me = me
	p.idMu.Unlock()
	return nil
}

// UserID is this device's user id, the identity of its credential (""
// while it waits for its certificate).
func (p *Provider) UserID() identity.UserID {
	p.idMu.RLock()
	defer p.idMu.RUnlock()
	return p.me.userID
}

// DisplayName is the name this device shows others beside its user id.
func (p *Provider) DisplayName() string {
	p.idMu.RLock()
	defer p.idMu.RUnlock()
	return p.me.display
}

// DeviceID is this device's id.
func (p *Provider) DeviceID() identity.DeviceID { return p.devID }

// Device is this device as its user's identity key certifies it: what a
// new device presents when it is linked (identity.NewLinkJoin).
func (p *Provider) Device() identity.Device {
	d, err := identity.NewDevice(p.devID, p.suite.ID(), p.signer.PublicKey())
	if err != nil {
		panic(err) // the suite was checked when the provider was made
	}
	return d
}

// LinkSigner is this device's signature key for identity.NewLinkJoin (its
// proof of possession); the private key stays in the provider.
func (p *Provider) LinkSigner() identity.LinkSigner { return linkSigner{p.signer} }

type linkSigner struct{ s *suite.Signer }

func (l linkSigner) PublicKey() []byte { return l.s.PublicKey() }
func (l linkSigner) SignWithLabel(label string, content []byte) ([]byte, error) {
	return l.s.SignWithLabel(label, content)
}

// Certificate is this device's certificate (nil while it waits for it).
func (p *Provider) Certificate() *identity.Certificate {
	p.idMu.RLock()
	defer p.idMu.RUnlock()
	if p.me.cert == nil {
		return nil
	}
	c := *p.me.cert
	c.Device.SignatureKey = bytes.Clone(c.Device.SignatureKey)
	c.Signature = bytes.Clone(c.Signature)
	return &c
}

// IdentityKey is the user's identity public key (zero while the device
// waits for its certificate).
func (p *Provider) IdentityKey() identity.IdentityKey {
	p.idMu.RLock()
	defer p.idMu.RUnlock()
	if p.me.cert == nil {
		return identity.IdentityKey{}
	}
	return p.me.cert.IdentityKey
}

// HoldsIdentityKey reports whether this device holds the user's identity
// key (it is the user's first device), and so can certify and revoke
// devices.
func (p *Provider) HoldsIdentityKey() bool {
	p.idMu.RLock()
	defer p.idMu.RUnlock()
	return p.me.priv != nil
}

// Verify says who a leaf belongs to, as the provider's validator checks a
// leaf entering a plain group now: Member.Verified false (and no error)
// for a leaf without a certificate. Use it to show members.
func (p *Provider) Verify(ln *tree.LeafNode) (identity.Member, error) {
	return p.creds.lax.Verify(ln)
}

// InstallCertificate installs this device's certificate: the one another
// device of its user issued when linking it (identity.LinkJoin.Finish),
// or a renewed one. It must certify this device (its id and signature
// key), verify, be valid now and not revoked; a device that has a user
// already accepts only a certificate from the same identity key
// (ErrIdentityMismatch). Leaves made from then on carry it; the groups
// this device is in get it with its next commit.
func (p *Provider) InstallCertificate(ctx context.Context, cert *identity.Certificate) error {
	if err := p.checkOwnCertificate(cert); err != nil {
		return err
	}
	enc, err := cert.Marshal()
	if err != nil {
		return err
	}
	if _, err := p.creds.strict.VerifyCertificate(string(cert.UserID()), p.signer.PublicKey(), enc); err != nil {
		return fmt.Errorf("%w: %w", ErrCertificate, err)
	}
	return p.changeSelf(ctx, func(rec store.Identity, cur *self) (store.Identity, bool, error) {
		if cur.cert != nil && cur.cert.IdentityKey != cert.IdentityKey {
			return rec, false, fmt.Errorf("%w: this device belongs to %s, the certificate is %s's", ErrIdentityMismatch,
				cur.cert.UserID().Short(), cert.UserID().Short())
		}
		rec, err := withCertificate(rec, cert)
		return rec, err == nil, err
	})
}

// SetDisplayName changes the name this device shows (leaves made from
// then on carry it; the groups this device is in get it with its next
// commit).
func (p *Provider) SetDisplayName(ctx context.Context, name string) error {
	if err := CheckDisplayName(name); err != nil {
		return err
	}
	return p.changeSelf(ctx, func(rec store.Identity, _ *self) (store.Identity, bool, error) {
		changed := rec.DisplayName != name
		rec.DisplayName = name
		return rec, changed, nil
	})
}

// privateIdentity returns the user's identity key pair, or
// ErrNoIdentityKey on a device that does not hold it.
func (p *Provider) privateIdentity() (*identity.PrivateIdentity, error) {
	p.idMu.RLock()
	defer p.idMu.RUnlock()
	if p.me.priv == nil {
		return nil, ErrNoIdentityKey
	}
	return p.me.priv, nil
}

// renewIfDue renews this device's own certificate when it expires within
// renewBefore, on the device that holds the identity key.
func (p *Provider) renewIfDue(ctx context.Context) error {
	return p.changeSelf(ctx, func(rec store.Identity, cur *self) (store.Identity, bool, error) {
		cert, priv := cur.cert, cur.priv
		if cert == nil || priv == nil || time.Unix(int64(cert.NotAfter), 0).Sub(p.now()) > renewBefore {
			return rec, false, nil
		}
		next, err := priv.Certify(cert.Device, p.now(), p.certLife)
		if err == nil {
			rec, err = withCertificate(rec, next)
		}
		return rec, err == nil, err
	})
}

// AcceptLink certifies the device that answered a link offer (after the
// user agreed to the request identity.LinkOffer.ReadRequest returned),
// with this device's identity key, for lifetime (0: the provider's
// certificate lifetime). It returns the message for the new device and
// its certificate. ErrNoIdentityKey on a linked device.
func (p *Provider) AcceptLink(offer *identity.LinkOffer, lifetime time.Duration) ([]byte, *identity.Certificate, error) {
	priv, err := p.privateIdentity()
	if err != nil {
		return nil, nil, err
	}
	if lifetime == 0 {
		lifetime = p.certLife
	}
	return offer.Accept(priv, p.now(), lifetime)
}

// Revoke revokes one of this user's other devices with the identity key:
// it is stored and refused from then on by this device, and the returned
// revocation is for the other devices and the relay (publish it; every
// member that learns it refuses the device's leaves). This device cannot
// revoke itself. ErrNoIdentityKey on a linked device.
func (p *Provider) Revoke(ctx context.Context, device identity.DeviceID) (*identity.Revocation, error) {
	priv, err := p.privateIdentity()
	if err != nil {
		return nil, err
	}
	if device == p.devID {
		return nil, fmt.Errorf("provider: revoke: %s is this device", device)
	}
	r, err := priv.Revoke(device, p.now())
	if err != nil {
		return nil, err
	}
	if err := p.addRevocation(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

// AddRevocation verifies a revocation (of any user's device, as the relay's
// directory or another device hands it on), stores it, and refuses that
// device's leaves from then on: in key packages, updates, commit paths and
// the trees of groups joined. Adding one already known changes nothing.
func (p *Provider) AddRevocation(ctx context.Context, r *identity.Revocation) error {
	return p.addRevocation(ctx, r)
}

func (p *Provider) addRevocation(ctx context.Context, r *identity.Revocation) error {
	if err := r.Verify(); err != nil {
		return err
	}
	if p.revs.Revoked(r.IdentityKey, r.DeviceID) {
		return nil
	}
	enc, err := r.Marshal()
	if err != nil {
		return err
	}
	rec := store.Revocation{IdentityKey: r.IdentityKey.Bytes(), DeviceID: r.DeviceID[:], Revocation: enc}
	if err := p.st.Update(ctx, func(tx store.Tx) error { return tx.PutRevocation(ctx, rec) }); err != nil {
		return fmt.Errorf("provider: store revocation: %w", err)
	}
	return p.revs.Add(r)
}

// Revocations are the device revocations this device knows of.
func (p *Provider) Revocations() []*identity.Revocation { return p.revs.Revocations() }

// IsRevoked reports whether this device knows the device of ik revoked.
func (p *Provider) IsRevoked(ik identity.IdentityKey, device identity.DeviceID) bool {
	return p.revs.Revoked(ik, device)
}

// loadRevocations fills the revocation set from the store.
func (p *Provider) loadRevocations(ctx context.Context) error {
	recs, err := p.st.Revocations(ctx)
	if err != nil {
		return fmt.Errorf("provider: load revocations: %w", err)
	}
	for _, rec := range recs {
		r, err := identity.ParseRevocation(rec.Revocation)
		if err == nil {
			err = p.revs.Add(r)
		}
		if err != nil {
			return fmt.Errorf("provider: stored revocation: %w", err)
		}
	}
	return nil
}

// credentials is the provider's Authentication Service (mls.Config.
// Credentials): identity.Validator, admitting leaves without a
// certificate only in the groups plain reports (plain channels) and
// outside any group (a KeyPackage on its own, whose group decides).
type credentials struct {
	strict, lax *identity.Validator
	plain       func(*mls.GroupContext) bool
}

var (
	_ mls.CredentialValidator = (*credentials)(nil)
	_ mls.SuccessorValidator  = (*credentials)(nil)
)

func newCredentials(revs *identity.RevocationSet, now func() time.Time, plain func(*mls.GroupContext) bool) *credentials {
	return &credentials{
		strict: &identity.Validator{Revocations: revs, Now: now},
		lax:    &identity.Validator{Revocations: revs, Now: now, AllowUnverified: true},
		plain:  plain,
	}
}

func (c *credentials) ValidateCredential(ch *mls.CredentialCheck) error {
	if ch.GroupContext == nil || (c.plain != nil && c.plain(ch.GroupContext)) {
		return c.lax.ValidateCredential(ch)
	}
	return c.strict.ValidateCredential(ch)
}

// ValidateSuccessor is the same in every group: the user and the device
// never change.
func (c *credentials) ValidateSuccessor(prev, next *tree.LeafNode) error {
	return c.strict.ValidateSuccessor(prev, next)
}

// ValidateKeyPackage checks a KeyPackage on its own, outside any group, as
// this device would when it is added (RFC 9420 §10.1): signature,
// lifetime, capabilities, and its certificate if it has one (whether an
// unverified one is acceptable depends on the group: Verify tells).
func (p *Provider) ValidateKeyPackage(kp *mls.KeyPackage) error {
	if kp.CipherSuite != p.suite.ID() {
		return fmt.Errorf("%w: cipher suite %v, this device uses %v", mls.ErrInvalidKeyPackage, kp.CipherSuite, p.suite.ID())
	}
	return mls.ValidateKeyPackage(p.suite, kp, p.now(), mls.ValidateOptions{Credentials: p.creds, MaxLifetime: p.cfg.MaxLeafLifetime})
}
