package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/internal/loadtest"
	"github.com/spacepanda/spacepanda/store/sqlite"
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
	// The nodes' stores seal names, message metadata and the sync
	// engine's record ids (contacts are user ids, outbox entries message
	// ids) at rest: no node file holds the channel name, a message id, or
	// another node's user id (a node's own id is in its public key
	// packages and credential).
	nodeDirs, _ := filepath.Glob(filepath.Join(dir, "n*"))
	if len(nodeDirs) != 3 {
		t.Fatalf("node directories: %v", nodeDirs)
	}
	users := map[string]string{} // node dir -> user id
	var messageIDs []string
	for _, nd := range nodeDirs {
		st, err := sqlite.Open(ctx, filepath.Join(nd, "store.db"), sqlite.Options{KeyFile: filepath.Join(nd, "store.key")})
		if err != nil {
			t.Fatal(err)
		}
		id, err := st.Identity(ctx)
		if err != nil {
			t.Fatal(err)
		}
		users[nd] = id.UserID
		chans, err := st.Channels(ctx)
		if err != nil || len(chans) != 1 {
			t.Fatalf("%s: channels %v %v", nd, chans, err)
		}
		ms, err := st.Messages(ctx, chans[0].ID, 0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			messageIDs = append(messageIDs, m.ID)
		}
		if cs, err := st.Records(ctx, "contact"); err != nil || len(cs) != 2 {
			t.Fatalf("%s: %d contacts, %v", nd, len(cs), err)
		}
		st.Close()
	}
	if len(messageIDs) == 0 {
		t.Fatal("no messages in the nodes' histories")
	}
	for _, nd := range nodeDirs {
		secrets := map[string]string{string(name): "the channel name"}
		for _, m := range messageIDs {
			secrets[m] = "message id " + m
		}
		for od, u := range users {
			if od != nd {
				secrets[u] = "user id " + u
			}
		}
		files, _ := filepath.Glob(filepath.Join(nd, "*"))
		if len(files) < 2 {
			t.Fatalf("node files: %v", files)
		}
		for _, f := range files {
			if st, err := os.Stat(f); err != nil || st.IsDir() {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for s, what := range secrets {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("node file %s holds %s", f[len(dir):], what)
				}
			}
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
