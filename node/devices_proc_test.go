package node_test

// Process tests of multi-device users (issue 12): real `spacepanda
// serve` and `spacepanda relay` binaries on loopback, devices linked
// through the nodes' HTTP API.

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/node"
)

// startLinkProc starts a node that waits to be linked (serve --link).
func startLinkProc(t *testing.T, name, relayURL string) *proc {
	t.Helper()
	return startProc(t, name, "--relay", relayURL, "--link")
}

// linkDevice links the waiting node dev to from's user through the API:
// from shows a code, dev enters it. It returns dev's device id.
func linkDevice(t *testing.T, from, dev *proc) string {
	t.Helper()
	ctx := context.Background()
	var offer node.LinkOfferResponse
	if err := from.c.Do(ctx, "POST", "/v1/devices/link", nil, &offer); err != nil {
		t.Fatalf("%s offers a link: %v", from.name, err)
	}
	if len(offer.Code) != 14 || offer.Code[4] != '-' {
		t.Fatalf("link code %q", offer.Code)
	}
	var acc node.LinkAcceptResponse
	if err := dev.c.Do(ctx, "POST", "/v1/devices/link/accept", node.LinkAcceptRequest{Code: offer.Code}, &acc); err != nil {
		t.Fatalf("%s enters the code: %v\n%s stderr:\n%s", dev.name, err, from.name, from.stderr)
	}
	if acc.UserID != from.uid {
		t.Fatalf("%s linked to %q, want %s's %s", dev.name, acc.UserID, from.name, from.uid)
	}
	id, err := dev.c.Identity(ctx)
	if err != nil || id.UserID != from.uid || id.DeviceID != acc.DeviceID {
		t.Fatalf("%s identity after linking: %+v %v", dev.name, id, err)
	}
	dev.uid = acc.UserID
	return acc.DeviceID
}

func deviceList(t *testing.T, p *proc) []node.DeviceInfoResponse {
	t.Helper()
	var r node.DevicesResponse
	if err := p.c.Do(context.Background(), "GET", "/v1/devices", nil, &r); err != nil {
		t.Fatalf("%s devices: %v", p.name, err)
	}
	return r.Devices
}

// devicesOf is the device ids p lists for user uid in channel ch.
func devicesOf(p *proc, ch, uid string) []string {
	ms, err := p.c.Members(context.Background(), ch)
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	var out []string
	for _, m := range ms {
		if m.UserID == uid {
			for _, d := range m.Devices {
				out = append(out, d.DeviceID)
			}
		}
	}
	slices.Sort(out)
	return out
}

func addContact(t *testing.T, p, of *proc) {
	t.Helper()
	if err := p.c.Do(context.Background(), "PUT", "/v1/contacts/"+url.PathEscape(of.uid), map[string]any{}, nil); err != nil {
		t.Fatalf("%s adds %s as a contact: %v", p.name, of.name, err)
	}
}

func hasText(h []node.RelayChatMessage, text string) bool {
	for _, m := range h {
		if m.Text == text {
			return true
		}
	}
	return false
}

func waitState(t *testing.T, p *proc, ch, state string) {
	t.Helper()
	rlEventually(t, 30*time.Second, p.name+" sees "+ch+" "+state, func() (bool, string) {
		c, err := p.c.Channel(context.Background(), ch)
		if err != nil {
			return false, err.Error()
		}
		return c.State == state, c.State
	})
}

