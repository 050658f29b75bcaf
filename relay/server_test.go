package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/internal/apitest"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
)

func TestAuth(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	_, base := newTestServer(t, openSQLiteT(t), Options{Now: clock})
	alice := newIdent(t, "alice")
	anon := &client{t: t, base: base}

	// Bad challenge requests.
	anon.must(400, "POST", "/v1/auth/challenge", `{"certificate":`)
	for name, body := range map[string]any{
		"no certificate":      map[string]any{},
		"garbage certificate": map[string]any{"certificate": []byte{1, 2, 3}},
		"oversized":           map[string]any{"certificate": make([]byte, 600)},
		"old request shape":   map[string]any{"user_id": alice.uid(), "signature_key": alice.pub(), "ciphersuite": 1},
		"trailing data":       []byte(`{"certificate":"AAAA"} {}`),
	} {
		if r := anon.do("POST", "/v1/auth/challenge", body); r.status != 400 {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}

	challenge := func(id *ident) []byte {
		r := anon.must(200, "POST", "/v1/auth/challenge", map[string]any{"certificate": id.cert})
		ch, _ := base64.StdEncoding.DecodeString(r.body["challenge"].(string))
		if len(ch) != 32 {
			t.Fatalf("challenge of %d bytes", len(ch))
		}
		return ch
	}
	loginWith := func(id *ident, cert, ch []byte, url string) resp {
		return anon.do("POST", "/v1/auth/login", map[string]any{"certificate": cert, "challenge": ch, "signature": id.loginSignature(t, url, ch)})
	}

	// Signed for another relay URL: refused, and the challenge is spent.
	ch := challenge(alice)
	if r := loginWith(alice, alice.cert, ch, "http://elsewhere.example"); r.status != 401 || r.code() != "bad_signature" {
		t.Fatalf("wrong relay url: %d %s", r.status, r.raw)
	}
	if r := loginWith(alice, alice.cert, ch, base); r.status != 401 || r.code() != "bad_challenge" {
		t.Fatalf("reused challenge: %d %s", r.status, r.raw)
	}
	// A challenge issued to another device's certificate.
	mallory := newIdent(t, "mallory")
	ch = challenge(mallory)
	if r := loginWith(alice, alice.cert, ch, base); r.status != 401 || r.code() != "bad_challenge" {
		t.Fatalf("another's challenge: %d %s", r.status, r.raw)
	}
	// Alice's certificate, signed by a key that is not the certified one.
	ch = challenge(alice)
	if r := loginWith(mallory, alice.cert, ch, base); r.status != 401 || r.code() != "bad_signature" {
		t.Fatalf("signature by another key: %d %s", r.status, r.raw)
	}
	if r := loginWith(alice, alice.cert, []byte("0123456789abcdef0123456789abcdef"), base); r.status != 401 || r.code() != "bad_challenge" {
		t.Fatalf("unknown challenge: %d", r.status)
	}
	ch = challenge(alice)
	advance(61 * time.Second)
	if r := loginWith(alice, alice.cert, ch, base); r.status != 401 || r.code() != "bad_challenge" {
		t.Fatalf("expired challenge: %d", r.status)
	}
	// A certificate whose signature does not verify, and an expired one.
	forged := bytes.Clone(alice.cert)
	forged[len(forged)-1] ^= 1
	if r := anon.do("POST", "/v1/auth/challenge", map[string]any{"certificate": forged}); r.status != 401 || r.code() != "bad_certificate" {
		t.Fatalf("forged certificate: %d %s", r.status, r.raw)
	}
	old := newDevice(t, "old", alice.user, now.Add(-48*time.Hour), 24*time.Hour)
	if r := anon.do("POST", "/v1/auth/challenge", map[string]any{"certificate": old.cert}); r.status != 401 || r.code() != "bad_certificate" {
		t.Fatalf("expired certificate: %d %s", r.status, r.raw)
	}

	// The login: the token names the user and the device.
	r := loginWith(alice, alice.cert, challenge(alice), base+"/")
	if r.status != 200 || r.body["user_id"] != alice.uid() || r.body["device_id"] != alice.device() {
		t.Fatalf("login: %d %s", r.status, r.raw)
	}
	tok := r.body["token"].(string)
	c := &client{t: t, base: base, token: tok}
	c.must(200, "GET", "/v1/key-packages/count", nil)
	if r := (&client{t: t, base: base}).do("GET", "/v1/key-packages/count", nil); r.status != 401 || r.code() != "unauthorized" {
		t.Fatalf("no token: %d", r.status)
	}
	if r := (&client{t: t, base: base, token: "nonsense"}).do("GET", "/v1/key-packages/count", nil); r.status != 401 {
		t.Fatalf("bad token: %d", r.status)
	}
	advance(25 * time.Hour)
	if r := c.do("GET", "/v1/key-packages/count", nil); r.status != 401 {
		t.Fatalf("expired token: %d", r.status)
	}
	if r := anon.do("GET", "/v1/nothing", nil); r.status != 404 || r.code() != "not_found" {
		t.Fatalf("unknown endpoint: %d %s", r.status, r.raw)
	}
}

// TestTokenOutlivesNoCertificate: a token expires with the certificate it
// was issued for, not 24 h later.
func TestTokenOutlivesNoCertificate(t *testing.T) {
	_, base := newTestServer(t, openSQLiteT(t), Options{})
	u := newIdent(t, "u")
	// Certify backdates by an hour: valid until about an hour from now.
	short := newDevice(t, "short", u.user, time.Now().Add(-59*time.Minute), 2*time.Hour)
	c := &client{t: t, base: base}
	res := c.must(200, "POST", "/v1/auth/challenge", map[string]any{"certificate": short.cert})
	ch, _ := base64.StdEncoding.DecodeString(res.body["challenge"].(string))
	res = c.must(200, "POST", "/v1/auth/login", map[string]any{"certificate": short.cert, "challenge": ch, "signature": short.loginSignature(t, base, ch)})
	exp, err := time.Parse(time.RFC3339Nano, res.body["expires_at"].(string))
	if err != nil || exp.After(time.Now().Add(2*time.Hour)) {
		t.Fatalf("token expires %v, the certificate about an hour from now", exp)
	}
}

// TestNameSquat: nobody owns a user id by logging in first. Mallory cannot
// log in as Alice's user id, with any certificate she can make, and her
// attempts change nothing for Alice.
func TestNameSquat(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		_, base := newTestServer(t, st, Options{})
		alice := newIdent(t, "alice")
		mallory := newIdent(t, "mallory")
		anon := &client{t: t, base: base}
		for name, c := range map[string]struct {
			cert   []byte
			status int
			code   string
		}{
			// A certificate naming alice's identity key (so alice's user
			// id) for mallory's device: only mallory's key signed it.
			"alice's identity key, signed by mallory": {squatCertificate(t, alice, mallory), 401, "bad_certificate"},
			// Alice's own certificate (public: it is in her leaves and the
			// directory), with a login signed by mallory's device key.
			"alice's certificate, mallory's device key": {alice.cert, 401, "bad_signature"},
		} {
			r := anon.do("POST", "/v1/auth/challenge", map[string]any{"certificate": c.cert})
			if r.status == 200 {
				ch, _ := base64.StdEncoding.DecodeString(r.body["challenge"].(string))
				r = anon.do("POST", "/v1/auth/login", map[string]any{"certificate": c.cert, "challenge": ch, "signature": mallory.loginSignature(t, base, ch)})
			}
			if r.status != c.status || r.code() != c.code {
				t.Errorf("%s: %d %s, want %d %s", name, r.status, r.raw, c.status, c.code)
			}
		}
		// Mallory logs in as herself: her user id is hers, not alice's.
		cm := login(t, base, mallory)
		if cm.id.uid() == alice.uid() {
			t.Fatal("two identities, one user id")
		}
		// Alice's real device logs in and publishes, after all of this.
		ca := login(t, base, alice)
		ca.must(200, "POST", "/v1/key-packages", map[string]any{"key_packages": [][]byte{alice.keyPackage(t, false)}})
		// Mallory cannot publish key packages in alice's name.
		for name, kp := range map[string][]byte{
			"credential alice, mallory's certificate": mallory.keyPackageWith(t, alice.uid(), mallory.cert, false),
			"credential alice, no certificate":        mallory.keyPackageWith(t, alice.uid(), nil, false),
			"credential alice, alice's certificate":   mallory.keyPackageWith(t, alice.uid(), alice.cert, false),
		} {
			if r := cm.do("POST", "/v1/key-packages", map[string]any{"key_packages": [][]byte{kp}}); r.status != 403 && r.status != 400 {
				t.Errorf("%s: %d %s", name, r.status, r.raw)
			}
		}
		r := cm.must(200, "POST", "/v1/key-packages/claim", map[string]any{"user_id": alice.uid()})
		if kps := r.body["key_packages"].([]any); len(kps) != 1 || kps[0].(map[string]any)["device_id"] != alice.device() {
			t.Fatalf("alice's directory: %s", r.raw)
		}
	})
}

