package identity

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/spacepanda/spacepanda/identity/internal/cpace"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Device linking: an existing device E (holding the identity key) shows a
// LinkCode; the new device N, whose user types it, sends E its device key;
// E certifies it. The relay carries the three messages and is not trusted:
//
//	E → N  hello:       sid, Ya                      (LinkOffer.Hello)
//	N → E  request:     Yb, AEAD_kreq(device, proof) (LinkJoin.Respond)
//	E → N  certificate: AEAD_kcert(certificate)      (LinkOffer.Accept)
//
// Ya and Yb are the CPace shares (ristretto255, SHA-512, initiator E)
// keyed by the code's secret, with CI naming the protocol, both roles and
// the mailbox, and sid 16 random bytes of E's. Both sides derive from the
// CPace ISK, with HKDF-SHA-512, one AES-256-GCM key per direction (each
// seals one message, so the nonce is zero); the AEAD's success is the key
// confirmation (draft-irtf-cfrg-cpace §10.4). Only a party that knows the
// code can open or produce a sealed message, so a relay that substitutes a
// share, a key or a message is found out, at the cost of one guess of the
// 40-bit secret per offer; it learns nothing to guess with offline.
//
// N proves it holds its device key by signing the transcript with it
// (SignWithLabel "SpacePanda v1 device link"), so E certifies only a key
// whose owner took part in this exchange.
//
// An offer or a join is single use: once a sealed message fails to open,
// or the exchange completes, it is closed. A malformed message (that does
// not decode) costs no guess and leaves it open. Neither is safe for
// concurrent use: one goroutine drives one link.

// Link message types.
const (
	linkVersion     = 1
	linkHello       = 1
	linkRequest     = 2
	linkCertificate = 3
	linkSIDSize     = 16
	// MaxLinkMessageSize bounds every link message.
	MaxLinkMessageSize = 2048
	// MaxDeviceNameLen bounds the device name shown to the user (bytes).
	MaxDeviceNameLen = 64
	linkProofLabel   = "SpacePanda v1 device link"
	linkKeyRequest   = "SpacePanda v1 device link request key"
	linkKeyCert      = "SpacePanda v1 device link certificate key"
)

// LinkSigner is the new device's MLS signature key; *suite.Signer is one.
type LinkSigner interface {
	PublicKey() []byte
	SignWithLabel(label string, content []byte) ([]byte, error)
}

// LinkRequest is what the new device asks the existing one to certify.
type LinkRequest struct {
	Device Device
	// Name is what the new device calls itself (UTF-8, at most
	// MaxDeviceNameLen bytes), to show the user before certifying: it is
	// authenticated by the code, not by anyone's key.
	Name string
}

// linkSession is the state both sides share after the hello.
type linkSession struct {
	code   LinkCode
	cp     *cpace.Session
	hello  []byte // the hello message as sent/received
	sid    []byte
	closed bool
}

// ci is the CPace channel identifier: the protocol, both roles and the
// mailbox (draft-irtf-cfrg-cpace §10.1.1: party identities in CI).
func (c LinkCode) ci() []byte {
	b := wire.NewBuilder(96)
	b.AddOpaque([]byte("SpacePanda v1 device link"))
	b.AddOpaque([]byte("initiator: existing device"))
	b.AddOpaque([]byte("responder: new device"))
	b.AddOpaque([]byte(c.Mailbox()))
	out, _ := b.Bytes()
	return out
}

// transcriptHash binds the proof and the AEADs to this exchange's public
// messages: SHA-256(lv(hello) || lv(Yb)).
func transcriptHash(hello, yb []byte) []byte {
	b := wire.NewBuilder(len(hello) + len(yb) + 8)
	b.AddOpaque(hello)
	b.AddOpaque(yb)
	enc, _ := b.Bytes()
	h := sha256.Sum256(enc)
	return h[:]
}

// sessionKeys finishes the CPace run with the peer's share and derives the
// two AEADs from its ISK; a share that CPace refuses is ErrLinkAuth.
func sessionKeys(cp *cpace.Session, peerShare []byte) (req, cert cipher.AEAD, err error) {
	isk, err := cp.ISK(peerShare, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrLinkAuth, err)
	}
	defer clear(isk)
	mk := func(info string) (cipher.AEAD, error) {
		k, err := hkdf.Key(sha512.New, isk, nil, info, 32)
		if err != nil {
			return nil, err
		}
		defer clear(k)
		blk, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(blk)
	}
	if req, err = mk(linkKeyRequest); err != nil {
		return nil, nil, err
	}
	cert, err = mk(linkKeyCert)
	return req, cert, err
}

