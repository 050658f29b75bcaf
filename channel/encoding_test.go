package channel_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/channel"
)

func TestChatEncoding(t *testing.T) {
	ts := time.UnixMilli(1_700_000_000_123).UTC()
	good := []channel.ChatMessage{
		{ID: "a", Timestamp: ts, Body: []byte("hi")},
		{ID: strings.Repeat("x", channel.MaxIDLen), Timestamp: ts, Body: []byte{}, ReplyTo: "b"},
		{ID: "id", Timestamp: time.UnixMilli(0).UTC(), Body: bytes.Repeat([]byte{'z'}, channel.MaxBody)},
	}
	for _, m := range good {
		b, err := channel.MarshalChat(&m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := channel.UnmarshalChat(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != m.ID || !got.Timestamp.Equal(m.Timestamp) || !bytes.Equal(got.Body, m.Body) || got.ReplyTo != m.ReplyTo {
			t.Fatalf("round trip %+v → %+v", m, got)
		}
	}
	bad := []channel.ChatMessage{
		{ID: ""},
		{ID: strings.Repeat("x", channel.MaxIDLen+1)},
		{ID: "\xff"},
		{ID: "a", ReplyTo: strings.Repeat("r", 65)},
		{ID: "a", Body: make([]byte, channel.MaxBody+1)},
	}
	for _, m := range bad {
		if _, err := channel.MarshalChat(&m); err == nil {
			t.Fatalf("encoded %+v", m)
		}
	}
	ok, _ := channel.MarshalChat(&good[0])
	for name, b := range map[string][]byte{
		"empty":     nil,
		"magic":     []byte("SPcm"),
		"version":   append([]byte("SPcm\x02"), ok[5:]...),
		"trailing":  append(bytes.Clone(ok), 0),
		"truncated": ok[:len(ok)-1],
		"other":     []byte("hello"),
	} {
		if _, err := channel.UnmarshalChat(b); !errors.Is(err, channel.ErrInvalidEncoding) {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func sampleToken() *channel.InviteToken {
	gid := []byte{1, 2, 3, 4}
	now := time.UnixMilli(1_700_000_000_000).UTC()
	return &channel.InviteToken{
		Channel:     channel.Descriptor{ID: channel.ChannelID(gid), GroupID: gid, Name: "général", Public: true, CreatedAt: now},
		Welcome:     []byte("welcome bytes"),
		RatchetTree: []byte("tree"),
		CreatedAt:   now,
		ExpiresAt:   now.Add(time.Hour),
	}
}

func TestInviteTokenEncoding(t *testing.T) {
	tok := sampleToken()
	text, err := tok.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var got channel.InviteToken
	if err := got.UnmarshalText(text); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, tok) {
		t.Fatalf("round trip\n%+v\n%+v", got, *tok)
	}
	b, _ := tok.MarshalBinary()
	for name, bad := range map[string][]byte{
		"magic":    append([]byte("XXiv"), b[4:]...),
		"version":  append([]byte("SPiv\x09"), b[5:]...),
		"trailing": append(bytes.Clone(b), 0),
		"short":    b[:len(b)-1],
	} {
		if err := got.UnmarshalBinary(bad); !errors.Is(err, channel.ErrInvalidInvite) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if err := got.UnmarshalText([]byte("!!")); !errors.Is(err, channel.ErrInvalidInvite) {
		t.Fatalf("bad base64: %v", err)
	}
}

func FuzzChat(f *testing.F) {
	for _, m := range []channel.ChatMessage{{ID: "a", Body: []byte("b")}, {ID: "x", ReplyTo: "y", Timestamp: time.UnixMilli(5)}} {
		b, _ := channel.MarshalChat(&m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := channel.UnmarshalChat(data)
		if err != nil {
			return
		}
		b, err := channel.MarshalChat(m)
		if err != nil {
			t.Fatalf("decoded but cannot encode: %v", err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("re-encoding differs")
		}
		m2, err := channel.UnmarshalChat(b)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("decode→encode→decode differs: %v", err)
		}
	})
}

func FuzzInviteToken(f *testing.F) {
	b, _ := sampleToken().MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var tok channel.InviteToken
		if tok.UnmarshalBinary(data) != nil {
			return
		}
		b, err := tok.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var tok2 channel.InviteToken
		if err := tok2.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(tok, tok2) {
			t.Fatalf("decode→encode→decode differs: %v", err)
		}
	})
}

func FuzzChannelInfo(f *testing.F) {
	b, _ := channel.MarshalChannelInfo(&channel.ChannelInfo{Channel: sampleToken().Channel, InviteExpiresAt: time.UnixMilli(9)})
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		ci, err := channel.UnmarshalChannelInfo(data)
		if err != nil {
			return
		}
		b, err := channel.MarshalChannelInfo(ci)
		if err != nil {
			t.Fatal(err)
		}
		ci2, err := channel.UnmarshalChannelInfo(b)
		if err != nil || !reflect.DeepEqual(ci, ci2) {
			t.Fatalf("decode→encode→decode differs: %v", err)
		}
	})
}