// TestLinkedDevicesShareChannels: alice links a second node through the
// HTTP API; bob invites alice, which adds both devices; all read and
// send, and messages from either device show alice's user id. Linking a
// third device adds it to the channel (by alice's first device); the
// revoked third device is removed and reads nothing that follows;
// removing alice removes both remaining devices.
func TestLinkedDevicesShareChannels(t *testing.T) {
	relay := startRelayProc(t)
	u := relay.url()
	a1, bob := rlNode(t, "alice", u), rlNode(t, "bob", u)
	a2 := startLinkProc(t, "alice-laptop", u)
	ctx := context.Background()

	// Before linking, the new node has no user.
	var ne *node.Error
	if err := a2.c.Do(ctx, "GET", "/v1/devices", nil, nil); !asNodeError(err, &ne) || ne.Code != "not_linked" {
		t.Fatalf("devices of a node waiting to be linked: %v", err)
	}
	d2 := linkDevice(t, a1, a2)
	if ds := deviceList(t, a1); len(ds) != 2 || !slices.ContainsFunc(ds, func(d node.DeviceInfoResponse) bool { return d.DeviceID == d2 && !d.Current }) {
		t.Fatalf("alice's devices after linking: %+v", ds)
	}
	// A linked device does not link others: it has no identity key.
	if err := a2.c.Do(ctx, "POST", "/v1/devices/link", nil, nil); !asNodeError(err, &ne) || ne.Code != "no_identity_key" {
		t.Fatalf("linking from the linked device: %v", err)
	}
	// Entering a code twice is refused: the device belongs to alice now.
	if err := a2.c.Do(ctx, "POST", "/v1/devices/link/accept", node.LinkAcceptRequest{Code: "0000-0000-0000"}, nil); !asNodeError(err, &ne) || ne.Code != "already_linked" {
		t.Fatalf("a second link: %v", err)
	}

	// A channel either device creates later has both.
	notes := rlCreate(t, a2, "notes")
	rlWaitJoined(t, a1, notes)
	rlWaitConverged(t, notes, "alice", a2, a1)
	if got := devicesOf(a1, notes, a1.uid); len(got) != 2 {
		t.Fatalf("alice's devices in her own channel: %v", got)
	}

	// Bob invites alice: both of her devices join.
	ch := rlCreate(t, bob, "general")
	addContact(t, a2, bob)
	inv := rlInvite(t, bob, ch, a1)
	if len(inv.UserIDs) != 1 || inv.UserIDs[0] != a1.uid {
		t.Fatalf("invite alice: %+v", inv)
	}
	rlWaitJoined(t, a1, ch)
	rlWaitJoined(t, a2, ch)
	rlWaitConverged(t, ch, "alice,bob", a1, a2, bob)
	if got := devicesOf(bob, ch, a1.uid); len(got) != 2 || !slices.Contains(got, d2) {
		t.Fatalf("bob lists alice's devices %v, want two with %s", got, d2)
	}
	for _, p := range []*proc{a1, a2, bob} {
		rlSend(t, p, ch, "hello from "+p.name)
	}
	want := "[alice:hello from alice alice:hello from alice-laptop bob:hello from bob]"
	for _, p := range []*proc{a1, a2, bob} {
		if got := fmt.Sprint(rlTexts(rlWaitHistory(t, p, ch, 3))); got != want {
			t.Fatalf("%s history %s, want %s", p.name, got, want)
		}
	}

	// A third device, linked by the first, is added to the channel.
	a3 := startLinkProc(t, "alice-phone", u)
	d3 := linkDevice(t, a1, a3)
	rlWaitJoined(t, a3, ch)
	rlEventually(t, 30*time.Second, "bob lists alice's three devices", func() (bool, string) {
		got := devicesOf(bob, ch, a1.uid)
		return len(got) == 3 && slices.Contains(got, d3), fmt.Sprint(got)
	})
	rlWaitConverged(t, ch, "alice,bob", a1, a2, a3, bob)
	rlSend(t, a3, ch, "hello from the phone")
	for _, p := range []*proc{a1, a2, bob} {
		h := rlWaitHistory(t, p, ch, 4)
		if !slices.Contains(rlTexts(h), "alice:hello from the phone") {
			t.Fatalf("%s history %v", p.name, rlTexts(h))
		}
	}

	// Revoking the phone removes it from the channel; it reads nothing
	// that follows, and the relay refuses it.
	var rv node.RevokeResponse
	if err := a1.c.Do(ctx, "DELETE", "/v1/devices/"+d3, nil, &rv); err != nil {
		t.Fatalf("revoke the phone: %v", err)
	}
	if !rv.Revoked || rv.Channels != 2 { // general and notes
		t.Fatalf("revoke: %+v", rv)
	}
	rlEventually(t, 30*time.Second, "the phone leaves alice's devices in the channel", func() (bool, string) {
		got := devicesOf(bob, ch, a1.uid)
		return len(got) == 2 && !slices.Contains(got, d3), fmt.Sprint(got)
	})
	rlWaitConverged(t, ch, "alice,bob", a1, a2, bob)
	if ds := deviceList(t, a1); !slices.ContainsFunc(ds, func(d node.DeviceInfoResponse) bool { return d.DeviceID == d3 && d.Revoked }) {
		t.Fatalf("alice's devices after the revocation: %+v", ds)
	}
	if err := a1.c.Do(ctx, "DELETE", "/v1/devices/"+a1DeviceID(t, a1), nil, nil); !asNodeError(err, &ne) || ne.Code != "revoke_self" {
		t.Fatalf("revoking itself: %v", err)
	}
	rlSend(t, bob, ch, "after the revocation")
	for _, p := range []*proc{a1, a2} {
		rlEventually(t, 30*time.Second, p.name+" reads the message after the revocation", func() (bool, string) {
			return hasText(rlHistory(t, p, ch), "after the revocation"), ""
		})
	}
	if hasText(rlHistory(t, a3, ch), "after the revocation") {
		t.Fatal("the revoked phone read a message sent after its revocation")
	}
	if err := a3.c.Do(ctx, "GET", "/v1/devices", nil, nil); !asNodeError(err, &ne) || ne.Code != "device_revoked" {
		t.Fatalf("the revoked phone's directory request: %v", err)
	}

	// Removing alice removes both her devices.
	var rm node.CommitResponse
	if err := bob.c.Do(ctx, "DELETE", rlPath(ch, "/members/", url.PathEscape(a1.uid)), nil, &rm); err != nil {
		t.Fatalf("bob removes alice: %v", err)
	}
	waitState(t, a1, ch, "removed")
	waitState(t, a2, ch, "removed")
	if _, ms, err := rlState(bob, ch); err != nil || ms != "bob" {
		t.Fatalf("bob's members after removing alice: %s %v", ms, err)
	}
	rlSend(t, bob, ch, "after alice left")
	rlWaitHistory(t, bob, ch, 6)
	for _, p := range []*proc{a1, a2, a3} {
		if hasText(rlHistory(t, p, ch), "after alice left") {
			t.Fatalf("%s read a message sent after alice's removal", p.name)
		}
	}
}

