package api

import (
	"bytes"
	"testing"

	"github.com/spacepanda/spacepanda/identity"
)

// TestLoginContent pins the signed layout: four opaque vectors with MLS
// varint lengths (RFC 9420 §2.1.2), the URL without its trailing slash.
func TestLoginContent(t *testing.T) {
	var dev identity.DeviceID
	for i := range dev {
		dev[i] = byte(i)
	}
	got := LoginContent("http://r.example/", "sp1u", dev, []byte{0xc0, 0xff})
	want := append([]byte{16}, "http://r.example"...)
	want = append(want, 4)
	want = append(want, "sp1u"...)
	want = append(want, 16)
	want = append(want, dev[:]...)
	want = append(want, 2, 0xc0, 0xff)
	if !bytes.Equal(got, want) {
		t.Fatalf("content %x, want %x", got, want)
	}
	if bytes.Equal(LoginContent("http://a", "sp1u", dev, nil), LoginContent("http://b", "sp1u", dev, nil)) {
		t.Fatal("the relay URL is not bound")
	}
}

func TestIsMailbox(t *testing.T) {
	for range 100 {
		o, err := identity.NewLinkOffer(nil)
		if err != nil {
			t.Fatal(err)
		}
		if mb := o.Code().Mailbox(); !IsMailbox(mb) {
			t.Fatalf("%q is a link code's mailbox", mb)
		}
	}
	for _, s := range []string{"", "ABC", "ABCDE", "abcd", "ABCU", "AB-C", "ABCI", "ABCL", "ABCO"} {
		if IsMailbox(s) {
			t.Errorf("%q is not a mailbox", s)
		}
	}
}

func TestMaxMessageSize(t *testing.T) {
	if MaxMessageSize(KindCommit) != MaxEntrySize || MaxMessageSize(KindApplication) != 1<<20 || MaxMessageSize("chat") != 0 {
		t.Fatal("sizes")
	}
	if MaxWelcomeSize+MaxRatchetTreeSize > MaxEntrySize || MaxPageBytes > MaxEntrySize {
		t.Fatal("an entry could exceed MaxEntrySize")
	}
}
