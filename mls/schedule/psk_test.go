package schedule

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/wire"
)

func h(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestPreSharedKeyIDCodec(t *testing.T) {
	for _, c := range []struct {
		name string
		id   PreSharedKeyID
		enc  string
	}{
		{"external", PreSharedKeyID{Type: PSKTypeExternal, PSKID: []byte{0xaa}, Nonce: []byte{1, 2}}, "01" + "01aa" + "020102"},
		{"resumption", PreSharedKeyID{Type: PSKTypeResumption, Usage: UsageBranch, PSKGroupID: []byte{7}, PSKEpoch: 5, Nonce: nil},
			"02" + "03" + "0107" + "0000000000000005" + "00"},
	} {
		got, err := wire.Marshal(&c.id)
		if err != nil || !bytes.Equal(got, h(c.enc)) {
			t.Errorf("%s: encode %x, %v", c.name, got, err)
		}
		var back PreSharedKeyID
		if err := wire.Unmarshal(h(c.enc), &back); err != nil || !back.Equal(&c.id) {
			t.Errorf("%s: decode: %+v %v", c.name, back, err)
		}
	}
	for _, bad := range []string{
		"00" + "00" + "00", // reserved psktype
		"03" + "00" + "00", // unknown psktype
		"02" + "00" + "00" + "0000000000000000" + "00", // reserved usage
		"02" + "04" + "00" + "0000000000000000" + "00", // unknown usage
		"01" + "05aa" + "00",                           // truncated psk_id
		"01" + "00" + "00" + "ff",                      // trailing data
		"01" + "4001" + "00",                           // non-minimal varint
	} {
		var id PreSharedKeyID
		if err := wire.Unmarshal(h(bad), &id); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	for _, bad := range []PreSharedKeyID{{Type: 0}, {Type: 9}, {Type: PSKTypeResumption, Usage: 0}} {
		if _, err := wire.Marshal(&bad); !errors.Is(err, ErrInvalidPSK) {
			t.Errorf("%+v: encoded (%v)", bad, err)
		}
	}
	s := suite.MustNew(1)
	if (&PreSharedKeyID{Nonce: make([]byte, 31)}).CheckNonce(s) == nil {
		t.Error("short nonce accepted")
	}
}

func TestPSKSecret(t *testing.T) {
	s := suite.MustNew(1)
	z, err := PSKSecret(s, nil)
	if err != nil || !bytes.Equal(z, make([]byte, 32)) {
		t.Errorf("no PSKs: %x %v", z, err)
	}
	id := PreSharedKeyID{Type: PSKTypeExternal, PSKID: []byte("a"), Nonce: seq(32, 0)}
	one, _ := PSKSecret(s, []PSK{{ID: id, Secret: []byte("k")}})
	two, _ := PSKSecret(s, []PSK{{ID: id, Secret: []byte("k")}, {ID: id, Secret: []byte("k")}})
	if bytes.Equal(one, two) || bytes.Equal(one, z) {
		t.Error("PSK chaining does not depend on the list")
	}
	if _, err := PSKSecret(s, []PSK{{ID: PreSharedKeyID{Type: 7}}}); !errors.Is(err, ErrInvalidPSK) {
		t.Errorf("invalid id: %v", err)
	}
}

func FuzzPreSharedKeyID(f *testing.F) {
	f.Add(h("0101aa020102"))
	f.Add(h("0203010700000000000000050" + "0"))
	f.Add(h("01" + "20" + "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" + "00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var id PreSharedKeyID
		if wire.Unmarshal(data, &id) != nil {
			return
		}
		enc, err := wire.Marshal(&id)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("re-encoding differs: %x vs %x", enc, data)
		}
		var back PreSharedKeyID
		if err := wire.Unmarshal(enc, &back); err != nil || !back.Equal(&id) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
