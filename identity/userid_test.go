package identity_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls/wire"
)

func seqKey(start byte) identity.IdentityKey {
	var k identity.IdentityKey
	for i := range k {
		k[i] = start + byte(i)
	}
	return k
}

// TestUserIDVector pins the derivation: the values were computed
// independently (Python hashlib and base64) from the documented formula.
func TestUserIDVector(t *testing.T) {
	k := seqKey(0)
	const want = "sp1juor6q7qj5jkig72khnvnlsm6fvu5eyjkw7go3vaiw6opgwtm2xq"
	if got := identity.UserIDFromKey(k); got != want {
		t.Fatalf("user id %s, want %s", got, want)
	}
	if len(want) != identity.UserIDLen {
		t.Fatalf("UserIDLen %d, id has %d", identity.UserIDLen, len(want))
	}
	if got := identity.UserID(want).Short(); got != "sp1-juor-6q7q" {
		t.Fatalf("short form %q", got)
	}
	if !identity.UserID(want).Matches(k) || identity.UserID(want).Matches(seqKey(1)) {
		t.Fatal("Matches")
	}
}

func TestParseUserID(t *testing.T) {
	good := string(identity.UserIDFromKey(seqKey(0)))
	if u, err := identity.ParseUserID(good); err != nil || string(u) != good {
		t.Fatalf("canonical id refused: %v", err)
	}
	// The last character carries 1 bit of the hash and 4 zero bits: any
	// other character with the same leading bit is a second spelling.
	alt := good[len(good)-1] + 1 // 'a' or 'q' become 'b' or 'r': low bits set
	bad := map[string]string{
		"empty":            "",
		"uppercase":        strings.ToUpper(good),
		"no prefix":        good[3:],
		"other prefix":     "sp2" + good[3:],
		"short":            good[:len(good)-1],
		"long":             good + "a",
		"padding":          good[:len(good)-1] + "=",
		"newline":          good[:20] + "\n" + good[21:],
		"non-canonical":    good[:len(good)-1] + string(alt),
		"not base32 digit": good[:10] + "1" + good[11:],
	}
	for name, s := range bad {
		if _, err := identity.ParseUserID(s); !errors.Is(err, identity.ErrInvalidUserID) {
			t.Errorf("%s: %v, want ErrInvalidUserID", name, err)
		}
	}
}

func TestDeviceID(t *testing.T) {
	d, err := identity.NewDeviceID(nil)
	if err != nil || d.IsZero() {
		t.Fatal(d, err)
	}
	back, err := identity.ParseDeviceID(d.String())
	if err != nil || back != d {
		t.Fatalf("round trip: %v %v", back, err)
	}
	for _, s := range []string{"", strings.ToUpper(d.String()), d.String() + "a", d.String()[:25]} {
		if _, err := identity.ParseDeviceID(s); !errors.Is(err, identity.ErrInvalidDeviceID) {
			t.Errorf("%q: %v", s, err)
		}
	}
}

func TestPrivateIdentityRoundTrip(t *testing.T) {
	p, err := identity.GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	q, err := identity.ParsePrivateIdentity(enc)
	if err != nil {
		t.Fatal(err)
	}
	if q.UserID() != p.UserID() || q.IdentityKey() != p.IdentityKey() {
		t.Fatal("reloaded identity differs")
	}
	// The reloaded key signs what the original's public key verifies.
	dev := newTestDevice(t, 1)
	cert, err := q.Certify(dev.device, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.VerifySignature(); err != nil || cert.IdentityKey != p.IdentityKey() {
		t.Fatalf("certificate by the reloaded key: %v", err)
	}

	other, _ := identity.GenerateIdentity(nil)
	otherEnc, _ := other.MarshalBinary()
	mixed := append(append([]byte{}, enc[:35]...), otherEnc[35:]...) // p's seed, other's public key
	bad := map[string][]byte{
		"empty":          nil,
		"version":        append([]byte{2}, enc[1:]...),
		"truncated":      enc[:len(enc)-1],
		"trailing":       append(append([]byte{}, enc...), 0),
		"short seed":     encodePrivate(1, enc[2:33], enc[35:]),
		"long key":       encodePrivate(1, enc[2:34], append(append([]byte{}, enc[35:]...), 0)),
		"mismatched key": mixed,
	}
	for name, b := range bad {
		_, err := identity.ParsePrivateIdentity(b)
		if !errors.Is(err, identity.ErrInvalidKey) {
			t.Errorf("%s: %v, want ErrInvalidKey", name, err)
		}
		if err != nil && containsSecret(err.Error(), enc[2:34]) {
			t.Errorf("%s: error shows the seed", name)
		}
	}
}

// TestPrivateIdentityNoLeak: the seed appears in no formatting of the
// private identity, nor in its structured log record.
func TestPrivateIdentityNoLeak(t *testing.T) {
	p, _ := identity.GenerateIdentity(nil)
	enc, _ := p.MarshalBinary()
	seed := enc[2:34]
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("loaded", "identity", p)
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("loaded", "identity", p)
	outs := []string{
		fmt.Sprint(p), fmt.Sprintf("%v %+v %#v %s %q %x %X", p, p, p, p, p, p, p),
		fmt.Sprintf("%v %+v %#v %d %x", *p, *p, *p, *p, *p), fmt.Sprintf("%d %o %b %T", p, p, p, p),
		fmt.Sprint([]any{p, *p}), fmt.Sprintf("%v", struct{ P *identity.PrivateIdentity }{p}), logBuf.String(),
	}
	for _, out := range outs {
		if containsSecret(out, seed) {
			t.Fatalf("secret in %q", out)
		}
	}
	if !strings.Contains(logBuf.String(), string(p.UserID())) {
		t.Fatalf("log record lacks the user id: %s", logBuf.String())
	}
}

func encodePrivate(v uint8, seed, pub []byte) []byte {
	b := wire.NewBuilder(80)
	b.AddUint8(v)
	b.AddOpaque(seed)
	b.AddOpaque(pub)
	out, _ := b.Bytes()
	return out
}

// containsSecret looks for secret in s raw, as hex and as Go byte lists.
func containsSecret(s string, secret []byte) bool {
	forms := []string{string(secret), fmt.Sprintf("%x", secret), fmt.Sprintf("%X", secret), fmt.Sprint(secret),
		strings.Trim(fmt.Sprintf("%#v", secret), "[]byte{}")}
	for _, f := range forms {
		if strings.Contains(s, f) {
			return true
		}
	}
	return false
}

// TestFingerprintVector pins the fingerprint (computed independently from
// the documented formula) and checks the safety number's symmetry.
func TestFingerprintVector(t *testing.T) {
	a, b := seqKey(0), identity.IdentityKey(bytes.Repeat([]byte{0xff}, 32))
	const fa, fb = "699436750122402987949600373462", "331784481457321934272531011641"
	group := func(d string) string {
		var parts []string
		for i := 0; i < len(d); i += 5 {
			parts = append(parts, d[i:i+5])
		}
		return strings.Join(parts, " ")
	}
	if got := identity.Fingerprint(a); got != group(fa) {
		t.Fatalf("fingerprint %s, want %s", got, group(fa))
	}
	want := group(fb + fa) // the smaller fingerprint first
	if got := identity.SafetyNumber(a, b); got != want {
		t.Fatalf("safety number %s, want %s", got, want)
	}
	if identity.SafetyNumber(b, a) != want {
		t.Fatal("safety number depends on the order")
	}
	c := seqKey(1)
	if identity.SafetyNumber(a, c) == want || identity.SafetyNumber(c, b) == want {
		t.Fatal("another key gives the same safety number")
	}
}