// squatCertificate is a certificate naming victim's identity key and
// attacker's device, signed by attacker's identity key (the only one it
// has).
func squatCertificate(t testing.TB, victim, attacker *ident) []byte {
	t.Helper()
	c, err := identity.ParseCertificate(attacker.cert)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := identity.ParseCertificate(victim.cert)
	c.IdentityKey = v.IdentityKey
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeyPackageDirectory(t *testing.T) {
	_, base := newTestServer(t, openSQLiteT(t), Options{MaxKeyPackages: 5})
	alice, bob := newIdent(t, "alice"), newIdent(t, "bob")
	alice2 := alice.another(t, "alice-2")
	ca, cb, ca2 := login(t, base, alice), login(t, base, bob), login(t, base, alice2)

	kp1, kp2 := alice.keyPackage(t, false), alice.keyPackage(t, false)
	lr := alice.keyPackage(t, true)
	r := ca.must(200, "POST", "/v1/key-packages", map[string]any{"key_packages": [][]byte{kp1, kp2}, "last_resort": lr})
	if r.num("stored") != 3 {
		t.Fatal(r.raw)
	}
	r = ca.must(200, "GET", "/v1/key-packages/count", nil)
	if r.num("available") != 2 || r.body["last_resort"] != true {
		t.Fatal(r.raw)
	}
	if r := ca2.must(200, "GET", "/v1/key-packages/count", nil); r.num("available") != 0 || r.body["last_resort"] != false {
		t.Fatalf("counts are per device: %s", r.raw)
	}

	// Refused publishes.
	for name, c := range map[string]struct {
		kp     []byte
		status int
		code   string
	}{
		"another user's identity":      {alice.keyPackageWith(t, bob.uid(), alice.cert, false), 400, "invalid_key_package"},
		"another user's certificate":   {alice.keyPackageWith(t, bob.uid(), bob.cert, false), 400, "invalid_key_package"},
		"no certificate":               {alice.keyPackageWith(t, alice.uid(), nil, false), 403, "foreign_key_package"},
		"a plain name, no certificate": {alice.keyPackageWith(t, "alice", nil, false), 403, "foreign_key_package"},
		"another device of the user":   {alice2.keyPackage(t, false), 403, "foreign_key_package"},
		"not a key package":            {privMsg(t, []byte("g"), 0, mls.ContentTypeApplication), 400, "invalid_key_package"},
		"garbage":                      {[]byte{0, 1, 0, 5, 1}, 400, "invalid_key_package"},
		"oversized":                    {make([]byte, 70<<10), 413, "key_package_too_large"},
		"already published":            {kp1, 409, "key_package_exists"},
		"bad signature": {func() []byte {
			b := alice.keyPackage(t, false)
			b[len(b)-1] ^= 1
			return b
		}(), 400, "invalid_key_package"},
	} {
		r := ca.do("POST", "/v1/key-packages", map[string]any{"key_packages": [][]byte{c.kp}})
		if r.status != c.status || r.code() != c.code {
			t.Errorf("%s: %d %s, want %d %s", name, r.status, r.raw, c.status, c.code)
		}
	}
	ca.must(400, "POST", "/v1/key-packages", map[string]any{})
	// Quota (5 per device): 2 stored, 4 more is too many.
	var four [][]byte
	for range 4 {
		four = append(four, alice.keyPackage(t, false))
	}
	if r := ca.do("POST", "/v1/key-packages", map[string]any{"key_packages": four}); r.status != 409 || r.code() != "key_package_limit" {
		t.Fatalf("quota: %d %s", r.status, r.raw)
	}
	a2kp := alice2.keyPackage(t, false)
	ca2.must(200, "POST", "/v1/key-packages", map[string]any{"key_packages": [][]byte{a2kp}})

	// Claims: one per device, each one-time package once, oldest first,
	// then that device's last resort; a device with nothing left is
	// skipped.
	claim := func() map[string][]byte {
		r := cb.must(200, "POST", "/v1/key-packages/claim", map[string]any{"user_id": alice.uid()})
		out := map[string][]byte{}
		for _, k := range r.body["key_packages"].([]any) {
			k := k.(map[string]any)
			d, _ := base64.StdEncoding.DecodeString(k["key_package"].(string))
			if k["last_resort"] == true {
				d = append([]byte("LR:"), d...)
			}
			out[k["device_id"].(string)] = d
		}
		return out
	}
	for i, want := range []map[string][]byte{
		{alice.device(): kp1, alice2.device(): a2kp},
		{alice.device(): kp2},
		{alice.device(): append([]byte("LR:"), lr...)},
	} {
		got := claim()
		if len(got) != len(want) {
			t.Fatalf("claim %d: %d key packages, want %d", i, len(got), len(want))
		}
		for d, kp := range want {
			if !bytes.Equal(got[d], kp) {
				t.Fatalf("claim %d: device %s got another key package", i, d)
			}
		}
	}
	if r := cb.do("POST", "/v1/key-packages/claim", map[string]any{"user_id": newIdent(t, "carol").uid()}); r.status != 404 || r.code() != "no_key_package" {
		t.Fatalf("nobody's: %d %s", r.status, r.raw)
	}
	cb.must(400, "POST", "/v1/key-packages/claim", map[string]any{})
	cb.must(400, "POST", "/v1/key-packages/claim", map[string]any{"user_id": "alice"})
	// A new last resort replaces the old one.
	lr2 := alice.keyPackage(t, true)
	ca.must(200, "POST", "/v1/key-packages", map[string]any{"last_resort": lr2})
	if got := claim(); !bytes.Equal(got[alice.device()], append([]byte("LR:"), lr2...)) {
		t.Fatal("old last resort handed out")
	}

	// The directory lists both devices with their certificates.
	r = cb.must(200, "GET", "/v1/users/"+alice.uid()+"/devices", nil)
	devs := r.body["devices"].([]any)
	if len(devs) != 2 || len(r.body["revocations"].([]any)) != 0 || r.body["user_id"] != alice.uid() {
		t.Fatalf("devices: %s", r.raw)
	}
	for _, d := range devs {
		d := d.(map[string]any)
		cert, _ := base64.StdEncoding.DecodeString(d["certificate"].(string))
		want := alice.cert
		if d["device_id"] == alice2.device() {
			want = alice2.cert
		}
		if !bytes.Equal(cert, want) {
			t.Fatalf("device %v listed with another certificate", d["device_id"])
		}
	}
	cb.must(400, "GET", "/v1/users/alice/devices", nil)
	if r := cb.must(200, "GET", "/v1/users/"+newIdent(t, "nobody").uid()+"/devices", nil); len(r.body["devices"].([]any)) != 0 {
		t.Fatal(r.raw)
	}
}

// TestRevocation: a revoked device's tokens, key packages and logins are
// refused; the directory lists the revocation for others to learn; only
// the identity key's signature revokes.
func TestRevocation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		_, base := newTestServer(t, st, Options{})
		alice, bob := newIdent(t, "alice"), newIdent(t, "bob")
		stolen := alice.another(t, "alice-stolen")
		ca, cb, cs := login(t, base, alice), login(t, base, bob), login(t, base, stolen)
		ca.must(200, "POST", "/v1/key-packages", map[string]any{"key_packages": [][]byte{alice.keyPackage(t, false)}})
		cs.must(200, "POST", "/v1/key-packages", map[string]any{"key_packages": [][]byte{stolen.keyPackage(t, false)}, "last_resort": stolen.keyPackage(t, true)})
		// An open event stream of the device ends with its revocation.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+cs.token)
		stream, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Body.Close()

		rev := stolen.revocation(t)
		for name, c := range map[string]struct {
			c      *client
			body   map[string]any
			status int
		}{
			"by another user":  {cb, map[string]any{"revocation": rev}, 403},
			"forged signature": {ca, map[string]any{"revocation": append(bytes.Clone(rev[:len(rev)-1]), rev[len(rev)-1]^1)}, 400},
			"garbage":          {ca, map[string]any{"revocation": []byte{1, 2, 3}}, 400},
			"missing":          {ca, map[string]any{}, 400},
		} {
			if r := c.c.do("POST", "/v1/devices/revocations", c.body); r.status != c.status {
				t.Errorf("%s: %d %s", name, r.status, r.raw)
			}
		}
		cs.must(200, "GET", "/v1/key-packages/count", nil) // still fine
		// Bob's identity key revokes a device id of his own, not alice's
		// device that has the same id.
		r, _ := bob.user.Revoke(stolen.dev, time.Now())
		bobs, _ := r.Marshal()
		cb.must(200, "POST", "/v1/devices/revocations", map[string]any{"revocation": bobs})
		cs.must(200, "GET", "/v1/key-packages/count", nil)
		res := ca.must(200, "POST", "/v1/devices/revocations", map[string]any{"revocation": rev})
		if res.body["device_id"] != stolen.device() {
			t.Fatal(res.raw)
		}
		ca.must(200, "POST", "/v1/devices/revocations", map[string]any{"revocation": rev}) // again: no change

		if r := cs.do("GET", "/v1/key-packages/count", nil); r.status != 401 {
			t.Fatalf("revoked device's token: %d %s", r.status, r.raw)
		}
		if r := (&client{t: t, base: base}).do("POST", "/v1/auth/challenge", map[string]any{"certificate": stolen.cert}); r.status != 403 || r.code() != "device_revoked" {
			t.Fatalf("revoked device's challenge: %d %s", r.status, r.raw)
		}
		// Re-certified under a new key, the device id stays revoked.
		again := newDevice(t, "again", alice.user, time.Now(), 0)
		again.dev = stolen.dev
		again.cert = recertify(t, alice, stolen.dev, again)
		if r := (&client{t: t, base: base}).do("POST", "/v1/auth/challenge", map[string]any{"certificate": again.cert}); r.status != 403 {
			t.Fatalf("re-certified revoked device: %d %s", r.status, r.raw)
		}
		res = cb.must(200, "POST", "/v1/key-packages/claim", map[string]any{"user_id": alice.uid()})
		if kps := res.body["key_packages"].([]any); len(kps) != 1 || kps[0].(map[string]any)["device_id"] != alice.device() {
			t.Fatalf("claim after revocation: %s", res.raw)
		}
		res = cb.must(200, "GET", "/v1/users/"+alice.uid()+"/devices", nil)
		if devs, revs := res.body["devices"].([]any), res.body["revocations"].([]any); len(devs) != 1 || len(revs) != 1 || revs[0] != base64.StdEncoding.EncodeToString(rev) {
			t.Fatalf("directory after revocation: %s", res.raw)
		}
		// What bob's node does with it: a verified revocation.
		got, _ := base64.StdEncoding.DecodeString(res.body["revocations"].([]any)[0].(string))
		rs := identity.NewRevocationSet()
		parsed, err := identity.ParseRevocation(got)
		if err != nil || rs.Add(parsed) != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { bufio.NewReader(stream.Body).WriteTo(new(bytes.Buffer)); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the revoked device's event stream stays open")
		}
	})
}

