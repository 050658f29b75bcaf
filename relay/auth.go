package relay

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/relay/api"
)

// Login proves a device: the device presents its certificate, the relay
// checks it (identity.Validator.VerifyCertificate: the identity key's
// signature, the lifetime, the user id being the identity key's hash) and
// that the device is not revoked, and issues a challenge; the device signs
// api.LoginContent with the certified MLS signature key. A user id is
// nobody's to take: only a holder of the identity key can certify a device
// for it.

// verifyDevice parses and verifies a certificate presented at login and
// checks the device is not revoked.
func (s *Server) verifyDevice(ctx context.Context, data []byte) (*identity.Certificate, error) {
	if len(data) == 0 || len(data) > identity.MaxCertificateSize {
		return nil, errf(http.StatusBadRequest, "invalid_certificate", "certificate missing or over %d bytes", identity.MaxCertificateSize)
	}
	cert, err := identity.ParseCertificate(data)
	if err != nil {
		return nil, errf(http.StatusBadRequest, "invalid_certificate", "%v", err)
	}
	v := &identity.Validator{Now: s.o.Now}
	if _, err := v.VerifyCertificate(string(cert.UserID()), cert.Device.SignatureKey, data); err != nil {
		return nil, errf(http.StatusUnauthorized, "bad_certificate", "%v", err)
	}
	revoked, err := s.st.Revoked(ctx, string(cert.UserID()), cert.Device.ID.String())
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, errf(http.StatusForbidden, "device_revoked", "device %s of %s is revoked", cert.Device.ID, cert.UserID().Short())
	}
	return cert, nil
}

func (s *Server) handleChallenge(w http.ResponseWriter, r *http.Request) error {
	var q struct {
		Certificate []byte `json:"certificate"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	if _, err := s.verifyDevice(r.Context(), q.Certificate); err != nil {
		return err
	}
	c := Challenge{Challenge: make([]byte, 32), Certificate: q.Certificate, Expires: s.o.Now().Add(s.o.ChallengeTTL)}
	rand.Read(c.Challenge)
	if err := s.st.PutChallenge(r.Context(), c); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"challenge": c.Challenge, "expires_at": c.Expires.UTC().Format(time.RFC3339Nano)})
	return nil
}

// relayURLs are the base URLs a login signature may cover: Options.URLs,
// else the address the connection actually reached (loopback names for a
// loopback address). Never the Host header: a forwarding proxy chooses
// it, and would otherwise relay a login signed for its own URL.
func (s *Server) relayURLs(r *http.Request) []string {
	if len(s.o.URLs) > 0 {
		return s.o.URLs
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return nil
	}
	host, port, err := net.SplitHostPort(la.String())
	if err != nil {
		return nil
	}
	hosts := []string{host}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		hosts = append(hosts, "localhost")
	}
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = scheme + "://" + net.JoinHostPort(h, port)
	}
	return out
}

// signatureSuite is a cipher suite whose signature algorithm is the
// device key's scheme, to verify the login signature with.
func signatureSuite(sch identity.SignatureScheme) (*suite.Suite, error) {
	for _, id := range []suite.ID{
		suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, suite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
		suite.MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448, suite.MLS_256_DHKEMP521_AES256GCM_SHA512_P521,
		suite.MLS_256_DHKEMP384_AES256GCM_SHA384_P384,
	} {
		if got, err := identity.SchemeOf(id); err == nil && got == sch {
			return suite.New(id)
		}
	}
	return nil, errf(http.StatusBadRequest, "invalid_certificate", "unsupported signature scheme %v", sch)
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	var q struct {
		Certificate []byte `json:"certificate"`
		Challenge   []byte `json:"challenge"`
		Signature   []byte `json:"signature"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	if len(q.Challenge) == 0 || len(q.Challenge) > 64 || len(q.Signature) == 0 || len(q.Signature) > 1024 {
		return errf(http.StatusBadRequest, "bad_request", "certificate, challenge and signature are required")
	}
	now := s.o.Now()
	c, err := s.st.TakeChallenge(r.Context(), q.Challenge, now)
	if errors.Is(err, ErrNotFound) {
		return errf(http.StatusUnauthorized, "bad_challenge", "unknown, used or expired challenge")
	} else if err != nil {
		return err
	}
	if string(c.Certificate) != string(q.Certificate) {
		return errf(http.StatusUnauthorized, "bad_challenge", "the challenge was issued for another certificate")
	}
	cert, err := s.verifyDevice(r.Context(), q.Certificate)
	if err != nil {
		return err
	}
	cs, err := signatureSuite(cert.Device.Scheme)
	if err != nil {
		return err
	}
	uid, did := cert.UserID(), cert.Device.ID
	ok := false
	for _, u := range s.relayURLs(r) {
		if cs.VerifyWithLabel(cert.Device.SignatureKey, api.LoginLabel, api.LoginContent(u, uid, did, q.Challenge), q.Signature) == nil {
			ok = true
			break
		}
	}
	if !ok {
		return errf(http.StatusUnauthorized, "bad_signature", "the signature does not verify with the certified device key")
	}
	if err := s.identityQuota(r, string(uid)); err != nil {
		return err
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	tok := base64.RawURLEncoding.EncodeToString(raw)
	hash := sha256.Sum256([]byte(tok))
	// A token never outlives the certificate it was issued for (give or
	// take the clock skew the certificate check allows).
	exp := now.Add(s.o.TokenTTL)
	if end := time.Unix(int64(min(cert.NotAfter, 1<<40)), 0).Add(identity.DefaultClockSkew); end.Before(exp) {
		exp = end
	}
	sess := Session{UserID: string(uid), DeviceID: did.String(), SignatureKey: cert.Device.SignatureKey, Expires: exp}
	dev := Device{UserID: sess.UserID, DeviceID: sess.DeviceID, IdentityKey: cert.IdentityKey.Bytes(), Certificate: q.Certificate,
		SignatureKey: cert.Device.SignatureKey, NotBefore: cert.NotBefore}
	if err := s.st.Login(r.Context(), dev, hash[:], sess, s.o.MaxDevices, now); err != nil {
		if errors.Is(err, ErrLimit) {
			return errf(http.StatusConflict, "device_limit", "%v", err)
		}
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "expires_at": exp.UTC().Format(time.RFC3339Nano),
		"user_id": sess.UserID, "device_id": sess.DeviceID})
	return nil
}
