package identity_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
)

// memRelay carries link messages between the two devices by mailbox, as
// the real relay will. It is untrusted: rewrite, when set, sees every
// message (kind "hello", "request" or "certificate") and returns what the
// relay delivers instead.
type memRelay struct {
	boxes   map[string][]byte
	rewrite func(mailbox, kind string, msg []byte) []byte
}

func (r *memRelay) post(mailbox, kind string, msg []byte) {
	if r.boxes == nil {
		r.boxes = map[string][]byte{}
	}
	if r.rewrite != nil {
		msg = r.rewrite(mailbox, kind, bytes.Clone(msg))
	}
	r.boxes[mailbox+"/"+kind] = msg
}

func (r *memRelay) fetch(mailbox, kind string) []byte { return r.boxes[mailbox+"/"+kind] }

// linkRun is the outcome of one link between Alice's existing device and
// her new one.
type linkRun struct {
	offer    *identity.LinkOffer
	join     *identity.LinkJoin
	request  []byte // the request as the new device sent it
	hello    []byte // the hello as the existing device sent it
	respErr  error  // the new device's Respond
	reqErr   error  // the existing device's ReadRequest
	finErr   error  // the new device's Finish
	cert     *identity.Certificate
	accepted *identity.LinkRequest
}

// link runs the exchange over relay. typed is the code the user enters on
// the new device (nil: the offer's).
func link(t *testing.T, alice *identity.PrivateIdentity, nd *testDevice, relay *memRelay, typed func(identity.LinkCode) identity.LinkCode) *linkRun {
	t.Helper()
	offer, err := identity.NewLinkOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	code := offer.Code()
	if typed != nil {
		code = typed(code)
	}
	mbox := offer.Code().Mailbox()
	relay.post(mbox, "hello", offer.Hello())

	join, err := identity.NewLinkJoin(code, nd.device, nd.signer, "Alice's phone", nil)
	if err != nil {
		t.Fatal(err)
	}
	run := &linkRun{offer: offer, join: join, hello: offer.Hello()}
	if run.request, run.respErr = join.Respond(relay.fetch(code.Mailbox(), "hello")); run.respErr != nil {
		return run
	}
	relay.post(mbox, "request", run.request)

	if run.accepted, run.reqErr = offer.ReadRequest(relay.fetch(mbox, "request")); run.reqErr != nil {
		return run
	}
	m3, _, err := offer.Accept(alice, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	relay.post(mbox, "certificate", m3)
	run.cert, run.finErr = join.Finish(relay.fetch(mbox, "certificate"))
	return run
}

// TestLinkEverySuite: the honest exchange certifies the new device, in
// every suite, and the certificate makes its leaves Alice's.
func TestLinkEverySuite(t *testing.T) {
	alice := newIdentity(t)
	for _, id := range suite.All() {
		nd := newTestDevice(t, id)
		run := link(t, alice, nd, &memRelay{}, nil)
		if run.reqErr != nil || run.finErr != nil {
			t.Fatalf("%v: %v %v", id, run.reqErr, run.finErr)
		}
		if run.accepted.Name != "Alice's phone" || run.accepted.Device.ID != nd.device.ID {
			t.Fatalf("%v: the existing device saw %+v", id, run.accepted)
		}
		if run.cert.UserID() != alice.UserID() || run.cert.Device.ID != nd.device.ID {
			t.Fatalf("%v: certificate for %s", id, run.cert.UserID())
		}
		v := &identity.Validator{Now: clock}
		m, err := v.Verify(leaf(string(run.cert.UserID()), nd, certExt(t, run.cert)))
		if err != nil || m.UserID != alice.UserID() {
			t.Fatalf("%v: the new device's leaf: %v", id, err)
		}
	}
}

// TestLinkRelayInTheMiddle: a relay that substitutes keys, shares or
// messages, replays old ones, or a user who mistypes the code: the side
// that would be fooled refuses with ErrLinkAuth.
func TestLinkRelayInTheMiddle(t *testing.T) {
	alice := newIdentity(t)
	nd := newTestDevice(t, 1)
	malDev := newTestDevice(t, 1)

	// Material from an earlier, honest session, for replays.
	earlier := link(t, alice, nd, &memRelay{}, nil)
	if earlier.reqErr != nil || earlier.finErr != nil {
		t.Fatal(earlier.reqErr, earlier.finErr)
	}
	var earlierCert []byte
	{
		r := &memRelay{}
		link(t, alice, nd, r, nil)
		for k, v := range r.boxes {
			if strings.HasSuffix(k, "/certificate") {
				earlierCert = v
			}
		}
	}

	flip := func(at func(msg []byte) int) func([]byte) []byte {
		return func(m []byte) []byte { m[at(m)] ^= 1; return m }
	}
	last := func(m []byte) int { return len(m) - 1 }
	// The relay answers the hello itself, with its own device key and a
	// guess of the code: the mailbox it knows, a random secret.
	guessedRequest := func(mailbox string, hello []byte) []byte {
		guess, _ := identity.NewLinkOffer(nil)
		code := mustCode(t, mailbox+guess.Code().Text()[4:])
		j, err := identity.NewLinkJoin(code, malDev.device, malDev.signer, "Alice's phone", nil)
		if err != nil {
			t.Fatal(err)
		}
		m, err := j.Respond(hello)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	var lastHello []byte
	var lastMailbox string

	cases := []struct {
		name     string
		rewrite  map[string]func([]byte) []byte
		typed    func(identity.LinkCode) identity.LinkCode
		wantResp error // at the new device, reading the hello
		wantReq  error // at the existing device
		wantFin  error // at the new device
	}{
		{name: "relay substitutes its own device key", rewrite: map[string]func([]byte) []byte{
			"hello":   func(m []byte) []byte { lastHello = m; return m },
			"request": func([]byte) []byte { return guessedRequest(lastMailbox, lastHello) },
		}, wantReq: identity.ErrLinkAuth},
		{name: "relay alters the sealed request", rewrite: map[string]func([]byte) []byte{"request": flip(last)}, wantReq: identity.ErrLinkAuth},
		{name: "relay substitutes the new device's share", rewrite: map[string]func([]byte) []byte{
			"request": func(m []byte) []byte { copy(m[3:35], earlier.request[3:35]); return m },
		}, wantReq: identity.ErrLinkAuth},
		{name: "relay sends the neutral element as share", rewrite: map[string]func([]byte) []byte{
			"request": func(m []byte) []byte { clear(m[3:35]); return m },
		}, wantReq: identity.ErrLinkAuth},
		{name: "relay alters the session id", rewrite: map[string]func([]byte) []byte{"hello": flip(func([]byte) int { return 3 })}, wantReq: identity.ErrLinkAuth},
		{name: "relay substitutes the existing device's share", rewrite: map[string]func([]byte) []byte{
			"hello": func(m []byte) []byte { copy(m[len(m)-32:], earlier.hello[len(m)-32:]); return m },
		}, wantReq: identity.ErrLinkAuth},
		{name: "relay sends the neutral element as the existing device's share", rewrite: map[string]func([]byte) []byte{
			"hello": func(m []byte) []byte { clear(m[len(m)-32:]); return m },
		}, wantResp: identity.ErrLinkAuth},
		{name: "relay replays an earlier request", rewrite: map[string]func([]byte) []byte{
			"request": func([]byte) []byte { return earlier.request },
		}, wantReq: identity.ErrLinkAuth},
		{name: "relay alters the sealed certificate", rewrite: map[string]func([]byte) []byte{"certificate": flip(last)}, wantFin: identity.ErrLinkAuth},
		{name: "relay replays an earlier certificate", rewrite: map[string]func([]byte) []byte{
			"certificate": func([]byte) []byte { return earlierCert },
		}, wantFin: identity.ErrLinkAuth},
		{name: "user mistypes the secret", typed: func(c identity.LinkCode) identity.LinkCode {
			return mustCode(t, c.Text()[:len(c.Text())-1]+otherChar(c.Text()[len(c.Text())-1]))
		}, wantReq: identity.ErrLinkAuth},
		{name: "user mistypes the mailbox, relay routes anyway", typed: func(c identity.LinkCode) identity.LinkCode {
			return mustCode(t, otherChar(c.Text()[0])+c.Text()[1:])
		}, wantReq: identity.ErrLinkAuth},
	}
	for _, tc := range cases {
		r := &memRelay{}
		if tc.rewrite != nil {
			r.rewrite = func(mailbox, kind string, m []byte) []byte {
				lastMailbox = mailbox
				if f := tc.rewrite[kind]; f != nil {
					return f(m)
				}
				return m
			}
		}
		if tc.typed != nil { // the relay delivers the hello wherever the new device looks
			r.rewrite = func(_, _ string, m []byte) []byte { return m }
		}
		run := linkRouted(t, alice, nd, r, tc.typed)
		if tc.wantResp != nil || run.respErr != nil {
			if !errors.Is(run.respErr, tc.wantResp) {
				t.Errorf("%s: new device's Respond: %v, want %v", tc.name, run.respErr, tc.wantResp)
			}
			continue
		}
		if !errors.Is(run.reqErr, tc.wantReq) || (tc.wantReq == nil && run.reqErr != nil) {
			t.Errorf("%s: existing device: %v, want %v", tc.name, run.reqErr, tc.wantReq)
			continue
		}
		if tc.wantReq != nil {
			// The offer spent its one guess: even the genuine request is
			// refused now.
			if _, err := run.offer.ReadRequest(run.request); !errors.Is(err, identity.ErrLinkClosed) {
				t.Errorf("%s: the genuine request after a failure: %v, want ErrLinkClosed", tc.name, err)
			}
			continue
		}
		if !errors.Is(run.finErr, tc.wantFin) {
			t.Errorf("%s: new device: %v, want %v", tc.name, run.finErr, tc.wantFin)
		}
	}
}

// linkRouted is link, with the hello delivered to the mailbox the new
// device's typed code names (a relay in the middle routes as it likes).
func linkRouted(t *testing.T, alice *identity.PrivateIdentity, nd *testDevice, r *memRelay, typed func(identity.LinkCode) identity.LinkCode) *linkRun {
	if typed == nil {
		return link(t, alice, nd, r, nil)
	}
	var code identity.LinkCode
	inner := r.rewrite
	r.rewrite = func(mailbox, kind string, m []byte) []byte {
		if kind == "hello" {
			r.boxes[code.Mailbox()+"/hello"] = m
		}
		return inner(mailbox, kind, m)
	}
	return link(t, alice, nd, r, func(c identity.LinkCode) identity.LinkCode { code = typed(c); return code })
}

func mustCode(t *testing.T, s string) identity.LinkCode {
	t.Helper()
	c, err := identity.ParseLinkCode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func otherChar(c byte) string {
	if c == '7' {
		return "8"
	}
	return "7"
}

// lyingSigner claims the device key but signs with another one.
type lyingSigner struct {
	claimed []byte
	real    *suite.Signer
}

func (l lyingSigner) PublicKey() []byte { return l.claimed }
func (l lyingSigner) SignWithLabel(label string, content []byte) ([]byte, error) {
	return l.real.SignWithLabel(label, content)
}

// TestLinkProofOfPossession: a request for a key whose owner did not sign
// the exchange is refused, even with the right code.
func TestLinkProofOfPossession(t *testing.T) {
	victim, liar := newTestDevice(t, 1), newTestDevice(t, 1)
	offer, err := identity.NewLinkOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	j, err := identity.NewLinkJoin(offer.Code(), victim.device, lyingSigner{victim.signer.PublicKey(), liar.signer}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	req, err := j.Respond(offer.Hello())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := offer.ReadRequest(req); !errors.Is(err, identity.ErrLinkAuth) {
		t.Fatalf("request with a foreign proof: %v, want ErrLinkAuth", err)
	}
	if _, err := identity.NewLinkJoin(offer.Code(), victim.device, liar.signer, "", nil); !errors.Is(err, identity.ErrKeyMismatch) {
		t.Fatalf("join with another key than the device's: %v", err)
	}
}

// TestLinkMalformed: messages that do not decode are refused with
// ErrLinkMessage and cost no guess: the honest exchange still completes.
func TestLinkMalformed(t *testing.T) {
	alice := newIdentity(t)
	nd := newTestDevice(t, 2)
	offer, _ := identity.NewLinkOffer(nil)
	join, _ := identity.NewLinkJoin(offer.Code(), nd.device, nd.signer, "phone", nil)
	hello := offer.Hello()
	bad := func(m []byte) map[string][]byte {
		return map[string][]byte{
			"empty":     nil,
			"truncated": m[:len(m)-1],
			"trailing":  append(bytes.Clone(m), 0),
			"version":   append([]byte{2}, m[1:]...),
			"type":      append([]byte{m[0], 9}, m[2:]...),
			"oversized": append(bytes.Clone(m), make([]byte, identity.MaxLinkMessageSize)...),
		}
	}
	for name, m := range bad(hello) {
		if _, err := join.Respond(m); !errors.Is(err, identity.ErrLinkMessage) {
			t.Errorf("hello %s: %v", name, err)
		}
	}
	if _, err := join.Finish(hello); !errors.Is(err, identity.ErrLinkClosed) {
		t.Errorf("Finish before Respond: %v", err)
	}
	if _, _, err := offer.Accept(alice, testNow, 0); !errors.Is(err, identity.ErrLinkClosed) {
		t.Errorf("Accept before a request: %v", err)
	}
	req, err := join.Respond(hello)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := join.Respond(hello); !errors.Is(err, identity.ErrLinkClosed) {
		t.Errorf("second Respond: %v", err)
	}
	for name, m := range bad(req) {
		if _, err := offer.ReadRequest(m); !errors.Is(err, identity.ErrLinkMessage) {
			t.Errorf("request %s: %v", name, err)
		}
	}
	if _, err := offer.ReadRequest(hello); !errors.Is(err, identity.ErrLinkMessage) {
		t.Errorf("a hello as request: %v", err)
	}
	if _, err := offer.ReadRequest(req); err != nil {
		t.Fatalf("the genuine request after malformed ones: %v", err)
	}
	if _, err := offer.ReadRequest(req); !errors.Is(err, identity.ErrLinkClosed) {
		t.Errorf("second ReadRequest: %v", err)
	}
	m3, _, err := offer.Accept(alice, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := offer.Accept(alice, testNow, 0); !errors.Is(err, identity.ErrLinkClosed) {
		t.Errorf("second Accept: %v", err)
	}
	for name, m := range bad(m3) {
		if _, err := join.Finish(m); !errors.Is(err, identity.ErrLinkMessage) {
			t.Errorf("certificate %s: %v", name, err)
		}
	}
	cert, err := join.Finish(m3)
	if err != nil || cert.UserID() != alice.UserID() {
		t.Fatalf("the genuine certificate after malformed ones: %v", err)
	}
	if _, err := join.Finish(m3); !errors.Is(err, identity.ErrLinkClosed) {
		t.Errorf("second Finish: %v", err)
	}
}

func TestLinkCode(t *testing.T) {
	offer, _ := identity.NewLinkOffer(nil)
	c := offer.Code()
	text := c.Text()
	if len(text) != 14 || strings.Count(text, "-") != 2 || c.Mailbox() != text[:4] {
		t.Fatalf("code %q", text)
	}
	variants := []string{text, strings.ToLower(text), strings.ReplaceAll(text, "-", ""), strings.ReplaceAll(text, "-", " "),
		strings.NewReplacer("1", "L", "0", "O").Replace(text), strings.ReplaceAll(text, "1", "i")}
	for _, s := range variants {
		got, err := identity.ParseLinkCode(s)
		if err != nil || got.Text() != text {
			t.Errorf("%q: %v %v", s, got.Text(), err)
		}
	}
	for _, s := range []string{"", text[:13], text + "0", strings.Replace(text, text[5:6], "U", 1), "ABCD-EFGH-JK!M"} {
		if _, err := identity.ParseLinkCode(s); !errors.Is(err, identity.ErrLinkCode) {
			t.Errorf("%q: %v", s, err)
		}
	}
	// The secret part is not printed by accident.
	for _, out := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s %d", c, c, c, c, c), c.String()} {
		if strings.Contains(out, text[5:]) || !strings.Contains(out, c.Mailbox()) {
			t.Errorf("formatted code %q", out)
		}
	}
}

// TestLinkedDeviceInEngine: the new device's certificate works in a group
// like any other.
func TestLinkedDeviceInEngine(t *testing.T) {
	alice := newIdentity(t)
	nd := newTestDevice(t, 1)
	run := link(t, alice, nd, &memRelay{}, nil)
	if run.reqErr != nil || run.finErr != nil {
		t.Fatal(run.reqErr, run.finErr)
	}
	u := &user{id: alice, dev: nd, cert: run.cert}
	u.keyPackage(t, string(run.cert.UserID()), nd, certExt(t, run.cert))
	if err := mls.ValidateKeyPackage(nd.suite, u.kp, testNow, mls.ValidateOptions{Credentials: &identity.Validator{Now: clock}}); err != nil {
		t.Fatal(err)
	}
}