// recertify certifies device id with dev's signature key under owner's
// identity.
func recertify(t *testing.T, owner *ident, id identity.DeviceID, dev *ident) []byte {
	t.Helper()
	d, err := identity.NewDevice(id, dev.cs.ID(), dev.pub())
	if err != nil {
		t.Fatal(err)
	}
	c, err := owner.user.Certify(d, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Marshal()
	return b
}

func sortedUIDs(ids ...*ident) string {
	var s []string
	for _, id := range ids {
		s = append(s, id.uid())
	}
	sort.Strings(s)
	return fmt.Sprint(s)
}

// TestGroups walks the group endpoints on both backends.
func TestGroups(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		_, base := newTestServer(t, st, Options{})
		alice, bob, carol := newIdent(t, "alice"), newIdent(t, "bob"), newIdent(t, "carol")
		ca, cb, cc := login(t, base, alice), login(t, base, bob), login(t, base, carol)
		gid := []byte{0xfb, 0xff, 0x01, '/', '+'} // base64 with '+' and '/' in the standard alphabet
		gp := "/v1/groups/" + gidPath(gid)

		mg := newMGroup(t, alice, gid)
		ca.must(200, "POST", "/v1/groups", map[string]any{"group_info": mg.groupInfo(alice)})
		if r := ca.createGroup(mg, alice); r.status != 409 || r.code() != "group_exists" {
			t.Fatalf("exists: %d", r.status)
		}
		ca.must(400, "POST", "/v1/groups", map[string]any{"group_info": ""})
		ca.must(400, "POST", "/v1/groups", map[string]any{"group_id": gid})
		if r := ca.createGroup(newMGroup(t, alice, make([]byte, 256)), alice); r.status != 400 {
			t.Fatalf("a 256-byte group id: %d %s", r.status, r.raw)
		}
		ca.must(404, "GET", "/v1/groups/"+gidPath([]byte("unknown")), nil)
		ca.must(400, "GET", "/v1/groups/!!!", nil)
		// The standard alphabet, '/' percent-encoded, names the same group.
		std := strings.ReplaceAll(base64.StdEncoding.EncodeToString(gid), "/", "%2F")
		ca.must(200, "GET", "/v1/groups/"+std, nil)
		if r := cb.do("GET", gp, nil); r.status != 403 {
			t.Fatalf("non-member reads the group: %d", r.status)
		}

		post := func(c *client, kind string, ct mls.ContentType, epoch uint64) resp {
			return c.do("POST", gp+"/messages", map[string]any{"message": privMsg(t, gid, epoch, ct), "kind": kind, "epoch": epoch})
		}
		if r := post(ca, "application", mls.ContentTypeApplication, 0); r.status != 200 || r.num("seq") != 1 || r.body["kind"] != "application" || r.num("epoch") != 0 {
			t.Fatalf("post: %d %s", r.status, r.raw)
		}
		// kind and epoch come from the framing when left out.
		prop := mg.propose(alice, &mls.Proposal{ProposalType: tree.ProposalTypeGroupContextExtensions,
			GroupContextExtensions: &mls.GroupContextExtensions{Extensions: tree.Extensions{}}})
		if r := ca.must(200, "POST", gp+"/messages", map[string]any{"message": prop}); r.body["kind"] != "proposal" || r.num("seq") != 2 {
			t.Fatalf("framing: %s", r.raw)
		}
		// Framing mismatches.
		for name, body := range map[string]map[string]any{
			"kind vs content type":      {"message": privMsg(t, gid, 0, mls.ContentTypeApplication), "kind": "commit", "epoch": 0},
			"epoch vs framing":          {"message": privMsg(t, gid, 1, mls.ContentTypeApplication), "kind": "application", "epoch": 0},
			"another group":             {"message": privMsg(t, []byte("other"), 0, mls.ContentTypeApplication), "kind": "application", "epoch": 0},
			"unknown kind":              {"message": privMsg(t, gid, 0, mls.ContentTypeApplication), "kind": "chat", "epoch": 0},
			"not a message":             {"message": welcomeMsg(t), "kind": "application", "epoch": 0},
			"garbage":                   {"message": []byte{1, 2, 3}, "kind": "application", "epoch": 0},
			"unknown field":             {"message": privMsg(t, gid, 0, mls.ContentTypeApplication), "note": "x"},
			"added (gone)":              {"message": privMsg(t, gid, 0, mls.ContentTypeCommit), "added": []string{bob.uid()}},
			"private commit":            {"message": privMsg(t, gid, 0, mls.ContentTypeCommit)},
			"private proposal":          {"message": privMsg(t, gid, 0, mls.ContentTypeProposal)},
			"group_info on application": {"message": privMsg(t, gid, 0, mls.ContentTypeApplication), "group_info": mg.groupInfo(alice)},
		} {
			if r := ca.do("POST", gp+"/messages", body); r.status != 400 {
				t.Errorf("%s: %d %s", name, r.status, r.raw)
			}
		}
		if r := post(cb, "application", mls.ContentTypeApplication, 0); r.status != 403 {
			t.Fatalf("non-member posts: %d", r.status)
		}
		cb.must(403, "GET", gp+"/messages", nil)

		// Commit ordering: alice adds bob (and commits her proposal by
		// reference); a second commit for epoch 0 loses.
		add := mg.commit(alice, mls.CommitOptions{}, bob)
		loser := mg.commit(alice, mls.CommitOptions{})
		if r := ca.postCommit(gid, add); r.status != 200 || r.num("seq") != 3 {
			t.Fatalf("commit: %d %s", r.status, r.raw)
		}
		add.merge()
		r := ca.postCommit(gid, loser)
		if r.status != 409 || r.code() != "commit_conflict" || r.num("current_epoch") != 1 {
			t.Fatalf("losing commit: %d %s", r.status, r.raw)
		}
		rm := mg.propose(bob, &mls.Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &mls.Remove{Removed: mg.leaf(bob, alice)}})
		cb.must(200, "POST", gp+"/messages", map[string]any{"message": rm}) // 4
		addCarol := mg.commit(bob, mls.CommitOptions{}, carol)
		if r := cb.postCommit(gid, addCarol); r.status != 200 { // 5
			t.Fatalf("bob's commit: %d %s", r.status, r.raw)
		}
		addCarol.merge()
		r = cb.must(200, "GET", gp, nil)
		if fmt.Sprint(r.body["members"]) != sortedUIDs(bob, carol) || r.num("epoch") != 2 || r.num("last_seq") != 5 {
			t.Fatalf("group: %s", r.raw)
		}
		if r.body["tree_hash"] == nil {
			t.Fatalf("no tree hash: %s", r.raw)
		}

		// Reading windows.
		r = cb.must(200, "GET", gp+"/messages?after=0", nil)
		ms := r.body["messages"].([]any)
		if len(ms) != 3 || r.num("next") != 5 {
			t.Fatalf("bob reads: %s", r.raw)
		}
		m0 := ms[0].(map[string]any)
		if m0["kind"] != "commit" || m0["sender"] != alice.uid() || m0["sender_device"] != alice.device() || m0["seq"].(float64) != 3 || m0["epoch"].(float64) != 0 || m0["received_at"] == "" {
			t.Fatalf("entry: %v", m0)
		}
		r = cb.must(200, "GET", gp+"/messages?after=3&limit=1", nil)
		if len(r.body["messages"].([]any)) != 1 || r.num("next") != 4 {
			t.Fatalf("limit: %s", r.raw)
		}
		if r := cc.must(200, "GET", gp+"/messages", nil); len(r.body["messages"].([]any)) != 1 {
			t.Fatalf("carol reads from her commit: %s", r.raw)
		}
		// Alice is removed: she sees up to the removing commit, then no more.
		if r := ca.must(200, "GET", gp+"/messages?after=4", nil); len(r.body["messages"].([]any)) != 1 {
			t.Fatalf("alice reads her removal: %s", r.raw)
		}
		ca.must(403, "GET", gp+"/messages?after=5", nil)
		// Also with a wait, when the first read may be skipped (the hub
		// saw every entry up to 5 published): refused, not left waiting.
		ca.must(403, "GET", gp+"/messages?after=5&wait=5", nil)
		if r := post(ca, "application", mls.ContentTypeApplication, 2); r.status != 403 {
			t.Fatalf("removed member posts: %d", r.status)
		}
		ca.must(403, "GET", gp, nil)
		cb.must(400, "GET", gp+"/messages?after=-1", nil)
		cb.must(400, "GET", gp+"/messages?wait=x", nil)
		cb.must(400, "GET", gp+"/messages?max_bytes=0", nil)

		// Cursors, per device: bob's second device has its own.
		if r := cb.must(200, "GET", gp+"/cursor", nil); r.num("after") != 0 {
			t.Fatal(r.raw)
		}
		cb.must(200, "PUT", gp+"/cursor", map[string]any{"after": 3})
		if r := cb.must(200, "GET", gp+"/cursor", nil); r.num("after") != 3 {
			t.Fatal(r.raw)
		}
		cb2 := login(t, base, bob.another(t, "bob-2"))
		if r := cb2.must(200, "GET", gp+"/cursor", nil); r.num("after") != 0 {
			t.Fatalf("bob's second device shares the first's cursor: %s", r.raw)
		}
		cb2.must(200, "GET", gp+"/messages", nil) // and reads the log
		cb.must(400, "PUT", gp+"/cursor", map[string]any{})
		cb.must(400, "PUT", gp+"/cursor", map[string]any{"after": -2})
		login(t, base, newIdent(t, "dave")).must(403, "GET", gp+"/cursor", nil)

		// GroupInfo: the accepted commit's, then one a member puts, if it
		// describes the relay's state exactly.
		r = cc.must(200, "GET", gp+"/group-info", nil)
		if r.num("epoch") != 2 {
			t.Fatalf("the commit's group info: %s", r.raw)
		}
		gi := mg.groupInfo(carol)
		cb.must(200, "PUT", gp+"/group-info", map[string]any{"group_info": gi, "epoch": 2})
		r = cc.must(200, "GET", gp+"/group-info", nil)
		if d, _ := base64.StdEncoding.DecodeString(r.body["group_info"].(string)); !bytes.Equal(d, gi) || r.num("epoch") != 2 {
			t.Fatalf("group info: %s", r.raw)
		}
		cb.must(400, "PUT", gp+"/group-info", map[string]any{"group_info": gi, "epoch": 1})
		cb.must(400, "PUT", gp+"/group-info", map[string]any{"group_info": groupInfoMsg(t, []byte("x"), 2), "epoch": 2})
		cb.must(400, "PUT", gp+"/group-info", map[string]any{"group_info": welcomeMsg(t), "epoch": 2})
		if r := cb.do("PUT", gp+"/group-info", map[string]any{"group_info": groupInfoMsg(t, gid, 2), "epoch": 2}); r.status != 400 || r.code() != "invalid_group_info" {
			t.Fatalf("a forged group info: %d %s", r.status, r.raw)
		}
		if r := cb.do("PUT", gp+"/group-info", map[string]any{"group_info": add.groupInfo, "epoch": 1}); r.status != 409 || r.code() != "stale_group_info" {
			t.Fatalf("stale group info: %d %s", r.status, r.raw)
		}
		cb.must(409, "PUT", gp+"/group-info", map[string]any{"group_info": groupInfoMsg(t, gid, 7), "epoch": 7})
		ca.must(403, "GET", gp+"/group-info", nil)
		ca.must(403, "PUT", gp+"/group-info", map[string]any{"group_info": gi, "epoch": 2})

		// Welcomes: from a member, to members added by an accepted commit.
		w := welcomeMsg(t)
		r = cb.must(200, "POST", "/v1/welcomes", map[string]any{"recipients": []string{carol.uid()}, "welcome": w, "group_id": gid})
		ids := r.body["ids"].([]any)
		if len(ids) != 1 {
			t.Fatal(r.raw)
		}
		for name, c := range map[string]struct {
			c      *client
			body   map[string]any
			status int
			code   string
		}{
			"from a removed member":       {ca, map[string]any{"recipients": []string{carol.uid()}, "welcome": w, "group_id": gid}, 403, "forbidden"},
			"to a removed member":         {cb, map[string]any{"recipients": []string{alice.uid()}, "welcome": w, "group_id": gid}, 403, "recipient_not_member"},
			"to someone never added":      {cb, map[string]any{"recipients": []string{newIdent(t, "eve").uid()}, "welcome": w, "group_id": gid}, 403, "recipient_not_member"},
			"no recipients":               {cb, map[string]any{"recipients": []string{}, "welcome": w, "group_id": gid}, 400, "bad_request"},
			"not a Welcome":               {cb, map[string]any{"recipients": []string{carol.uid()}, "welcome": gi, "group_id": gid}, 400, "invalid_welcome"},
			"unknown group":               {cb, map[string]any{"recipients": []string{carol.uid()}, "welcome": w, "group_id": []byte("nope")}, 404, "not_found"},
			"a plaintext invite":          {cb, map[string]any{"recipients": []string{carol.uid()}, "welcome": w, "group_id": gid, "invite": []byte("channel name")}, 400, "bad_request"},
			"oversized Welcome":           {cb, map[string]any{"recipients": []string{carol.uid()}, "welcome": make([]byte, 1<<20+1), "group_id": gid}, 413, "welcome_too_large"},
			"oversized ratchet tree":      {cb, map[string]any{"recipients": []string{carol.uid()}, "welcome": w, "ratchet_tree": make([]byte, 3<<20+1), "group_id": gid}, 413, "welcome_too_large"},
			"a recipient listed twice":    {cb, map[string]any{"recipients": []string{carol.uid(), carol.uid()}, "welcome": w, "group_id": gid}, 400, "bad_request"},
			"from a stranger to a member": {login(t, base, newIdent(t, "frank")), map[string]any{"recipients": []string{carol.uid()}, "welcome": w, "group_id": gid}, 403, "forbidden"},
		} {
			if r := c.c.do("POST", "/v1/welcomes", c.body); r.status != c.status || r.code() != c.code {
				t.Errorf("%s: %d %s, want %d %s", name, r.status, r.raw, c.status, c.code)
			}
		}
		r = cc.must(200, "GET", "/v1/welcomes", nil)
		wl := r.body["welcomes"].([]any)
		if len(wl) != 1 {
			t.Fatal(r.raw)
		}
		w0 := wl[0].(map[string]any)
		if w0["from"] != bob.uid() || w0["from_device"] != bob.device() || w0["group_id"] != base64.StdEncoding.EncodeToString(gid) || w0["ratchet_tree"] != nil {
			t.Fatalf("welcome: %v", w0)
		}
		if _, ok := w0["invite"]; ok {
			t.Fatalf("welcome with an invite field: %v", w0)
		}
		id := int64(w0["id"].(float64))
		cb.must(404, "DELETE", fmt.Sprintf("/v1/welcomes/%d", id), nil)
		cc.must(400, "DELETE", "/v1/welcomes/abc", nil)
		cc.must(204, "DELETE", fmt.Sprintf("/v1/welcomes/%d", id), nil)
		if r := cc.must(200, "GET", "/v1/welcomes", nil); len(r.body["welcomes"].([]any)) != 0 {
			t.Fatal(r.raw)
		}
	})
}