// --- the existing device ---

// LinkOffer is the existing device's side of one link.
type LinkOffer struct {
	linkSession
	yb      []byte
	certKey cipher.AEAD
	req     *LinkRequest
}

// NewLinkOffer starts a link on the existing device: show the code to the
// user, post Hello to the code's mailbox (rnd nil: crypto/rand).
func NewLinkOffer(rnd io.Reader) (*LinkOffer, error) {
	rnd = randReader(rnd)
	code, err := newLinkCode(rnd)
	if err != nil {
		return nil, err
	}
	o := &LinkOffer{linkSession: linkSession{code: code, sid: make([]byte, linkSIDSize)}}
	if _, err := io.ReadFull(rnd, o.sid); err != nil {
		return nil, fmt.Errorf("identity: link session id: %w", err)
	}
	if o.cp, err = cpace.New(cpace.Initiator, rnd, code.secret(), code.ci(), o.sid, nil); err != nil {
		return nil, err
	}
	o.hello, err = linkMessage(linkHello, func(b *wire.Builder) {
		b.AddOpaque(o.sid)
		b.AddOpaque(o.cp.Share())
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// Code is the code to show the user.
func (o *LinkOffer) Code() LinkCode { return o.code }

// Hello is the first message, for the new device.
func (o *LinkOffer) Hello() []byte { return bytes.Clone(o.hello) }

// ReadRequest opens the new device's request and checks its proof of
// possession. Show the returned request (its name) to the user and, if
// they agree, Accept it. Any failure but ErrLinkMessage closes the offer.
func (o *LinkOffer) ReadRequest(msg []byte) (*LinkRequest, error) {
	if o.closed || o.req != nil {
		return nil, ErrLinkClosed
	}
	var yb, sealed []byte
	if err := readLinkMessage(msg, linkRequest, func(r *wire.Reader) {
		yb = r.OpaqueCopy()
		sealed = r.OpaqueCopy()
		if r.Err() == nil && len(yb) != cpace.ShareSize {
			r.Fail("share of %d bytes", len(yb))
		}
	}); err != nil {
		return nil, err
	}
	o.closed = true // from here on, this offer's one guess is spent
	reqKey, certKey, err := sessionKeys(o.cp, yb)
	if err != nil {
		return nil, err
	}
	th := transcriptHash(o.hello, yb)
	plain, err := reqKey.Open(nil, make([]byte, reqKey.NonceSize()), sealed, append([]byte{linkRequest}, th...))
	if err != nil {
		return nil, fmt.Errorf("%w: the request does not open (wrong code or altered)", ErrLinkAuth)
	}
	req, err := parseLinkRequest(plain, th)
	if err != nil {
		return nil, err
	}
	o.yb, o.certKey, o.req, o.closed = yb, certKey, req, false
	return req, nil
}

// Accept certifies the request's device with the identity p, valid from
// an hour before now for lifetime (0: DefaultCertificateLifetime), and
// returns the sealed certificate message for the new device and the
// certificate itself. The offer is then closed.
func (o *LinkOffer) Accept(p *PrivateIdentity, now time.Time, lifetime time.Duration) ([]byte, *Certificate, error) {
	if o.closed || o.req == nil {
		return nil, nil, ErrLinkClosed
	}
	o.closed = true
	cert, err := p.Certify(o.req.Device, now, lifetime)
	if err != nil {
		return nil, nil, err
	}
	enc, err := cert.Marshal()
	if err != nil {
		return nil, nil, err
	}
	th := transcriptHash(o.hello, o.yb)
	sealed := o.certKey.Seal(nil, make([]byte, o.certKey.NonceSize()), enc, append([]byte{linkCertificate}, th...))
	msg, err := linkMessage(linkCertificate, func(b *wire.Builder) { b.AddOpaque(sealed) })
	if err != nil {
		return nil, nil, err
	}
	return msg, cert, nil
}

// --- the new device ---

// LinkJoin is the new device's side of one link.
type LinkJoin struct {
	linkSession
	dev     Device
	name    string
	signer  LinkSigner
	rnd     io.Reader
	yb      []byte
	certKey cipher.AEAD
}

// NewLinkJoin starts a link on the new device from the code its user typed:
// dev is this device (its signature key must be signer's), name what it
// calls itself for the user of the existing device (rnd nil: crypto/rand).
func NewLinkJoin(code LinkCode, dev Device, signer LinkSigner, name string, rnd io.Reader) (*LinkJoin, error) {
	if err := dev.check(); err != nil {
		return nil, err
	}
	if !bytes.Equal(signer.PublicKey(), dev.SignatureKey) {
		return nil, fmt.Errorf("%w: the signer is not the device's key", ErrKeyMismatch)
	}
	if len(name) > MaxDeviceNameLen || !utf8.ValidString(name) {
		return nil, fmt.Errorf("%w: device name of %d bytes (at most %d, UTF-8)", ErrLinkMessage, len(name), MaxDeviceNameLen)
	}
	d := Device{ID: dev.ID, Scheme: dev.Scheme, SignatureKey: bytes.Clone(dev.SignatureKey)}
	return &LinkJoin{linkSession: linkSession{code: code}, dev: d, name: name, signer: signer, rnd: randReader(rnd)}, nil
}

// Respond reads the existing device's hello and returns the request to
// send back.
func (j *LinkJoin) Respond(hello []byte) ([]byte, error) {
	if j.closed || j.cp != nil {
		return nil, ErrLinkClosed
	}
	var sid, ya []byte
	if err := readLinkMessage(hello, linkHello, func(r *wire.Reader) {
		sid = r.OpaqueCopy()
		ya = r.OpaqueCopy()
		if r.Err() == nil && (len(sid) != linkSIDSize || len(ya) != cpace.ShareSize) {
			r.Fail("session id of %d bytes, share of %d", len(sid), len(ya))
		}
	}); err != nil {
		return nil, err
	}
	j.closed = true
	cp, err := cpace.New(cpace.Responder, j.rnd, j.code.secret(), j.code.ci(), sid, nil)
	if err != nil {
		return nil, err
	}
	yb := cp.Share()
	reqKey, certKey, err := sessionKeys(cp, ya)
	if err != nil {
		return nil, err
	}
	j.hello, j.sid, j.cp = bytes.Clone(hello), sid, cp
	th := transcriptHash(j.hello, yb)
	plain, err := j.requestContent(th)
	if err != nil {
		return nil, err
	}
	sealed := reqKey.Seal(nil, make([]byte, reqKey.NonceSize()), plain, append([]byte{linkRequest}, th...))
	msg, err := linkMessage(linkRequest, func(b *wire.Builder) {
		b.AddOpaque(yb)
		b.AddOpaque(sealed)
	})
	if err != nil {
		return nil, err
	}
	j.yb, j.certKey, j.closed = yb, certKey, false
	return msg, nil
}

// Finish opens the existing device's answer and returns this device's
// certificate, checked: signed by the identity key it names, for exactly
// this device. Its UserID is now this device's user id.
func (j *LinkJoin) Finish(msg []byte) (*Certificate, error) {
	if j.closed || j.certKey == nil {
		return nil, ErrLinkClosed
	}
	var sealed []byte
	if err := readLinkMessage(msg, linkCertificate, func(r *wire.Reader) { sealed = r.OpaqueCopy() }); err != nil {
		return nil, err
	}
	j.closed = true
	th := transcriptHash(j.hello, j.yb)
	plain, err := j.certKey.Open(nil, make([]byte, j.certKey.NonceSize()), sealed, append([]byte{linkCertificate}, th...))
	if err != nil {
		return nil, fmt.Errorf("%w: the certificate does not open (wrong code or altered)", ErrLinkAuth)
	}
	cert, err := ParseCertificate(plain)
	if err != nil {
		return nil, err
	}
	if cert.Device.ID != j.dev.ID || cert.Device.Scheme != j.dev.Scheme || !bytes.Equal(cert.Device.SignatureKey, j.dev.SignatureKey) {
		return nil, fmt.Errorf("%w: the certificate is not for this device", ErrKeyMismatch)
	}
	if err := cert.VerifySignature(); err != nil {
		return nil, err
	}
	return cert, nil
}

// requestContent is the request plaintext with the proof of possession:
//
//	struct {
//	    opaque device_id<V>;        // 16 bytes
//	    uint16 signature_scheme;
//	    opaque signature_key<V>;
//	    opaque name<V>;             // UTF-8, at most 64 bytes
//	    opaque proof<V>;            // SignWithLabel(device key,
//	                                //   "SpacePanda v1 device link",
//	                                //   LinkProofTBS)
//	} LinkRequestContent;
//
//	struct {
//	    opaque transcript_hash<V>;  // SHA-256(lv(hello) || lv(Yb))
//	    opaque device_id<V>;
//	    uint16 signature_scheme;
//	    opaque signature_key<V>;
//	    opaque name<V>;
//	} LinkProofTBS;
func (j *LinkJoin) requestContent(th []byte) ([]byte, error) {
	tbs, err := proofTBS(th, j.dev, j.name)
	if err != nil {
		return nil, err
	}
	proof, err := j.signer.SignWithLabel(linkProofLabel, tbs)
	if err != nil {
		return nil, fmt.Errorf("identity: device link proof: %w", err)
	}
	b := wire.NewBuilder(512)
	addDevice(b, j.dev)
	b.AddOpaque([]byte(j.name))
	b.AddOpaque(proof)
	return b.Bytes()
}

func addDevice(b *wire.Builder, d Device) {
	b.AddOpaque(d.ID[:])
	b.AddUint16(uint16(d.Scheme))
	b.AddOpaque(d.SignatureKey)
}

func proofTBS(th []byte, d Device, name string) ([]byte, error) {
	b := wire.NewBuilder(256)
	b.AddOpaque(th)
	addDevice(b, d)
	b.AddOpaque([]byte(name))
	return b.Bytes()
}

// parseLinkRequest decodes the request plaintext strictly and verifies its
// proof of possession.
func parseLinkRequest(plain, th []byte) (*LinkRequest, error) {
	r := wire.NewReader(plain)
	did := r.Opaque()
	var req LinkRequest
	req.Device.Scheme = SignatureScheme(r.Uint16())
	req.Device.SignatureKey = r.OpaqueCopy()
	name := r.Opaque()
	proof := r.Opaque()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("%w: request: %w", ErrLinkMessage, err)
	}
	if len(did) != len(req.Device.ID) || len(name) > MaxDeviceNameLen || !utf8.Valid(name) {
		return nil, fmt.Errorf("%w: request: device id or name", ErrLinkMessage)
	}
	copy(req.Device.ID[:], did)
	req.Name = string(name)
	if err := req.Device.check(); err != nil {
		return nil, fmt.Errorf("%w: request: %w", ErrLinkMessage, err)
	}
	s, err := req.Device.Scheme.verifySuite()
	if err != nil {
		return nil, err
	}
	tbs, err := proofTBS(th, req.Device, req.Name)
	if err != nil {
		return nil, err
	}
	if err := s.VerifyWithLabel(req.Device.SignatureKey, linkProofLabel, tbs, proof); err != nil {
		return nil, fmt.Errorf("%w: the new device's proof of possession: %w", ErrLinkAuth, err)
	}
	return &req, nil
}

// linkMessage encodes a link message:
//
//	struct {
//	    uint8 version = 1;
//	    uint8 type;          // hello(1), request(2), certificate(3)
//	    select (type) {
//	        case hello:       opaque sid<V>; opaque share<V>;     // 16, 32 bytes
//	        case request:     opaque share<V>; opaque sealed<V>;  // 32 bytes, AEAD
//	        case certificate: opaque sealed<V>;                   // AEAD
//	    };
//	} LinkMessage;
//
// at most MaxLinkMessageSize bytes. The AEADs' associated data is the type
// octet and the transcript hash.
func linkMessage(typ uint8, body func(b *wire.Builder)) ([]byte, error) {
	b := wire.NewBuilder(256)
	b.AddUint8(linkVersion)
	b.AddUint8(typ)
	body(b)
	return b.Bytes()
}

// readLinkMessage decodes a link message of type typ strictly, its body
// with body.
func readLinkMessage(msg []byte, typ uint8, body func(r *wire.Reader)) error {
	if len(msg) > MaxLinkMessageSize {
		return fmt.Errorf("%w: %d bytes (at most %d)", ErrLinkMessage, len(msg), MaxLinkMessageSize)
	}
	r := wire.NewReader(msg)
	v, t := r.Uint8(), r.Uint8()
	if r.Err() == nil && (v != linkVersion || t != typ) {
		return fmt.Errorf("%w: version %d type %d, want version %d type %d", ErrLinkMessage, v, t, linkVersion, typ)
	}
	body(r)
	if err := r.Finish(); err != nil {
		return fmt.Errorf("%w: %w", ErrLinkMessage, err)
	}
	return nil
}