func a1DeviceID(t *testing.T, p *proc) string {
	t.Helper()
	id, err := p.c.Identity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return id.DeviceID
}

func asNodeError(err error, ne **node.Error) bool {
	e, ok := err.(*node.Error)
	if ok {
		*ne = e
	}
	return ok && !strings.Contains(e.Code, " ")
}

// TestLinkCLI links a device with the `spacepanda link` command: the
// first device shows the code, the new one (serve --link) enters it, and
// --list on the first then names both devices.
func TestLinkCLI(t *testing.T) {
	relay := startRelayProc(t)
	a1 := rlNode(t, "alice", relay.url())
	a2 := startLinkProc(t, "alice-laptop", relay.url())
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, spacepandaBin(t), append([]string{"link"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("spacepanda link %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	// Before it is linked the new device has no identity key: no
	// fingerprint (one of the zero key would be every such device's).
	if id, err := a2.c.Identity(context.Background()); err != nil || id.UserID != "" || id.Fingerprint != "" {
		t.Fatalf("the device waiting to be linked: %+v %v, want no user id and no fingerprint", id, err)
	}
	out := run("--node", a1.c.BaseURL, "--no-wait")
	code := regexp.MustCompile(`link code: ([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})`).FindStringSubmatch(out)
	if code == nil {
		t.Fatalf("no code in %q", out)
	}
	if out := run("--node", a2.c.BaseURL, "--code", strings.ToLower(code[1])); !strings.Contains(out, a1.uid) {
		t.Fatalf("accept: %q, want alice's user id %s", out, a1.uid)
	}
	id, err := a2.c.Identity(context.Background())
	if err != nil || id.UserID != a1.uid {
		t.Fatalf("the new device's identity: %+v %v", id, err)
	}
	if out := run("--node", a1.c.BaseURL, "--list"); !strings.Contains(out, id.DeviceID) || strings.Count(out, "\n") != 2 {
		t.Fatalf("--list: %q, want 2 devices with %s", out, id.DeviceID)
	}
}

// TestLinkWrongCode: a code under which no offer is open, and a code
// with an open offer's mailbox but another secret (the PAKE fails at the
// offering device, which ends the offer), are each refused with
// link_failed; the new device stays without a user, and links with a
// fresh code afterwards.
func TestLinkWrongCode(t *testing.T) {
	relay := startRelayProc(t)
	a1 := rlNode(t, "alice", relay.url())
	a2 := startLinkProc(t, "alice-laptop", relay.url())
	ctx := context.Background()
	var ne *node.Error
	accept := func(code string) error {
		return a2.c.Do(ctx, "POST", "/v1/devices/link/accept", node.LinkAcceptRequest{Code: code}, nil)
	}
	if err := accept("not a code"); !asNodeError(err, &ne) || ne.Code != "bad_link_code" {
		t.Fatalf("a malformed code: %v", err)
	}
	var offer node.LinkOfferResponse
	if err := a1.c.Do(ctx, "POST", "/v1/devices/link", nil, &offer); err != nil {
		t.Fatal(err)
	}
	// Another mailbox: no offer there.
	other := "ZZZZ" + offer.Code[4:]
	if offer.Code[:4] == "ZZZZ" {
		other = "YYYY" + offer.Code[4:]
	}
	if err := accept(other); !asNodeError(err, &ne) || ne.Code != "link_failed" {
		t.Fatalf("a code without an offer: %v", err)
	}
	// The offer's mailbox, another secret.
	last := offer.Code[len(offer.Code)-1]
	wrong := offer.Code[:len(offer.Code)-1] + map[bool]string{true: "1", false: "0"}[last == '0']
	if err := accept(wrong); !asNodeError(err, &ne) || ne.Code != "link_failed" {
		t.Fatalf("a wrong secret: %v", err)
	}
	if err := a2.c.Do(ctx, "GET", "/v1/devices", nil, nil); !asNodeError(err, &ne) || ne.Code != "not_linked" {
		t.Fatalf("after failed links the device has a user: %v", err)
	}
	if ds := deviceList(t, a1); len(ds) != 1 {
		t.Fatalf("alice's devices after failed links: %+v", ds)
	}
	// The spent offer is gone; the right code of it fails too.
	if err := accept(offer.Code); !asNodeError(err, &ne) || ne.Code != "link_failed" {
		t.Fatalf("the code of an offer a wrong guess ended: %v", err)
	}
	linkDevice(t, a1, a2)
}

// TestLinkSurvivesOfferingDeviceCrash: the offering device is killed
// (SIGKILL) as soon as the new device is linked, usually before its
// background commit adds the new device to the channel; started again,
// it adds the device its channel lacks (reconcileDevices), and both
// devices read and send.
func TestLinkSurvivesOfferingDeviceCrash(t *testing.T) {
	relay := startRelayProc(t)
	a1, bob := rlNode(t, "alice", relay.url()), rlNode(t, "bob", relay.url())
	ch := rlCreate(t, bob, "general")
	rlInvite(t, bob, ch, a1)
	rlWaitJoined(t, a1, ch)
	ep := rlWaitConverged(t, ch, "alice,bob", a1, bob)
	a2 := startLinkProc(t, "alice-laptop", relay.url())
	linkDevice(t, a1, a2)
	a1.kill()
	e, _, _ := rlState(bob, ch)
	t.Logf("epoch at bob when alice's first device died: %d (added before the crash: %v)", e, e > ep)
	a1.start()
	addContact(t, a2, bob)
	rlWaitJoined(t, a2, ch)
	rlWaitConverged(t, ch, "alice,bob", a1, a2, bob)
	if got := devicesOf(bob, ch, a1.uid); len(got) != 2 {
		t.Fatalf("bob lists alice's devices %v", got)
	}
	rlSend(t, a2, ch, "from the laptop")
	rlSend(t, a1, ch, "from the first device")
	for _, p := range []*proc{a1, a2, bob} {
		h := rlWaitHistory(t, p, ch, 2)
		if got := fmt.Sprint(rlTexts(h)); got != "[alice:from the first device alice:from the laptop]" {
			t.Fatalf("%s history %s", p.name, got)
		}
	}
}
