package relay

import (
	"encoding/base64"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls/suite"
)

// TestLinkMailbox links a new device through the relay with the real
// identity.LinkOffer/LinkJoin exchange: the new device, without a token,
// reads the offer and posts its request; the existing device certifies it;
// the new device then logs in with its certificate. Around it, every
// refusal of the mailbox's bounds.
func TestLinkMailbox(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		now := time.Now()
		var mu sync.Mutex
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		_, base := newTestServer(t, st, Options{Now: clock, LinkRate: 0.001, LinkBurst: 14})
		alice, bob := newIdent(t, "alice"), newIdent(t, "bob")
		ca, cb := login(t, base, alice), login(t, base, bob)
		anon := &client{t: t, base: base}

		offer, err := identity.NewLinkOffer(nil)
		if err != nil {
			t.Fatal(err)
		}
		mb := offer.Code().Mailbox()
		lp := "/v1/link/" + mb
		anon.must(401, "PUT", lp, nil)
		anon.must(404, "GET", lp+"/messages?from=offer", nil) // not open yet
		r := ca.must(200, "PUT", lp, nil)
		if r.body["mailbox"] != mb || r.body["expires_at"] == nil {
			t.Fatal(r.raw)
		}
		ca.must(200, "PUT", lp, nil) // its owner may open it again
		if r := cb.do("PUT", lp, nil); r.status != 409 || r.code() != "mailbox_taken" {
			t.Fatalf("another user takes the mailbox: %d %s", r.status, r.raw)
		}
		ca.must(400, "PUT", "/v1/link/ab12", nil)
		ca.must(400, "PUT", "/v1/link/ABCDE", nil)
		ca.must(400, "PUT", "/v1/link/ABCU", nil)

		// The offer side is the owner's alone.
		hello := offer.Hello()
		if r := anon.do("POST", lp+"/messages", map[string]any{"from": "offer", "message": hello}); r.status != 401 {
			t.Fatalf("unauthenticated offer: %d %s", r.status, r.raw)
		}
		if r := cb.do("POST", lp+"/messages", map[string]any{"from": "offer", "message": hello}); r.status != 403 {
			t.Fatalf("offer by another user: %d %s", r.status, r.raw)
		}
		ca.must(200, "POST", lp+"/messages", map[string]any{"from": "offer", "message": hello})

		// The new device: no certificate, no token.
		cs := suite.MustNew(1)
		priv, _, _ := cs.GenerateSignatureKeyPair(nil)
		signer, _ := cs.NewSigner(priv)
		did, _ := identity.NewDeviceID(nil)
		dev, _ := identity.NewDevice(did, cs.ID(), signer.PublicKey())
		code, err := identity.ParseLinkCode(offer.Code().Text())
		if err != nil {
			t.Fatal(err)
		}
		join, err := identity.NewLinkJoin(code, dev, signer, "laptop", nil)
		if err != nil {
			t.Fatal(err)
		}
		r = anon.must(200, "GET", lp+"/messages?from=offer&after=0", nil)
		msgs := r.body["messages"].([]any)
		if len(msgs) != 1 || r.num("next") != 1 {
			t.Fatalf("offer side: %s", r.raw)
		}
		req, err := join.Respond(b64(t, msgs[0].(map[string]any)["message"]))
		if err != nil {
			t.Fatal(err)
		}
		// The owner waits for the request (long-poll), the new device posts it.
		got := make(chan resp, 1)
		go func() { got <- ca.do("GET", lp+"/messages?from=join&after=0&wait=30", nil) }()
		time.Sleep(50 * time.Millisecond)
		anon.must(200, "POST", lp+"/messages", map[string]any{"from": "join", "message": req})
		var lr *identity.LinkRequest
		select {
		case r := <-got:
			ms := r.body["messages"].([]any)
			if r.status != 200 || len(ms) != 1 {
				t.Fatalf("join side: %d %s", r.status, r.raw)
			}
			if lr, err = offer.ReadRequest(b64(t, ms[0].(map[string]any)["message"])); err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the owner's long-poll was not woken by the join")
		}
		if lr.Name != "laptop" || lr.Device.ID != did {
			t.Fatalf("request: %+v", lr)
		}
		// The join side is not for others to read.
		if r := anon.do("GET", lp+"/messages?from=join", nil); r.status != 401 {
			t.Fatalf("unauthenticated read of the join side: %d", r.status)
		}
		if r := cb.do("GET", lp+"/messages?from=join", nil); r.status != 403 {
			t.Fatalf("another user reads the join side: %d", r.status)
		}
		sealed, _, err := offer.Accept(alice.user, clock(), 0)
		if err != nil {
			t.Fatal(err)
		}
		ca.must(200, "POST", lp+"/messages", map[string]any{"from": "offer", "message": sealed})
		r = anon.must(200, "GET", lp+"/messages?from=offer&after=1", nil)
		cert, err := join.Finish(b64(t, r.body["messages"].([]any)[0].(map[string]any)["message"]))
		if err != nil {
			t.Fatal(err)
		}
		// The linked device logs in as alice.
		certBytes, _ := cert.Marshal()
		linked := &ident{name: "alice-laptop", user: alice.user, cs: cs, signer: signer, dev: did, cert: certBytes}
		if cl := login(t, base, linked); cl.id.uid() != alice.uid() {
			t.Fatal("linked device is another user")
		}

		// Bounds: size, type per side, count per side, rate per IP.
		for name, c := range map[string]struct {
			body   map[string]any
			status int
			code   string
		}{
			"oversized":             {map[string]any{"from": "join", "message": append([]byte{1, 2}, make([]byte, identity.MaxLinkMessageSize)...)}, 413, "link_message_too_large"},
			"a hello from the join": {map[string]any{"from": "join", "message": hello}, 400, "invalid_link_message"},
			"empty":                 {map[string]any{"from": "join", "message": []byte{}}, 400, "invalid_link_message"},
			"no side":               {map[string]any{"message": req}, 400, "bad_request"},
			"an unknown field":      {map[string]any{"from": "join", "message": req, "x": 1}, 400, "bad_request"},
		} {
			if r := anon.do("POST", lp+"/messages", c.body); r.status != c.status || r.code() != c.code {
				t.Errorf("%s: %d %s, want %d %s", name, r.status, r.raw, c.status, c.code)
			}
		}
		if r := anon.do("POST", "/v1/link/ZZZZ/messages", map[string]any{"from": "join", "message": req}); r.status != 404 || r.code() != "no_mailbox" {
			t.Fatalf("unopened mailbox: %d %s", r.status, r.raw)
		}
		// Flooding the join side: 4 messages in all, then refused; and
		// the IP's bucket (14 requests so far) runs out.
		var codes []string
		for range 7 {
			r := anon.do("POST", lp+"/messages", map[string]any{"from": "join", "message": req})
			codes = append(codes, fmt.Sprintf("%d %s", r.status, r.code()))
		}
		if got := fmt.Sprint(codes); got != "[200  200  200  409 mailbox_full 409 mailbox_full 409 mailbox_full 429 rate_limited]" {
			t.Fatalf("flood: %v", got)
		}
		// An authenticated owner is not limited by the join side's bucket.
		ca.must(200, "GET", lp+"/messages?from=join", nil)

		// Expired after 10 minutes: gone, and free for another device.
		mu.Lock()
		now = now.Add(11 * time.Minute)
		mu.Unlock()
		ca.must(404, "GET", lp+"/messages?from=join", nil)
		cb.must(200, "PUT", lp, nil)
		cb.must(204, "DELETE", lp, nil)
		cb.must(404, "DELETE", lp, nil)
	})
}

func b64(t *testing.T, v any) []byte {
	t.Helper()
	s, _ := v.(string)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
