package cpace

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/bwesterb/go-ristretto"
)

// The vectors below are those of draft-irtf-cfrg-cpace-21, Appendix A and
// B.3 (CPace, ristretto255, SHA-512).

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStringUtilities(t *testing.T) {
	r127 := make([]byte, 127)
	r128 := make([]byte, 128)
	for i := range r128 {
		r128[i] = byte(i)
		if i < 127 {
			r127[i] = byte(i)
		}
	}
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"prepend_len empty", prependLen(nil), "00"},
		{"prepend_len 1234", prependLen([]byte("1234")), "0431323334"},
		{"prepend_len 127", prependLen(r127)[:1], "7f"},
		{"prepend_len 128", prependLen(r128)[:3], "800100"},
		{"lv_cat", lvCat([]byte("1234"), []byte("5"), nil, []byte("678")), "043132333401350003363738"},
		{"transcript_ir 1", transcriptIR([]byte("123"), []byte("PartyA"), []byte("234"), []byte("PartyB")),
			"03313233065061727479410332333406506172747942"},
		{"transcript_ir 2", transcriptIR([]byte("3456"), []byte("PartyA"), []byte("2345"), []byte("PartyB")),
			"043334353606506172747941043233343506506172747942"},
	}
	for _, tc := range tests {
		if got := hex.EncodeToString(tc.got); got != tc.want {
			t.Errorf("%s = %s, want %s", tc.name, got, tc.want)
		}
	}
	if n := len(prependLen(r128)); n != 130 {
		t.Errorf("prepend_len(128 bytes) is %d bytes, want 130", n)
	}
}

// vector is Appendix B.3.
type vector struct {
	prs, ci, sid, genStr, hash, g []byte
	ya, ada, Ya, yb, adb, Yb, k   []byte
	transcript, iskInput, isk     []byte
}

func b3(t *testing.T) vector {
	return vector{
		prs: []byte("Password"),
		ci:  unhex(t, "0b415f696e69746961746f720b425f726573706f6e646572"),
		sid: unhex(t, "7e4b4791d6a8ef019b936c79fb7f2c57"),
		genStr: unhex(t, `11435061636552697374726574746f3235350850617373776f726464
			00000000000000000000000000000000000000000000000000000000
			00000000000000000000000000000000000000000000000000000000
			00000000000000000000000000000000000000000000000000000000
			00000000000000000000000000000000180b415f696e69746961746f
			720b425f726573706f6e646572107e4b4791d6a8ef019b936c79fb7f
			2c57`),
		hash: unhex(t, `da6d3ddc8802fca9058755ffd3ebde08a9c2c74945901a258482a288
			b6663af06bf645c93cd1c51512307199c80e84908916d983b34af772
			05f90851a657ee27`),
		g:   unhex(t, "222b6b195fe84b1652badb6f6a3ae3d24341e7306967f0b8115b40d5698c7e56"),
		ya:  unhex(t, "da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4ff0976d08"),
		ada: []byte("ADa"),
		Ya:  unhex(t, "d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec482b9157"),
		yb:  unhex(t, "d2316b454718c35362d83d69df6320f38578ed5984651435e2949762d900b80d"),
		adb: []byte("ADb"),
		Yb:  unhex(t, "3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f7258"),
		k:   unhex(t, "80b69a8a76457ab6a4d7f887a4bf6b55a2f80ac19c333f917a05fc9887c8b40f"),
		transcript: unhex(t, `20d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0e
			ec482b915703414461203ea7e0b19560d7c0b0f5734f63b955286dfa
			8232b5ebe63324e2d9e7433f725803414462`),
		iskInput: unhex(t, `15435061636552697374726574746f3235355f49534b107e4b4791d6
			a8ef019b936c79fb7f2c572080b69a8a76457ab6a4d7f887a4bf6b55
			a2f80ac19c333f917a05fc9887c8b40f20d6bac480f2c386c394efc7
			c47adb9925dcd2630b64f240c50f8d0eec482b915703414461203ea7
			e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f
			725803414462`),
		isk: unhex(t, `b69effbf61b51d56401c0f65601abe428de8206feaaf0e32198896dc
			ae7b35cd2b38950a39dfd5d4a79164614c2984f7daa460b588c1e80c
			3fa2068af7900447`),
	}
}

func TestGeneratorVector(t *testing.T) {
	v := b3(t)
	gs := GeneratorString([]byte(DSI), v.prs, v.ci, v.sid, sInBytes)
	if !bytes.Equal(gs, v.genStr) {
		t.Fatalf("generator_string = %x\nwant %x", gs, v.genStr)
	}
	if h := sha512.Sum512(gs); !bytes.Equal(h[:], v.hash) {
		t.Fatalf("hash = %x, want %x", h, v.hash)
	}
	g := CalculateGenerator(v.prs, v.ci, v.sid)
	if got := g.Bytes(); !bytes.Equal(got, v.g) {
		t.Fatalf("generator = %x, want %x", got, v.g)
	}
}