// TestLookAlikeWelcome: a member who knows a group id cannot queue a
// Welcome for a look-alike group to a future invitee before the real
// commit adds them; once it does, the invitee is a member at the relay and
// the committer's Welcome goes through.
func TestLookAlikeWelcome(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		_, base := newTestServer(t, st, Options{})
		alice, mallory, bob := newIdent(t, "alice"), newIdent(t, "mallory"), newIdent(t, "bob")
		ca, cm, cb := login(t, base, alice), login(t, base, mallory), login(t, base, bob)
		gid := []byte("real group")
		mg := setupGroup(t, ca, gid, alice, mallory)
		// Mallory, a member, prepares a Welcome for bob to her look-alike
		// group under the real id.
		fake := mlsBytes(t, &mls.Welcome{CipherSuite: 1, Secrets: []mls.EncryptedGroupSecrets{}, EncryptedGroupInfo: []byte("look-alike")})
		if r := cm.do("POST", "/v1/welcomes", map[string]any{"recipients": []string{bob.uid()}, "welcome": fake, "group_id": gid}); r.status != 403 || r.code() != "recipient_not_member" {
			t.Fatalf("look-alike Welcome ahead of the real one: %d %s", r.status, r.raw)
		}
		if r := cb.must(200, "GET", "/v1/welcomes", nil); len(r.body["welcomes"].([]any)) != 0 {
			t.Fatalf("bob has a Welcome before he was added: %s", r.raw)
		}
		mg.addAt(ca, alice, bob)
		real := welcomeMsg(t)
		ca.must(200, "POST", "/v1/welcomes", map[string]any{"recipients": []string{bob.uid()}, "welcome": real, "group_id": gid})
		r := cb.must(200, "GET", "/v1/welcomes", nil)
		if ws := r.body["welcomes"].([]any); len(ws) != 1 || ws[0].(map[string]any)["from"] != alice.uid() {
			t.Fatalf("bob's Welcomes: %s", r.raw)
		}
	})
}

