package tsmls_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/interop/tsmls"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/provider"
	"github.com/spacepanda/spacepanda/store/memory"
)

// Helpers for the channel ↔ ts-mls tests (channel_interop_test.go). A
// chGo is one of our identities driving a channel.Manager over its own
// provider; it is an eiMember, so the engine tests' eiGroup (commit,
// agreement on epoch, epoch_authenticator, exporter and members) drives
// mixed channels too. Chat goes through chChat instead of eiGroup.chat,
// because our side sends ChatMessage encodings, not the bytes given.

// chHist is a history entry a member must hold.
type chHist struct {
	Sender string
	Body   string
	Raw    bool // from a plain RFC 9420 peer: shown as raw text
}

type chGo struct {
	t    testing.TB
	name string
	p    *provider.Provider
	m    *channel.Manager
	ch   string // channel id
	gid  []byte
	want []chHist // the history this member must show
	last *channel.Event
}

// chNewGo makes one of our identities in suite id. roles: the provider is
// configured for channels with roles (channel.ProviderOptions: it
// advertises the roles extension and enforces the policy) — it still
// joins and makes plain channels; otherwise a bare provider.Options.
// Channels it creates have no roles (channel.Options.NoRoles), so that
// ts-mls can be invited.
func chNewGo(t testing.TB, name string, id suite.ID, roles bool) *chGo {
	t.Helper()
	ctx := context.Background()
	o := provider.Options{Name: name, Suite: id}
	if roles {
		o = channel.ProviderOptions(o)
	} else {
		o.AllowUnverified = channel.IsPlain // it joins ts-mls members, who have no certificates
	}
	st := memory.New()
	p, err := provider.New(ctx, st, o)
	if err != nil {
		t.Fatalf("%s: provider: %v", name, err)
	}
	m := channel.NewManager(channel.NewMLSGroupProvider(p), p.Store(), channel.Options{NoRoles: true})
	return &chGo{t: t, name: name, p: p, m: m}
}

// Name is the member's identity as every member sees it: its user id (the
// ts-mls members' are their names).
func (c *chGo) Name() string { return string(c.p.UserID()) }
func (c *chGo) Impl() string { return "go" }

func (c *chGo) fail(what string, err error) {
	c.t.Helper()
	c.t.Fatalf("%s (channel) %s: %v", c.name, what, err)
}

func (c *chGo) unsupported(what string) {
	c.t.Helper()
	c.t.Fatalf("%s: channel.Manager has no %s", c.name, what)
}

func (c *chGo) KeyPackage() []byte {
	c.t.Helper()
	kp, err := c.m.GenerateKeyPackage(context.Background())
	if err != nil {
		c.fail("GenerateKeyPackage", err)
	}
	return kp
}

// CreateGroup creates a channel (its group id is random: gid is unused).
func (c *chGo) CreateGroup([]byte) {
	c.t.Helper()
	d, err := c.m.CreateChannel(context.Background(), c.name+"'s channel", false)
	if err != nil {
		c.fail("CreateChannel", err)
	}
	c.ch, c.gid = d.ID, d.GroupID
}

// Join joins from a bare Welcome (JoinWelcome), as from a plain peer.
func (c *chGo) Join(welcome, tree []byte) {
	c.t.Helper()
	d, err := c.m.JoinWelcome(context.Background(), welcome, tree)
	if err != nil {
		c.fail("JoinWelcome", err)
	}
	c.ch, c.gid = d.ID, d.GroupID
}

func (c *chGo) ExternalJoin([]byte) []byte     { c.unsupported("external join"); return nil }
func (c *chGo) GroupInfo() []byte              { c.unsupported("GroupInfo"); return nil }
func (c *chGo) ProposeAdd([]byte) []byte       { c.unsupported("Add proposal"); return nil }
func (c *chGo) ProposeRemove(string) []byte    { c.unsupported("Remove proposal"); return nil }
func (c *chGo) Public() bool                   { return false }
func (c *chGo) SetHandshake(public, tree bool) { c.unsupported("handshake options") }

