package seal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSealOpen(t *testing.T) {
	b, err := New(bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := New(bytes.Repeat([]byte{8}, KeySize))
	ad := Bind("t", "c", []byte("row"))
	pt := []byte("private key")
	ct := b.Seal(ad, pt)
	if len(ct) != len(pt)+Overhead {
		t.Fatalf("len = %d, want %d", len(ct), len(pt)+Overhead)
	}
	if ct2 := b.Seal(ad, pt); bytes.Equal(ct, ct2) {
		t.Fatal("two seals are equal: nonce reused")
	}
	got, err := b.Open(ad, ct)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	flip := bytes.Clone(ct)
	flip[len(flip)-1] ^= 1
	cases := []struct {
		name string
		box  *Box
		ad   AD
		ct   []byte
	}{
		{"other row", b, Bind("t", "c", []byte("row2")), ct},
		{"other column", b, Bind("t", "d", []byte("row")), ct},
		{"other table", b, Bind("u", "c", []byte("row")), ct},
		{"ambiguous split", b, Bind("t", "c", []byte("ro"), []byte("w")), ct},
		{"wrong key", other, ad, ct},
		{"tampered", b, ad, flip},
		{"truncated", b, ad, ct[:Overhead-1]},
		{"empty", b, ad, nil},
		{"bad version", b, ad, append([]byte{9}, ct[1:]...)},
	}
	for _, c := range cases {
		if _, err := c.box.Open(c.ad, c.ct); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: err = %v, want ErrOpen", c.name, err)
		}
	}
	empty, err := b.Open(ad, b.Seal(ad, nil))
	if err != nil || empty == nil || len(empty) != 0 {
		t.Fatalf("empty round trip = %#v, %v", empty, err)
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k")
	k, err := CreateKeyFile(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	if _, err := CreateKeyFile(p); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second create: %v", err)
	}
	got, err := ReadKeyFile(p)
	if err != nil || !bytes.Equal(got, k) {
		t.Fatalf("ReadKeyFile: %v", err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o666} {
		os.Chmod(p, mode)
		if _, err := ReadKeyFile(p); !errors.Is(err, ErrKeyFileMode) {
			t.Errorf("mode %v: err = %v", mode, err)
		}
	}
	os.Chmod(p, 0o400)
	if _, err := ReadKeyFile(p); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("too short"), 0o600)
	if _, err := ReadKeyFile(short); !errors.Is(err, ErrKeyFileSize) {
		t.Errorf("short: %v", err)
	}
	long := filepath.Join(dir, "long")
	os.WriteFile(long, make([]byte, KeySize+1), 0o600)
	if _, err := ReadKeyFile(long); !errors.Is(err, ErrKeyFileSize) {
		t.Errorf("long: %v", err)
	}
}
