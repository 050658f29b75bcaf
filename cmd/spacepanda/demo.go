package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spacepanda/spacepanda/internal/childproc"
	"github.com/spacepanda/spacepanda/node"
)

// demoNode is one `spacepanda serve` child process.
type demoNode struct {
	name string
	stop func()
	c    *node.Client
}

// startNode starts `spacepanda serve` on a free loopback port with its own
// data directory and waits until it answers.
func startNode(ctx context.Context, exe, name, dir string, stderr io.Writer, extra ...string) (*demoNode, error) {
	args := append([]string{"serve", "--data", dir, "--listen", "127.0.0.1:0", "--name", name}, extra...)
	p, err := childproc.Start(ctx, exe, args, "serving on ", stderr, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	n := &demoNode{name: name, stop: p.Stop, c: &node.Client{BaseURL: p.Addr}}
	for i := 0; ; i++ {
		if err := n.c.Do(ctx, "GET", "/healthz", nil, nil); err == nil {
			return n, nil
		} else if i == 100 {
			n.stop()
			return nil, fmt.Errorf("%s: not healthy: %w", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// demo is the transcript printer and the step checker.
type demo struct {
	out   io.Writer
	start time.Time
	step  int
}

func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.out, "%2d. %-58s %6s\n", d.step, fmt.Sprintf(format, args...),
		time.Since(d.start).Round(time.Millisecond))
}

func b64len(s string) int {
	b, _ := base64.StdEncoding.DecodeString(s)
	return len(b)
}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keep := fs.Bool("keep", false, "keep the temporary data directories")
	viaRelay := fs.Bool("relay", false, "run a relay too and deliver everything through it (no byte shuttling)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "spacepanda demo: unexpected arguments %q\n", fs.Args())
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "spacepanda demo: %v\n", err)
		return 1
	}
	root, err := os.MkdirTemp("", "spacepanda-demo-")
	if err != nil {
		fmt.Fprintf(stderr, "spacepanda demo: %v\n", err)
		return 1
	}
	if !*keep {
		defer os.RemoveAll(root)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := runDemo
	if *viaRelay {
		run = runRelayDemo
	}
	if err := run(ctx, exe, root, stdout, stderr); err != nil {
		fmt.Fprintf(stdout, "\nFAILED: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "\nOK: every step held.")
	return 0
}

func runDemo(ctx context.Context, exe, root string, out, stderr io.Writer) error {
	d := &demo{out: out, start: time.Now()}
	fmt.Fprintf(out, "SpacePanda demo: three nodes, one end-to-end encrypted channel (data in %s)\n\n", root)
	nodes := map[string]*demoNode{}
	uids := map[string]string{} // name → user id, derived from each node's identity key
	for _, name := range []string{"alice", "bob", "carol"} {
		n, err := startNode(ctx, exe, name, filepath.Join(root, name), stderr)
		if err != nil {
			return err
		}
		defer n.stop()
		nodes[name] = n
		id, err := n.c.Identity(ctx)
		if err != nil {
			return err
		}
		uids[name] = id.UserID
		d.say("%s's node is up at %s (suite %d, user id %s)", name, n.c.BaseURL, id.Ciphersuite, id.UserID)
	}
	alice, bob, carol := nodes["alice"].c, nodes["bob"].c, nodes["carol"].c

	kps := map[string]string{}
	for _, name := range []string{"bob", "carol"} {
		k, err := nodes[name].c.KeyPackages(ctx, 1)
		if err != nil {
			return fmt.Errorf("%s key packages: %w", name, err)
		}
		kps[name] = k[0]
		d.say("%s publishes a key package (%d bytes)", name, b64len(k[0]))
	}
	ch, err := alice.CreateChannel(ctx, "general", false)
	if err != nil {
		return err
	}
	d.say("alice creates channel %q (epoch %d)", ch.Name, ch.Epoch)

	inv, err := alice.Invite(ctx, ch.ChannelID, kps["bob"])
	if err != nil {
		return fmt.Errorf("invite bob: %w", err)
	}
	d.say("alice invites bob: Welcome %d bytes, epoch %d", b64len(inv.Welcome), inv.Epoch)
	if _, err := bob.Join(ctx, node.JoinRequest{Invite: inv.Invite}); err != nil {
		return fmt.Errorf("bob joins: %w", err)
	}
	d.say("bob joins from the Welcome")

	inv, err = alice.Invite(ctx, ch.ChannelID, kps["carol"])
	if err != nil {
		return fmt.Errorf("invite carol: %w", err)
	}
	d.say("alice invites carol: commit %d bytes, epoch %d", b64len(inv.Commit), inv.Epoch)
	if r, err := bob.Inbox(ctx, ch.ChannelID, inv.Commit); err != nil || r.Epoch != inv.Epoch {
		return fmt.Errorf("bob processes the commit adding carol: %v (epoch %v)", err, r)
	}
	d.say("bob processes alice's commit (now epoch %d)", inv.Epoch)
	if _, err := carol.Join(ctx, node.JoinRequest{Welcome: inv.Welcome, RatchetTree: inv.RatchetTree}); err != nil {
		return fmt.Errorf("carol joins: %w", err)
	}
	d.say("carol joins from the Welcome")

	// Everyone talks; each message is delivered to the other two.
	all := []string{"alice", "bob", "carol"}
	say := func(from, text string, to []string) error {
		sent, err := nodes[from].c.Send(ctx, ch.ChannelID, text, "")
		if err != nil {
			return fmt.Errorf("%s sends: %w", from, err)
		}
		for _, name := range to {
			r, err := nodes[name].c.Inbox(ctx, ch.ChannelID, sent.Ciphertext)
			if err != nil {
				return fmt.Errorf("%s receives %s's message: %w", name, from, err)
			}
			if r.Message == nil || r.Message.Text != text || r.Message.Sender.UserID != uids[from] {
				return fmt.Errorf("%s got %+v, want %q from %s", name, r.Message, text, from)
			}
		}
		d.say("%s: %q (%d bytes) -> %s", from, text, b64len(sent.Ciphertext), strings.Join(to, ", "))
		return nil
	}
	for _, from := range all {
		var to []string
		for _, n := range all {
			if n != from {
				to = append(to, n)
			}
		}
		if err := say(from, "hello from "+from, to); err != nil {
			return err
		}
	}

	rm, err := alice.RemoveMember(ctx, ch.ChannelID, uids["carol"])
	if err != nil {
		return fmt.Errorf("remove carol: %w", err)
	}
	d.say("alice removes carol (epoch %d)", rm.Epoch)
	if _, err := bob.Inbox(ctx, ch.ChannelID, rm.Commit); err != nil {
		return fmt.Errorf("bob processes the removal: %w", err)
	}
	d.say("bob processes the removal")
	if r, err := carol.Inbox(ctx, ch.ChannelID, rm.Commit); err != nil || !r.Removed {
		return fmt.Errorf("carol learns of her removal: %v %+v", err, r)
	}
	d.say("carol's node learns she was removed")

	if err := say("alice", "for bob's eyes only", []string{"bob"}); err != nil {
		return err
	}
	secret, err := alice.Send(ctx, ch.ChannelID, "carol must not read this", "")
	if err != nil {
		return err
	}
	_, err = carol.Inbox(ctx, ch.ChannelID, secret.Ciphertext)
	var ne *node.Error
	if !errors.As(err, &ne) || ne.Status/100 != 4 {
		return fmt.Errorf("carol should not read messages after her removal, got %v", err)
	}
	d.say("carol cannot read what follows her removal (%d %s)", ne.Status, ne.Code)

	hist, err := bob.Messages(ctx, ch.ChannelID)
	if err != nil {
		return err
	}
	d.say("bob's history holds %d messages", len(hist))
	if len(hist) < 4 {
		return fmt.Errorf("bob's history has %d messages, want at least 4", len(hist))
	}
	return nil
}