// Add invites the key packages' owners (CreateInvites): the InviteToken's
// Welcome and ratchet tree, and the commit.
func (c *chGo) Add(kps ...[]byte) eiCommit {
	c.t.Helper()
	tok, commit, err := c.m.CreateInvites(context.Background(), c.ch, kps)
	if err != nil {
		c.fail("CreateInvites", err)
	}
	if tok.Channel.ID != c.ch || len(tok.Welcome) == 0 || len(tok.RatchetTree) == 0 {
		c.t.Fatalf("%s: invite token %+v", c.name, tok.Channel)
	}
	return eiCommit{Commit: commit, Welcome: tok.Welcome, Tree: tok.RatchetTree}
}

func (c *chGo) Update() eiCommit {
	c.t.Helper()
	commit, err := c.m.SelfUpdate(context.Background(), c.ch)
	if err != nil {
		c.fail("SelfUpdate", err)
	}
	return eiCommit{Commit: commit}
}

func (c *chGo) CommitPending() eiCommit {
	c.t.Helper()
	return c.Update()
}

func (c *chGo) Remove(victim string) eiCommit {
	c.t.Helper()
	commit, err := c.m.RemoveMember(context.Background(), c.ch, victim)
	if err != nil {
		c.fail("RemoveMember "+victim, err)
	}
	return eiCommit{Commit: commit}
}

// Send sends text as a chat message; the ciphertext carries our
// ChatMessage encoding, not data itself.
func (c *chGo) Send(data []byte) []byte {
	c.t.Helper()
	id, ct, err := c.m.SendMessage(context.Background(), c.ch, string(data), "")
	if err != nil {
		c.fail("SendMessage", err)
	}
	if id == "" {
		c.t.Fatalf("%s: SendMessage returned no id", c.name)
	}
	c.want = append(c.want, chHist{Sender: c.Name(), Body: string(data)})
	return ct
}

// Process receives msg on the channel (ReceiveFor). For a chat message,
// Data is the body as stored in the history.
func (c *chGo) Process(raw []byte) (*eiProcessed, error) {
	ev, err := c.m.ReceiveFor(context.Background(), c.ch, raw)
	if err != nil {
		return nil, err
	}
	c.last = ev
	out := &eiProcessed{Sender: ev.Sender.Identity, Removed: ev.Kind == channel.EventRemoved}
	if dec, err := mls.UnmarshalMessage(raw); err == nil {
		out.WireFormat = dec.WireFormat
	}
	switch ev.Kind {
	case channel.EventChatMessage:
		out.Kind, out.Data = tsmls.KindApplication, ev.Message.Body
		if ev.Message.Sender != ev.Sender.Identity {
			c.t.Fatalf("%s: history sender %q, MLS sender %q", c.name, ev.Message.Sender, ev.Sender.Identity)
		}
	case channel.EventProposal:
		out.Kind = tsmls.KindProposal
	default:
		out.Kind = tsmls.KindCommit
	}
	return out, nil
}

// View is the member's view: epoch, epoch_authenticator and exporter from
// its provider's group state, the member list from Manager.Members.
func (c *chGo) View() eiView {
	c.t.Helper()
	ctx := context.Background()
	var v eiView
	err := c.p.View(ctx, c.gid, func(g *mls.Group) error {
		exp, err := g.Export(eiExportLabel, eiExportContext, 32)
		v.Epoch, v.Auth, v.Export = g.Epoch(), g.EpochAuthenticator(), exp
		return err
	})
	if err != nil {
		c.fail("View", err)
	}
	if e, err := c.m.Epoch(ctx, c.ch); err != nil || e != v.Epoch {
		c.t.Fatalf("%s: Manager.Epoch %d, %v; group at %d", c.name, e, err, v.Epoch)
	}
	ms, err := c.m.Leaves(ctx, c.ch)
	if err != nil {
		c.fail("Members", err)
	}
	for _, mem := range ms {
		v.Members = append(v.Members, tsmls.Member{Identity: mem.Identity, LeafIndex: mem.LeafIndex})
	}
	return v
}

// checkHistory checks the channel's history against what the member sent
// and received, in order, senders being the authenticated identities.
func (c *chGo) checkHistory() {
	c.t.Helper()
	h, err := c.m.History(context.Background(), c.ch, 0, 1000)
	if err != nil {
		c.fail("History", err)
	}
	if len(h) != len(c.want) {
		c.t.Fatalf("%s: history has %d messages, want %d", c.name, len(h), len(c.want))
	}
	for i, msg := range h {
		w := c.want[i]
		if msg.Sender != w.Sender || string(msg.Body) != w.Body || strings.HasPrefix(msg.ID, "raw-") != w.Raw ||
			msg.ChannelID != c.ch {
			c.t.Fatalf("%s: history[%d] = {id %s, sender %q, body %q}, want %+v", c.name, i, msg.ID, msg.Sender, msg.Body, w)
		}
	}
}