func TestProtocolVector(t *testing.T) {
	v := b3(t)
	a, err := New(Initiator, bytes.NewReader(v.ya), v.prs, v.ci, v.sid, v.ada)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Responder, bytes.NewReader(v.yb), v.prs, v.ci, v.sid, v.adb)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Share(), v.Ya) || !bytes.Equal(b.Share(), v.Yb) {
		t.Fatalf("shares %x %x, want %x %x", a.Share(), b.Share(), v.Ya, v.Yb)
	}
	if k, ok := scalarMultVfy(&a.y, v.Yb); !ok || !bytes.Equal(k[:], v.k) {
		t.Fatalf("K = %x, want %x", k, v.k)
	}
	if got := transcriptIR(v.Ya, v.ada, v.Yb, v.adb); !bytes.Equal(got, v.transcript) {
		t.Fatalf("transcript_ir = %x", got)
	}
	if got := append(lvCat([]byte(DSI+"_ISK"), v.sid, v.k), v.transcript...); !bytes.Equal(got, v.iskInput) {
		t.Fatalf("ISK input = %x", got)
	}
	iskA, err := a.ISK(b.Share(), v.adb)
	if err != nil {
		t.Fatal(err)
	}
	iskB, err := b.ISK(a.Share(), v.ada)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(iskA, v.isk) || !bytes.Equal(iskB, v.isk) {
		t.Fatalf("ISK A %x\nISK B %x\nwant  %x", iskA, iskB, v.isk)
	}
	if _, err := a.ISK(b.Share(), v.adb); !errors.Is(err, ErrUsed) {
		t.Fatalf("second ISK: %v, want ErrUsed", err)
	}
}

// TestScalarMultVfy is B.3.10 and B.3.11: a valid input, then a
// non-canonical encoding and the neutral element, which must abort.
func TestScalarMultVfy(t *testing.T) {
	var s ristretto.Scalar
	var sb [32]byte
	copy(sb[:], unhex(t, "7cd0e075fa7955ba52c02759a6c90dbbfc10e6d40aea8d283e407d88cf538a05"))
	s.SetBytes(&sb)
	x := unhex(t, "2c3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c")
	want := unhex(t, "7c13645fe790a468f62c39beb7388e541d8405d1ade69d1778c5fe3e7f6b600e")
	if k, ok := scalarMultVfy(&s, x); !ok || !bytes.Equal(k[:], want) {
		t.Fatalf("scalar_mult_vfy(s, X) = %x %v, want %x", k, ok, want)
	}
	invalid := map[string][]byte{
		"Y_i1 (not an encoding)": unhex(t, "2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c"),
		"Y_i2 (neutral element)": make([]byte, 32),
		"short":                  x[:31],
		"long":                   append(append([]byte{}, x...), 0),
		"top bit set":            append(append([]byte{}, x[:31]...), x[31]|0x80),
	}
	for name, y := range invalid {
		if _, ok := scalarMultVfy(&s, y); ok {
			t.Errorf("%s: accepted", name)
		}
	}
	// A protocol run aborts on them (§9).
	v := b3(t)
	for name, y := range invalid {
		a, err := New(Initiator, nil, v.prs, v.ci, v.sid, v.ada)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.ISK(y, v.adb); !errors.Is(err, ErrInvalidShare) {
			t.Errorf("%s: ISK error %v, want ErrInvalidShare", name, err)
		}
	}
}

func TestMismatchedInputsDisagree(t *testing.T) {
	v := b3(t)
	base := func(prs, ci, sid []byte) ([]byte, []byte) {
		a, _ := New(Initiator, nil, v.prs, v.ci, v.sid, v.ada)
		b, _ := New(Responder, nil, prs, ci, sid, v.adb)
		ka, errA := a.ISK(b.Share(), v.adb)
		kb, errB := b.ISK(a.Share(), v.ada)
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		return ka, kb
	}
	if ka, kb := base(v.prs, v.ci, v.sid); !bytes.Equal(ka, kb) {
		t.Fatal("same inputs, different keys")
	}
	for name, in := range map[string][3][]byte{
		"password": {[]byte("Passwore"), v.ci, v.sid},
		"ci":       {v.prs, []byte("other"), v.sid},
		"sid":      {v.prs, v.ci, []byte("other sid")},
	} {
		if ka, kb := base(in[0], in[1], in[2]); bytes.Equal(ka, kb) {
			t.Errorf("different %s, same key", name)
		}
	}
}