// TestBounds: per-kind message size limits (413 message_too_large), the
// future-epoch refusal, and pages capped in bytes so that a reader of big
// entries always progresses.
func TestBounds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		_, base := newTestServer(t, st, Options{Rate: 1e6, Burst: 1e6})
		alice, bob := newIdent(t, "alice"), newIdent(t, "bob")
		ca, cb := login(t, base, alice), login(t, base, bob)
		gid := []byte("big")
		gp := "/v1/groups/" + gidPath(gid)
		setupGroup(t, ca, gid, alice, bob)

		sized := func(ct mls.ContentType, epoch uint64, n int) []byte {
			m := sizedPrivMsg(t, gid, epoch, ct, n)
			if len(m) != n {
				t.Fatalf("message of %d bytes, want %d", len(m), n)
			}
			return m
		}
		for name, c := range map[string]struct {
			msg    []byte
			status int
			code   string
		}{
			"application at 1 MiB":      {sized(mls.ContentTypeApplication, 1, 1<<20), 200, ""},
			"application over 1 MiB":    {sized(mls.ContentTypeApplication, 1, 1<<20+1), 413, "message_too_large"},
			"proposal over 1 MiB":       {sized(mls.ContentTypeProposal, 1, 1<<20+1), 413, "message_too_large"},
			"commit over 4 MiB":         {sized(mls.ContentTypeCommit, 1, 4<<20+1), 413, "message_too_large"},
			"application, future epoch": {sized(mls.ContentTypeApplication, 2, 100), 409, "future_epoch"},
			"proposal, epoch 2^40":      {sized(mls.ContentTypeProposal, 1<<40, 100), 400, "private_handshake"},
			"application, epoch 2^40":   {sized(mls.ContentTypeApplication, 1<<40, 100), 409, "future_epoch"},
		} {
			if r := ca.do("POST", gp+"/messages", map[string]any{"message": c.msg}); r.status != c.status || r.code() != c.code {
				t.Errorf("%s: %d %.200s, want %d %s", name, r.status, r.raw, c.status, c.code)
			}
		}
		// Pages capped in bytes (here by max_bytes; the process test does
		// it at the size limits): a reader of entries larger than the cap
		// gets them one by one, and always reaches the end.
		ca.must(200, "POST", gp+"/messages", map[string]any{"message": sized(mls.ContentTypeApplication, 1, 5000)})
		for range 11 {
			ca.must(200, "POST", gp+"/messages", map[string]any{"message": sized(mls.ContentTypeApplication, 1, 1000)})
		}
		var pages []int
		var after int64 = 1 // after the add
		for len(pages) < 20 {
			r := cb.must(200, "GET", fmt.Sprintf("%s/messages?after=%d&limit=1000&max_bytes=4000", gp, after), nil)
			ms := r.body["messages"].([]any)
			if len(ms) == 0 {
				break
			}
			pages = append(pages, len(ms))
			after = r.num("next")
		}
		// [the 1 MiB message] [the 5000-byte one, alone] [4 4 3 of 1000 bytes]
		if after != 14 || fmt.Sprint(pages) != "[1 1 4 4 3]" {
			t.Fatalf("pages %v, reached seq %d", pages, after)
		}
		// A smaller max_bytes: one big entry still comes (alone).
		r := cb.must(200, "GET", gp+"/messages?after=2&max_bytes=1000", nil)
		if len(r.body["messages"].([]any)) != 1 || r.num("next") != 3 {
			t.Fatalf("a page smaller than its first entry: %.200s", r.raw)
		}
	})
}