// chChat has every member send a message to all others and checks what
// each receiver gets: ts-mls receives our ChatMessage encoding carrying the
// text; our members receive ts-mls's plain data as raw text and our own
// chat messages decoded, all with the sender's authenticated identity.
func chChat(gr *eiGroup) {
	gr.t.Helper()
	for _, from := range gr.members {
		text := fmt.Sprintf("%s (%s) at epoch %d after %s", from.Name(), from.Impl(), gr.epoch, gr.where())
		chDeliverChat(gr, from, text, from.Send([]byte(text)), gr.others(from)...)
	}
}

func chDeliverChat(gr *eiGroup, from eiMember, text string, msg []byte, receivers ...eiMember) {
	gr.t.Helper()
	for _, r := range receivers {
		got, err := r.Process(msg)
		if err != nil {
			gr.t.Fatalf("at %q: %s (%s) processing %s's message: %v", gr.where(), r.Name(), r.Impl(), from.Name(), err)
		}
		if got.Kind != tsmls.KindApplication || got.Sender != from.Name() || got.WireFormat != mls.WireFormatPrivateMessage {
			gr.t.Fatalf("at %q: %s (%s) processing %s's message: kind %s, sender %q, %v", gr.where(), r.Name(), r.Impl(),
				from.Name(), got.Kind, got.Sender, got.WireFormat)
		}
		body := got.Data
		if from.Impl() == "go" && r.Impl() == "ts" {
			cm, err := channel.UnmarshalChat(got.Data)
			if err != nil {
				gr.t.Fatalf("at %q: %s (ts-mls) got %q from %s, not a chat message: %v", gr.where(), r.Name(), got.Data, from.Name(), err)
			}
			if cm.ID == "" || cm.Timestamp.IsZero() {
				gr.t.Fatalf("at %q: chat message without id or timestamp: %+v", gr.where(), cm)
			}
			body = cm.Body
		}
		if !bytes.Equal(body, []byte(text)) {
			gr.t.Fatalf("at %q: %s (%s) got %q from %s, want %q", gr.where(), r.Name(), r.Impl(), body, from.Name(), text)
		}
		if c, ok := r.(*chGo); ok {
			raw := from.Impl() == "ts"
			if c.last.Raw != raw {
				gr.t.Fatalf("at %q: %s: message from %s (%s) has Raw=%v", gr.where(), c.name, from.Name(), from.Impl(), c.last.Raw)
			}
			c.want = append(c.want, chHist{Sender: from.Name(), Body: text, Raw: raw})
		}
	}
}

// chLocked checks that none of outs (removed members) can read a message
// the first member sends now, which the others read.
func chLocked(gr *eiGroup, outs ...eiMember) {
	gr.t.Helper()
	from := gr.members[0]
	text := "not for removed members, after " + gr.where()
	msg := from.Send([]byte(text))
	chDeliverChat(gr, from, text, msg, gr.others(from)...)
	for _, o := range outs {
		got, err := o.Process(msg)
		if err == nil {
			gr.t.Fatalf("at %q: removed %s (%s) read a later message: %+v", gr.where(), o.Name(), o.Impl(), got)
		}
		switch o.Impl() {
		case "ts":
			if !errors.Is(err, tsmls.ErrPeer) {
				gr.t.Fatalf("%s: %v", o.Name(), err)
			}
		case "go":
			if !errors.Is(err, channel.ErrNotMember) {
				gr.t.Fatalf("removed %s: want ErrNotMember, got %v", o.Name(), err)
			}
		}
	}
}

// chEvent checks the last event of one of our members: its kind and the
// identities joined and removed.
func chEvent(t testing.TB, c *chGo, kind channel.EventKind, joined, removed []string) {
	t.Helper()
	ev := c.last
	ids := func(ms []channel.Member) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Identity)
		}
		return out
	}
	if ev == nil || ev.Kind != kind || !sameSet(ids(ev.Joined), joined) || !sameSet(ids(ev.Removed), removed) {
		t.Fatalf("%s: last event %+v, want %v joined %v removed %v", c.name, ev, kind, joined, removed)
	}
}
