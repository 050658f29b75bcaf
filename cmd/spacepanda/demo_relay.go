package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spacepanda/spacepanda/internal/childproc"
	"github.com/spacepanda/spacepanda/node"
)

// startRelay starts `spacepanda relay` on a free loopback port.
func startRelay(ctx context.Context, exe, dir string, stderr io.Writer) (string, func(), error) {
	p, err := childproc.Start(ctx, exe, []string{"relay", "--data", dir, "--listen", "127.0.0.1:0"}, "spacepanda relay serving on ", stderr, nil)
	if err != nil {
		return "", nil, err
	}
	return p.Addr, p.Stop, nil
}

// waitFor polls the nodes' HTTP API (the demo driver, not the nodes) until
// cond holds.
func waitFor(ctx context.Context, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within 30s (last error: %v)", what, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func history(ctx context.Context, c *node.Client, ch string) ([]node.RelayChatMessage, error) {
	var r node.RelayMessagesResponse
	err := c.Do(ctx, "GET", "/v1/channels/"+url.PathEscape(ch)+"/messages?limit=10000", nil, &r)
	return r.Messages, err
}

// runRelayDemo is the demo through a relay: nobody carries bytes between
// nodes; invites go by user id.
func runRelayDemo(ctx context.Context, exe, root string, out, stderr io.Writer) error {
	d := &demo{out: out, start: time.Now()}
	fmt.Fprintf(out, "SpacePanda demo through a relay: three nodes, one channel, no byte shuttling (data in %s)\n\n", root)
	relayURL, stopRelay, err := startRelay(ctx, exe, filepath.Join(root, "relay"), stderr)
	if err != nil {
		return err
	}
	defer stopRelay()
	d.say("the relay is up at %s", relayURL)
	nodes := map[string]*node.Client{}
	uids, names := map[string]string{}, map[string]string{} // name ↔ user id
	for _, name := range []string{"alice", "bob", "carol"} {
		n, err := startNode(ctx, exe, name, filepath.Join(root, name), stderr, "--relay", relayURL)
		if err != nil {
			return err
		}
		defer n.stop()
		nodes[name] = n.c
		ident, err := n.c.Identity(ctx)
		if err != nil {
			return err
		}
		uids[name], names[ident.UserID] = ident.UserID, name
		d.say("%s's node is up at %s, key packages published (user id %s)", name, n.c.BaseURL, ident.UserID)
	}
	alice, bob, carol := nodes["alice"], nodes["bob"], nodes["carol"]
	ch, err := alice.CreateChannel(ctx, "general", false)
	if err != nil {
		return err
	}
	id := ch.ChannelID
	path := "/v1/channels/" + url.PathEscape(id)
	d.say("alice creates channel %q and registers it at the relay", ch.Name)

	joined := func(who string) error {
		return waitFor(ctx, who+" joins", func() (bool, error) {
			_, err := nodes[who].Channel(ctx, id)
			return err == nil, err
		})
	}
	// Carol knows alice: her Welcome is joined at once. Bob does not: it
	// waits as an invitation he accepts.
	if err := carol.Do(ctx, "PUT", "/v1/contacts/"+url.PathEscape(uids["alice"]), map[string]any{}, nil); err != nil {
		return fmt.Errorf("carol adds alice as a contact: %w", err)
	}
	d.say("carol adds alice to her contacts")
	for _, who := range []string{"bob", "carol"} {
		var inv node.InviteResponse
		if err := alice.Do(ctx, "POST", path+"/invites", map[string]string{"user_id": uids[who]}, &inv); err != nil {
			return fmt.Errorf("invite %s: %w", who, err)
		}
		d.say("alice invites %s by user id (claimed key package, epoch %d)", who, inv.Epoch)
		if who == "bob" {
			if err := acceptInvitation(ctx, bob); err != nil {
				return err
			}
			d.say("bob sees a pending invitation from a stranger and accepts it")
		}
		if err := joined(who); err != nil {
			return err
		}
		d.say("%s's node joins from the queued Welcome", who)
	}
	all := []string{"alice", "bob", "carol"}
	for _, who := range all {
		if _, err := nodes[who].Send(ctx, id, "hello from "+who, ""); err != nil {
			return fmt.Errorf("%s sends: %w", who, err)
		}
		d.say("%s: %q", who, "hello from "+who)
	}
	for _, who := range all {
		var texts []string
		if err := waitFor(ctx, who+" sees three messages", func() (bool, error) {
			h, err := history(ctx, nodes[who], id)
			texts = texts[:0]
			for _, m := range h {
				texts = append(texts, names[m.Sender.UserID])
			}
			return len(h) == 3, err
		}); err != nil {
			return err
		}
		sort.Strings(texts)
		d.say("%s's history: messages from %s", who, strings.Join(texts, ", "))
	}
	if _, err := alice.RemoveMember(ctx, id, uids["carol"]); err != nil {
		return fmt.Errorf("remove carol: %w", err)
	}
	d.say("alice removes carol (commit accepted by the relay, then merged)")
	if err := waitFor(ctx, "carol learns of her removal", func() (bool, error) {
		_, err := carol.Members(ctx, id)
		return err != nil, nil
	}); err != nil {
		return err
	}
	d.say("carol's node processed her removal from the log")
	if _, err := alice.Send(ctx, id, "for bob's eyes only", ""); err != nil {
		return err
	}
	if err := waitFor(ctx, "bob sees alice's last message", func() (bool, error) {
		h, err := history(ctx, bob, id)
		return len(h) == 4 && h[3].Text == "for bob's eyes only", err
	}); err != nil {
		return err
	}
	d.say("bob receives %q", "for bob's eyes only")
	time.Sleep(300 * time.Millisecond)
	h, err := history(ctx, carol, id)
	if err != nil {
		return err
	}
	if len(h) != 3 {
		return fmt.Errorf("carol's history has %d messages after her removal, want 3", len(h))
	}
	d.say("carol's history stops at her removal (%d messages)", len(h))
	return nil
}

// acceptInvitation waits for c's first pending invitation and accepts it.
func acceptInvitation(ctx context.Context, c *node.Client) error {
	var id string
	if err := waitFor(ctx, "an invitation", func() (bool, error) {
		var r node.InvitationsResponse
		if err := c.Do(ctx, "GET", "/v1/invitations", nil, &r); err != nil {
			return false, err
		}
		if len(r.Invitations) > 0 {
			id = r.Invitations[0].InvitationID
		}
		return id != "", nil
	}); err != nil {
		return err
	}
	return c.Do(ctx, "POST", "/v1/invitations/"+url.PathEscape(id)+"/accept", nil, nil)
}