// sizedPrivMsg is a PrivateMessage whose MLSMessage encoding is n bytes
// (the varint lengths skip some sizes: a byte of authenticated data fills
// the gap).
func sizedPrivMsg(t testing.TB, gid []byte, epoch uint64, ct mls.ContentType, n int) []byte {
	t.Helper()
	base := len(privMsg(t, gid, epoch, ct)) - 32 // the 32-byte ciphertext of privMsg
	for ad := range 2 {
		for c := max(0, n-base-8); c <= n-base; c++ {
			m := mlsBytes(t, &mls.PrivateMessage{GroupID: gid, Epoch: epoch, ContentType: ct, AuthenticatedData: make([]byte, ad),
				EncryptedSenderData: make([]byte, 16), Ciphertext: make([]byte, c)})
			if len(m) == n {
				return m
			}
		}
	}
	t.Fatalf("no PrivateMessage of %d bytes", n)
	return nil
}

func TestLongPoll(t *testing.T) {
	forEachBackend(t, func(t *testing.T, st Store) {
		_, base := newTestServer(t, st, Options{})
		alice, bob := newIdent(t, "alice"), newIdent(t, "bob")
		ca, cb := login(t, base, alice), login(t, base, bob)
		gid := []byte("poll")
		gp := "/v1/groups/" + gidPath(gid)
		mg := setupGroup(t, ca, gid, alice)
		add := mg.commit(alice, mls.CommitOptions{}, bob)

		// Times out empty.
		start := time.Now()
		r := ca.must(200, "GET", gp+"/messages?wait=0.3", nil)
		if d := time.Since(start); len(r.body["messages"].([]any)) != 0 || r.num("next") != 0 || d < 250*time.Millisecond {
			t.Fatalf("empty wait: %s after %v", r.raw, d)
		}
		// Wakes at once on a post.
		got := make(chan resp, 1)
		go func() { got <- ca.do("GET", gp+"/messages?wait=30", nil) }()
		time.Sleep(100 * time.Millisecond)
		start = time.Now()
		ca.must(200, "POST", gp+"/messages", map[string]any{"message": add.commit, "group_info": add.groupInfo})
		select {
		case r := <-got:
			if len(r.body["messages"].([]any)) != 1 {
				t.Fatalf("woken with %s", r.raw)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("woke after %v", d)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("long-poll not woken by a post")
		}
		// Welcome long-poll.
		go func() { got <- cb.do("GET", "/v1/welcomes?wait=30", nil) }()
		time.Sleep(100 * time.Millisecond)
		ca.must(200, "POST", "/v1/welcomes", map[string]any{"recipients": []string{bob.uid()}, "welcome": welcomeMsg(t), "group_id": gid})
		select {
		case r := <-got:
			if len(r.body["welcomes"].([]any)) != 1 {
				t.Fatalf("woken with %s", r.raw)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("welcome long-poll not woken")
		}
	})
}

func TestEvents(t *testing.T) {
	_, base := newTestServer(t, openSQLiteT(t), Options{})
	alice, bob := newIdent(t, "alice"), newIdent(t, "bob")
	ca, cb := login(t, base, alice), login(t, base, bob)
	gid := []byte("sse")
	setupGroup(t, ca, gid, alice)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+ca.token)
	// The events are checked against the document's x-sse-events.
	res, err := (&http.Client{Transport: apitest.Transport(t, relayDoc(t), nil)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatal(ct)
	}
	// Bob's group is not alice's business: only her own events arrive.
	setupGroup(t, cb, []byte("bobs"), bob)
	cb.must(200, "POST", "/v1/groups/"+gidPath([]byte("bobs"))+"/messages", map[string]any{"message": privMsg(t, []byte("bobs"), 0, mls.ContentTypeApplication), "kind": "application", "epoch": 0})
	ca.must(200, "POST", "/v1/groups/"+gidPath(gid)+"/messages", map[string]any{"message": privMsg(t, gid, 0, mls.ContentTypeApplication), "kind": "application", "epoch": 0})
	ca.must(200, "POST", "/v1/welcomes", map[string]any{"recipients": []string{alice.uid()}, "welcome": welcomeMsg(t), "group_id": gid})
	sc := bufio.NewScanner(res.Body)
	var lines []string
	for sc.Scan() && len(lines) < 4 {
		if l := sc.Text(); strings.HasPrefix(l, "event:") || strings.HasPrefix(l, "data:") {
			lines = append(lines, l)
		}
	}
	want := []string{"event: message", `data: {"group_id":"c3Nl","seq":1}`, "event: welcome", `data: {"id":1}`}
	if fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Fatalf("events %q, want %q", lines, want)
	}
}

func TestLimits(t *testing.T) {
	_, base := newTestServer(t, openSQLiteT(t), Options{MaxBody: 4096, Rate: 1, Burst: 5})
	alice := newIdent(t, "alice")
	ca := login(t, base, alice) // 2 requests from this IP's bucket
	big := map[string]any{"key_packages": [][]byte{make([]byte, 8192)}}
	if r := ca.do("POST", "/v1/key-packages", big); r.status != 413 || r.code() != "too_large" {
		t.Fatalf("oversized: %d %s", r.status, r.raw)
	}
	// A chunked body (no Content-Length) is cut off too.
	req, _ := http.NewRequest("POST", base+"/v1/key-packages", struct{ *bytes.Reader }{bytes.NewReader(bytes.Repeat([]byte(" "), 8192))})
	req.Header.Set("Authorization", "Bearer "+ca.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 {
		t.Fatalf("chunked oversized: %d", res.StatusCode)
	}
	var last resp
	for range 10 {
		if last = ca.do("GET", "/v1/key-packages/count", nil); last.status == 429 {
			break
		}
	}
	if last.status != 429 || last.code() != "rate_limited" || last.header.Get("Retry-After") != "1" {
		t.Fatalf("rate limit: %d %v %s", last.status, last.header, last.raw)
	}
	// Unauthenticated requests are limited per IP (3 left of 5 after login).
	anon := &client{t: t, base: base}
	for range 10 {
		if last = anon.do("POST", "/v1/auth/challenge", map[string]any{}); last.status == 429 {
			break
		}
	}
	if last.status != 429 {
		t.Fatalf("per-IP limit: %d", last.status)
	}
}

// TestDeviceLimit: a user's devices in the directory are bounded.
func TestDeviceLimit(t *testing.T) {
	_, base := newTestServer(t, openSQLiteT(t), Options{MaxDevices: 2})
	alice := newIdent(t, "alice")
	login(t, base, alice)
	login(t, base, alice.another(t, "2"))
	third := alice.another(t, "3")
	c := &client{t: t, base: base}
	r := c.must(200, "POST", "/v1/auth/challenge", map[string]any{"certificate": third.cert})
	ch, _ := base64.StdEncoding.DecodeString(r.body["challenge"].(string))
	if r := c.do("POST", "/v1/auth/login", map[string]any{"certificate": third.cert, "challenge": ch, "signature": third.loginSignature(t, base, ch)}); r.status != 409 || r.code() != "device_limit" {
		t.Fatalf("third device: %d %s", r.status, r.raw)
	}
	login(t, base, alice) // a known device logs in again
}
