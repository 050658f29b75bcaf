package sqlite_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/store"
	"github.com/spacepanda/spacepanda/store/sqlite"
)

// TestMetadataSealedAtRest: a channel's name and a message's id, sender,
// reply-to and body are nowhere in store.db or its WAL, and read back
// intact; a second message with the same id is still refused (the id's
// keyed tag keeps it unique).
func TestMetadataSealedAtRest(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{KeyFile: filepath.Join(dir, "k")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sent := time.Unix(1_700_000_000, 123456789).UTC()
	ch := store.Channel{ID: "c1", GroupID: []byte("g1"), Name: "secret-channel-name-1"}
	msg := store.Message{ChannelID: "c1", ID: "secret-message-id-1", Sender: "secret-sender-id-1", ReplyTo: "secret-reply-id-1",
		Body: []byte("secret-body-1"), Timestamp: sent, ReceivedAt: sent.Add(time.Second)}
	err = s.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutChannel(ctx, ch); err != nil {
			return err
		}
		_, err := tx.AppendMessage(ctx, msg)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx store.Tx) error { _, err := tx.AppendMessage(ctx, msg); return err }); err == nil {
		t.Fatal("a second message with the same id was stored")
	}
	got, err := s.Channel(ctx, "c1")
	if err != nil || got.Name != ch.Name {
		t.Fatalf("channel %+v %v", got, err)
	}
	ms, err := s.Messages(ctx, "c1", 0, 10)
	if err != nil || len(ms) != 1 {
		t.Fatalf("messages %v %v", ms, err)
	}
	m := ms[0]
	if m.ID != msg.ID || m.Sender != msg.Sender || m.ReplyTo != msg.ReplyTo || !m.Timestamp.Equal(sent) ||
		!m.ReceivedAt.Equal(msg.ReceivedAt) || string(m.Body) != string(msg.Body) {
		t.Fatalf("read back %+v", m)
	}
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{ch.Name, msg.ID, msg.Sender, msg.ReplyTo, string(msg.Body)} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds %q", filepath.Base(f), secret)
			}
		}
	}
}

// TestLegacyRowsSealedAtOpen: rows written in plaintext by an older
// program are sealed when the store opens, and read back the same.
func TestLegacyRowsSealedAtOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	opts := sqlite.Options{KeyFile: filepath.Join(dir, "k")}
	s, err := sqlite.Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw := rawDB(t, path)
	for _, q := range []string{
		`INSERT INTO channels (channel_id, group_id, name, public, created_at) VALUES ('c1', x'01', 'old-name', 0, 1)`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	s, err = sqlite.Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c, err := s.Channel(ctx, "c1"); err != nil || c.Name != "old-name" {
		t.Fatalf("legacy channel %+v %v", c, err)
	}
	var name string
	var sealed []byte
	rawDB(t, path).QueryRow(`SELECT name, name_sealed FROM channels WHERE channel_id = 'c1'`).Scan(&name, &sealed)
	if name != "" || len(sealed) == 0 {
		t.Fatalf("the legacy name stayed in the clear: %q, %d sealed bytes", name, len(sealed))
	}
}
