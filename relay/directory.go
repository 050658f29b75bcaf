package relay

import (
	"errors"
	"net/http"
	"time"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/relay/api"
)

// The directory: user id → devices (certificates, revocations) → key
// packages. A device enters it by logging in; it publishes key packages
// whose leaves carry its own certificate; a claim hands out one key
// package per unrevoked device, so that inviting a user adds all of its
// devices.

func parseUserID(field, s string) (identity.UserID, error) {
	u, err := identity.ParseUserID(s)
	if err != nil {
		return "", errf(http.StatusBadRequest, "bad_request", "%s: not a user id", field)
	}
	return u, nil
}

type deviceJSON struct {
	DeviceID    string `json:"device_id"`
	Certificate []byte `json:"certificate"`
}

func (s *Server) handleDevices(w http.ResponseWriter, r *http.Request, _ Session) error {
	u, err := parseUserID("user_id", r.PathValue("user_id"))
	if err != nil {
		return err
	}
	devs, revs, err := s.st.Devices(r.Context(), string(u))
	if err != nil {
		return err
	}
	out := make([]deviceJSON, len(devs))
	for i, d := range devs {
		out[i] = deviceJSON{DeviceID: d.DeviceID, Certificate: d.Certificate}
	}
	writeJSON(w, http.StatusOK, map[string]any{"user_id": u, "devices": out, "revocations": revs})
	return nil
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request, sess Session) error {
	var q struct {
		Revocation []byte `json:"revocation"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	if len(q.Revocation) == 0 || len(q.Revocation) > identity.MaxRevocationSize {
		return errf(http.StatusBadRequest, "invalid_revocation", "revocation missing or over %d bytes", identity.MaxRevocationSize)
	}
	rv, err := identity.ParseRevocation(q.Revocation)
	if err != nil {
		return errf(http.StatusBadRequest, "invalid_revocation", "%v", err)
	}
	if err := rv.Verify(); err != nil {
		return errf(http.StatusBadRequest, "invalid_revocation", "%v", err)
	}
	uid := rv.IdentityKey.UserID()
	if string(uid) != sess.UserID {
		return errf(http.StatusForbidden, "forbidden", "a revocation is posted by a device of its own user")
	}
	dev := DeviceRef{UserID: string(uid), DeviceID: rv.DeviceID.String()}
	err = s.st.Revoke(r.Context(), Revocation{UserID: dev.UserID, DeviceID: dev.DeviceID, IdentityKey: rv.IdentityKey.Bytes(), Data: q.Revocation},
		api.MaxRevocationsPerUser, s.o.Now())
	if errors.Is(err, ErrLimit) {
		return errf(http.StatusConflict, "revocation_limit", "%v", err)
	} else if err != nil {
		return err
	}
	s.event(Event{Revoked: &dev})
	writeJSON(w, http.StatusOK, map[string]any{"user_id": dev.UserID, "device_id": dev.DeviceID})
	return nil
}

// checkKeyPackage decodes an MLSMessage(KeyPackage), validates it (RFC 9420
// §10.1, its signature, and its leaf's device certificate with the
// identity.Validator) and checks that it is the caller's own: the leaf's
// certificate is for the session's device and signature key.
func (s *Server) checkKeyPackage(data []byte, sess Session, now time.Time) (KeyPackage, error) {
	if len(data) > api.MaxKeyPackageSize {
		return KeyPackage{}, errf(http.StatusRequestEntityTooLarge, "key_package_too_large", "a key package is at most %d bytes", api.MaxKeyPackageSize)
	}
	m, err := mls.UnmarshalMessage(data)
	if err != nil || m.WireFormat != mls.WireFormatKeyPackage {
		return KeyPackage{}, errf(http.StatusBadRequest, "invalid_key_package", "not an MLSMessage(KeyPackage)")
	}
	kp := m.KeyPackage
	cs, err := suite.New(kp.CipherSuite)
	if err != nil {
		return KeyPackage{}, errf(http.StatusBadRequest, "invalid_key_package", "unsupported cipher suite")
	}
	v := &identity.Validator{Now: s.o.Now}
	if err := mls.ValidateKeyPackage(cs, kp, now, mls.ValidateOptions{Credentials: v, MaxLifetime: mls.DefaultMaxLifetime}); err != nil {
		if errors.Is(err, identity.ErrNoCertificate) || errors.Is(err, identity.ErrUnverifiedUserID) {
			return KeyPackage{}, errf(http.StatusForbidden, "foreign_key_package", "a key package must carry the caller's device certificate")
		}
		return KeyPackage{}, errf(http.StatusBadRequest, "invalid_key_package", "%v", err)
	}
	cert, err := identity.LeafCertificate(&kp.LeafNode)
	if err != nil {
		return KeyPackage{}, errf(http.StatusForbidden, "foreign_key_package", "a key package must carry the caller's device certificate")
	}
	if sch, err := identity.SchemeOf(kp.CipherSuite); err != nil || sch != cert.Device.Scheme {
		return KeyPackage{}, errf(http.StatusBadRequest, "invalid_key_package", "the certificate's signature scheme is not the cipher suite's")
	}
	if string(cert.UserID()) != sess.UserID || cert.Device.ID.String() != sess.DeviceID || string(kp.LeafNode.SignatureKey) != string(sess.SignatureKey) {
		return KeyPackage{}, errf(http.StatusForbidden, "foreign_key_package", "a key package must carry the caller's own device certificate and signature key")
	}
	ref, err := kp.Ref(cs)
	if err != nil {
		return KeyPackage{}, errf(http.StatusBadRequest, "invalid_key_package", "%v", err)
	}
	return KeyPackage{Ref: ref, Data: data}, nil
}

func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request, sess Session) error {
	var q struct {
		KeyPackages [][]byte `json:"key_packages"`
		LastResort  []byte   `json:"last_resort"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	if len(q.KeyPackages) > s.o.MaxKeyPackages {
		return errf(http.StatusBadRequest, "bad_request", "more than %d key packages", s.o.MaxKeyPackages)
	}
	if len(q.KeyPackages) == 0 && q.LastResort == nil {
		return errf(http.StatusBadRequest, "bad_request", "no key packages")
	}
	now := s.o.Now()
	kps := make([]KeyPackage, 0, len(q.KeyPackages))
	seen := map[string]bool{}
	for _, d := range q.KeyPackages {
		kp, err := s.checkKeyPackage(d, sess, now)
		if err != nil {
			return err
		}
		if seen[string(kp.Ref)] {
			return errf(http.StatusConflict, "key_package_exists", "the same key package twice")
		}
		seen[string(kp.Ref)] = true
		kps = append(kps, kp)
	}
	var lr *KeyPackage
	if q.LastResort != nil {
		kp, err := s.checkKeyPackage(q.LastResort, sess, now)
		if err != nil {
			return err
		}
		if seen[string(kp.Ref)] {
			return errf(http.StatusConflict, "key_package_exists", "the last-resort key package is also a one-time one")
		}
		lr = &kp
	}
	err := s.st.AddKeyPackages(r.Context(), sess.UserID, sess.DeviceID, kps, lr, s.o.MaxKeyPackages, now)
	switch {
	case errors.Is(err, ErrExists):
		return errf(http.StatusConflict, "key_package_exists", "%v", err)
	case errors.Is(err, ErrLimit):
		return errf(http.StatusConflict, "key_package_limit", "%v", err)
	case err != nil:
		return err
	}
	n := len(kps)
	if lr != nil {
		n++
	}
	writeJSON(w, http.StatusOK, map[string]int{"stored": n})
	return nil
}

func (s *Server) handleCount(w http.ResponseWriter, r *http.Request, sess Session) error {
	n, lr, err := s.st.CountKeyPackages(r.Context(), sess.UserID, sess.DeviceID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"available": n, "last_resort": lr})
	return nil
}

type claimedJSON struct {
	DeviceID   string `json:"device_id"`
	KeyPackage []byte `json:"key_package"`
	LastResort bool   `json:"last_resort"`
}

func (s *Server) handleClaim(w http.ResponseWriter, r *http.Request, sess Session) error {
	var q struct {
		UserID string `json:"user_id"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	u, err := parseUserID("user_id", q.UserID)
	if err != nil {
		return err
	}
	if err := s.claimQuota(r, sess.UserID, string(u)); err != nil {
		return err
	}
	kps, err := s.st.ClaimKeyPackages(r.Context(), string(u))
	if errors.Is(err, ErrNotFound) {
		return errf(http.StatusNotFound, "no_key_package", "no key package for %s", u.Short())
	} else if err != nil {
		return err
	}
	out := make([]claimedJSON, len(kps))
	for i, k := range kps {
		out[i] = claimedJSON{DeviceID: k.DeviceID, KeyPackage: k.Data, LastResort: k.LastResort}
	}
	writeJSON(w, http.StatusOK, map[string]any{"key_packages": out})
	return nil
}
