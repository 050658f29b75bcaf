package suite

import (
	"bytes"
	"errors"
	"testing"
)

// TestVerifyWithLabelAt: verifying in place accepts exactly what
// VerifyWithLabel accepts, for every suite and across the content lengths
// where the length prefix changes size, and never writes the content.
func TestVerifyWithLabelAt(t *testing.T) {
	const label = "FramedContentTBS"
	for _, id := range All() {
		s := MustNew(id)
		priv, pub, err := s.GenerateSignatureKeyPair(nil)
		if err != nil {
			t.Fatal(err)
		}
		sg, err := s.NewSigner(priv)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 63, 64, 16383, 16384, 70000} {
			content := make([]byte, n)
			for i := range content {
				content[i] = byte(i * 13)
			}
			sig, err := sg.SignWithLabel(label, content)
			if err != nil {
				t.Fatal(err)
			}
			room := LabelHeadroom(label)
			buf := append(make([]byte, room), content...)
			if err := s.VerifyWithLabelAt(pub, label, buf, room, sig); err != nil {
				t.Fatalf("%v n=%d: %v", id, n, err)
			}
			if !bytes.Equal(buf[room:], content) {
				t.Fatalf("%v n=%d: content written", id, n)
			}
			if err := s.VerifyWithLabelAt(pub, "Other", append(make([]byte, room), content...), room, sig); !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("%v n=%d: other label: %v", id, n, err)
			}
			if n > 0 {
				buf[len(buf)-1] ^= 1
				if err := s.VerifyWithLabelAt(pub, label, buf, room, sig); !errors.Is(err, ErrInvalidSignature) {
					t.Fatalf("%v n=%d: tampered content: %v", id, n, err)
				}
			}
		}
	}
}

// TestVerifyWithLabelAtHeadroom: too little room in front of the content,
// or an offset outside the buffer, is an error, not a write out of bounds.
func TestVerifyWithLabelAtHeadroom(t *testing.T) {
	s := MustNew(1)
	_, pub, _ := s.GenerateSignatureKeyPair(nil)
	for _, at := range []int{-1, 0, 5, 101} {
		if err := s.VerifyWithLabelAt(pub, "FramedContentTBS", make([]byte, 100), at, make([]byte, 64)); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("at=%d: %v", at, err)
		}
	}
}
