package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/internal/loadtest"
)

// TestRelayDiskHasNoChannelNames runs a short end-to-end session (a relay
// and three node processes, a channel, invitations by user id, messages)
// and greps every file of the relay's data directory, WAL included, for
// the channel's name, and every node's store.db with its WAL: the relay must
// never learn it (it travels inside the
// encrypted Welcome and GroupInfo).
func TestRelayDiskHasNoChannelNames(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SPACEPANDA_TEST_MAIN", "1") // the children run main's run()
	dir := t.TempDir()
	if d := os.Getenv("RELAYOPS_KEEP"); d != "" {
		dir = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := loadtest.Run(ctx, loadtest.Config{Clients: 3, Channels: 1, Members: 3, Duration: time.Second, Rate: 10, Exe: exe, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivered == 0 {
		t.Fatalf("nothing delivered: %+v", *res)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "relay", "*"))
	if len(files) < 2 {
		t.Fatalf("relay files: %v", files)
	}
	name := []byte(loadtest.ChannelName(0))
	// The nodes' stores seal names and message metadata at rest.
	nodeFiles, _ := filepath.Glob(filepath.Join(dir, "n*", "*"))
	if len(nodeFiles) < 3 {
		t.Fatalf("node files: %v", nodeFiles)
	}
	for _, f := range nodeFiles {
		if st, err := os.Stat(f); err != nil || st.IsDir() {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, name) {
			t.Errorf("node file %s holds the channel name", f[len(dir):])
		}
	}
	var leaked []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, name) {
			leaked = append(leaked, filepath.Base(f))
		}
	}
	if len(leaked) > 0 {
		t.Fatalf("the relay's files %v hold the channel name", leaked)
	}
}
