package channel

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/identity"
)

func TestRevocationsCodec(t *testing.T) {
	pi, err := identity.GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	var revs []*identity.Revocation
	for i := range maxCommitRevocations + 1 {
		r, err := pi.Revoke(identity.DeviceID{byte(i + 1)}, time.Unix(1e9, 0))
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, r)
	}
	ad, err := encodeRevocations(revs[:2])
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRevocations(ad)
	if err != nil || len(got) != 2 || got[1].DeviceID != revs[1].DeviceID || got[1].Verify() != nil {
		t.Fatalf("round trip: %v %v", got, err)
	}
	// Too many are cut on the sending side, refused on the receiving one.
	ad, _ = encodeRevocations(revs)
	if got, _ := decodeRevocations(ad); len(got) != maxCommitRevocations {
		t.Fatalf("sent %d", len(got))
	}
	for name, c := range map[string]struct {
		ad    []byte
		n     int
		isErr bool
	}{
		"none":             {nil, 0, false},
		"another label":    {append([]byte{5}, "hello"...), 0, false},
		"plain text":       {[]byte("just some data"), 0, false},
		"truncated":        {ad[:len(ad)-3], 0, true},
		"trailing":         {append(bytes.Clone(ad), 0), 0, true},
		"too many":         {tooMany(t, revs), 0, true},
		"not a revocation": {junkEntry(t), 0, true},
	} {
		got, err := decodeRevocations(c.ad)
		if len(got) != c.n || (err != nil) != c.isErr || (err != nil && !errors.Is(err, ErrInvalidEncoding)) {
			t.Errorf("%s: %d revocations, %v", name, len(got), err)
		}
	}
}

// tooMany encodes one revocation more than a commit may carry.
func tooMany(t *testing.T, revs []*identity.Revocation) []byte {
	t.Helper()
	out, err := newRevocationsBuilder(revs).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func junkEntry(t *testing.T) []byte {
	t.Helper()
	b := newRevocationsBuilderRaw([][]byte{[]byte("not a revocation")})
	out, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func FuzzDecodeRevocations(f *testing.F) {
	pi, _ := identity.GenerateIdentity(nil)
	r, _ := pi.Revoke(identity.DeviceID{1}, time.Unix(1e9, 0))
	ad, _ := encodeRevocations([]*identity.Revocation{r})
	f.Add(ad)
	f.Add([]byte("x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		revs, err := decodeRevocations(data)
		if err != nil && len(revs) != 0 {
			t.Fatal("revocations with an error")
		}
		if len(revs) > maxCommitRevocations {
			t.Fatalf("%d revocations", len(revs))
		}
	})
}
