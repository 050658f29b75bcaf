package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/relay/api"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
)

// The attacks of issues 12 and 13 on the relay, each against a real relay
// process (the test binary running Main), on SQLite and, when
// SPACEPANDA_TEST_POSTGRES is set, PostgreSQL, through relay/client as a
// node uses it.

// forEachRelayProcess runs f per backend; start starts the relay, or
// restarts it on the same data after a kill.
func forEachRelayProcess(t *testing.T, f func(t *testing.T, start func() *relayProc)) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		f(t, func() *relayProc { return startRelay(t, "--data", dir) })
	})
	t.Run("postgres", func(t *testing.T) {
		url := freshPG(t)
		f(t, func() *relayProc { return startRelay(t, "--postgres", url) })
	})
}

func (id *ident) relayClient(base string, o relayclient.Options) *relayclient.Client {
	return relayclient.New(base, relayclient.Identity{Certificate: id.cert, Signer: id.signer}, o)
}

// squatChild is the squatter's process: it knows the victim's (public)
// certificate and nothing else of the victim, makes its own identity and
// device, and tries to log in as the victim's user id, first with a
// certificate naming the victim's identity key but signed by its own,
// then with the victim's certificate and its own device key. It prints
// one line per attempt: "refused CODE" or "ACCEPTED".
func squatChild(arg string) int {
	var in struct {
		Base       string
		VictimCert []byte
	}
	if err := json.Unmarshal([]byte(arg), &in); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	t := &childT{}
	mallory := newIdent(t, "mallory")
	victim := &ident{cert: in.VictimCert}
	for _, cert := range [][]byte{squatCertificate(t, victim, mallory), in.VictimCert} {
		c := relayclient.New(in.Base, relayclient.Identity{Certificate: cert, Signer: mallory.signer}, relayclient.Options{})
		var e *relayclient.Error
		switch err := c.Login(context.Background()); {
		case err == nil:
			fmt.Println("ACCEPTED")
		case errors.As(err, &e):
			fmt.Println("refused", e.Code)
		default:
			fmt.Println("error", err)
		}
	}
	return 0
}

// childT is the testing.TB of a child process: failures end it.
type childT struct{ testing.TB }

func (childT) Helper()                         {}
func (childT) Fatal(args ...any)               { fmt.Fprintln(os.Stderr, args...); os.Exit(3) }
func (childT) Fatalf(f string, args ...any)    { fmt.Fprintf(os.Stderr, f+"\n", args...); os.Exit(3) }
func (childT) Errorf(f string, args ...any)    { fmt.Fprintf(os.Stderr, f+"\n", args...); os.Exit(3) }
func (childT) Logf(format string, args ...any) {}

// TestProcessNameSquat (issue 12): a squatter process that logs in first,
// as a user id whose identity key it does not hold, is refused, and owns
// nothing: the real user's device logs in afterwards and is the only one
// in the directory. (On the name-bound relay the first login bound the
// name: the real user was refused with key_mismatch.)
func TestProcessNameSquat(t *testing.T) {
	forEachRelayProcess(t, func(t *testing.T, start func() *relayProc) {
		p := start()
		alice, bob := newIdent(t, "alice"), newIdent(t, "bob")
		a, _ := json.Marshal(map[string]any{"Base": p.base, "VictimCert": alice.cert})
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "SPACEPANDA_SQUAT_CHILD="+string(a))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("squatter: %v; stderr: %s", err, &stderr)
		}
		if got := strings.TrimSpace(string(out)); got != "refused bad_certificate\nrefused bad_signature" {
			t.Fatalf("squatter's logins: %q", got)
		}
		ctx := context.Background()
		ca := alice.relayClient(p.base, relayclient.Options{})
		if err := ca.Login(ctx); err != nil {
			t.Fatalf("the real user after the squatter: %v", err)
		}
		if _, err := ca.PublishKeyPackages(ctx, [][]byte{alice.keyPackage(t, false)}, nil); err != nil {
			t.Fatal(err)
		}
		cb := bob.relayClient(p.base, relayclient.Options{})
		kps, err := cb.ClaimKeyPackages(ctx, alice.user.UserID())
		if err != nil || len(kps) != 1 || kps[0].DeviceID != alice.device() {
			t.Fatalf("alice's key packages: %+v %v", kps, err)
		}
		dir, err := cb.Devices(ctx, alice.user.UserID())
		if err != nil || len(dir.Devices) != 1 || dir.Devices[0].DeviceID != alice.device() {
			t.Fatalf("alice's directory: %+v %v", dir, err)
		}
	})
}

// TestProcessRevokedDevice (issue 12): a claim returns one key package per
// device; after a revocation the device's requests, its logins (also
// after the relay is killed and restarted) and its key packages are
// refused, and the directory tells other users' nodes.
func TestProcessRevokedDevice(t *testing.T) {
	forEachRelayProcess(t, func(t *testing.T, start func() *relayProc) {
		ctx := context.Background()
		p := start()
		alice, bob := newIdent(t, "alice"), newIdent(t, "bob")
		phone := alice.another(t, "alice-phone")
		ca, cp, cb := alice.relayClient(p.base, relayclient.Options{}), phone.relayClient(p.base, relayclient.Options{}), bob.relayClient(p.base, relayclient.Options{})
		for _, c := range []struct {
			id *ident
			c  *relayclient.Client
		}{{alice, ca}, {phone, cp}} {
			if _, err := c.c.PublishKeyPackages(ctx, [][]byte{c.id.keyPackage(t, false), c.id.keyPackage(t, false)}, c.id.keyPackage(t, true)); err != nil {
				t.Fatal(err)
			}
		}
		kps, err := cb.ClaimKeyPackages(ctx, alice.user.UserID())
		if err != nil || len(kps) != 2 || kps[0].DeviceID == kps[1].DeviceID {
			t.Fatalf("one key package per device: %+v %v", kps, err)
		}
		if err := ca.Revoke(ctx, phone.revocation(t)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := cp.KeyPackageCount(ctx); !errors.Is(err, relayclient.ErrRevoked) {
			t.Fatalf("the revoked device's request: %v", err)
		}
		p.kill()
		p = start()
		cp = phone.relayClient(p.base, relayclient.Options{})
		if err := cp.Login(ctx); !errors.Is(err, relayclient.ErrRevoked) {
			t.Fatalf("the revoked device's login after a restart: %v", err)
		}
		cb = bob.relayClient(p.base, relayclient.Options{})
		for range 3 { // alice's one-time key package, then her last resort: never the phone's
			kps, err := cb.ClaimKeyPackages(ctx, alice.user.UserID())
			if err != nil || len(kps) != 1 || kps[0].DeviceID != alice.device() {
				t.Fatalf("claim after the revocation: %+v %v", kps, err)
			}
		}
		dir, err := cb.Devices(ctx, alice.user.UserID())
		if err != nil || len(dir.Devices) != 1 || len(dir.Revocations) != 1 {
			t.Fatalf("directory: %+v %v", dir, err)
		}
		rs := identity.NewRevocationSet()
		r, err := identity.ParseRevocation(dir.Revocations[0])
		if err != nil || rs.Add(r) != nil || !rs.Revoked(r.IdentityKey, phone.dev) {
			t.Fatalf("the listed revocation does not verify: %v", err)
		}
		if _, _, err := alice.relayClient(p.base, relayclient.Options{}).KeyPackageCount(ctx); err != nil {
			t.Fatalf("alice's other device: %v", err)
		}
	})
}

// TestProcessBounds (issue 13): oversized messages and Welcomes are
// refused with 413; a Welcome for a non-member is refused; twelve entries
// at the size limits (a 4 MiB commit, eleven 1 MiB messages) and six
// Welcomes of 1 MiB with 3 MiB trees, queued for an offline member, reach
// it in pages that fit the client's bounds, so it always progresses (on
// the name-bound relay, twelve 5 MiB entries made every page exceed the
// client's read limit, forever).
func TestProcessBounds(t *testing.T) {
	forEachRelayProcess(t, func(t *testing.T, start func() *relayProc) {
		ctx := context.Background()
		p := start()
		alice, bob, carol := newIdent(t, "alice"), newIdent(t, "bob"), newIdent(t, "carol")
		ca, cb := alice.relayClient(p.base, relayclient.Options{}), bob.relayClient(p.base, relayclient.Options{})
		gid := []byte("bounded")
		if err := cb.Login(ctx); err != nil { // bob is in the directory, as an invitee is
			t.Fatal(err)
		}
		mg := newMGroup(t, alice, gid)
		if err := ca.CreateGroup(ctx, mg.groupInfo(alice)); err != nil {
			t.Fatal(err)
		}
		add := mg.commit(alice, mls.CommitOptions{}, bob)
		if _, err := ca.PostCommit(ctx, gid, add.commit, add.groupInfo); err != nil {
			t.Fatal(err)
		}
		add.merge()
		welcome := func(n int) []byte { return sizedWelcome(t, n) }
		for name, err := range map[string]error{
			"application over 1 MiB": post(ca, gid, sizedPrivMsg(t, gid, 1, mls.ContentTypeApplication, api.MaxApplicationSize+1)),
			"commit over 4 MiB":      post(ca, gid, sizedPrivMsg(t, gid, 1, mls.ContentTypeCommit, api.MaxCommitSize+1)),
			"Welcome over 1 MiB":     postWelcome(ca, gid, bob, welcome(api.MaxWelcomeSize+1), nil),
			"tree over 3 MiB":        postWelcome(ca, gid, bob, welcome(100), make([]byte, api.MaxRatchetTreeSize+1)),
		} {
			if !errors.Is(err, relayclient.ErrTooLarge) {
				t.Errorf("%s: %v", name, err)
			}
		}
		if err := postWelcome(ca, gid, carol, welcome(100), nil); !errors.Is(err, relayclient.ErrNotMember) {
			t.Fatalf("Welcome for a non-member: %v", err)
		}
		if err := post(ca, gid, sizedPrivMsg(t, gid, 5, mls.ContentTypeApplication, 100)); !errors.Is(err, relayclient.ErrFutureEpoch) {
			t.Fatalf("future epoch: %v", err)
		}

		// Bob is offline while twelve entries at the limits arrive (under
		// the race detector, which makes MiB-sized work crawl, four: still
		// more than a page holds).
		n := 12
		if raceEnabled {
			n = 4
		}
		big := mg.sizedCommit(alice, api.MaxCommitSize)
		if _, err := ca.PostCommit(ctx, gid, big.commit, big.groupInfo); err != nil {
			t.Fatal(err)
		}
		for range n - 1 {
			if err := post(ca, gid, sizedPrivMsg(t, gid, 2, mls.ContentTypeApplication, api.MaxApplicationSize)); err != nil {
				t.Fatal(err)
			}
		}
		for range n / 2 {
			if err := postWelcome(ca, gid, bob, welcome(api.MaxWelcomeSize), make([]byte, api.MaxRatchetTreeSize)); err != nil {
				t.Fatal(err)
			}
		}
		// Bob comes back: he reads everything, page by page.
		var after uint64 = 1
		seen, pages := 0, 0
		for pages < 30 {
			es, next, err := cb.Messages(ctx, gid, relayclient.Page{After: after, Limit: api.MaxPageEntries})
			if err != nil {
				t.Fatalf("page %d: %v", pages, err)
			}
			if len(es) == 0 {
				break
			}
			seen, after, pages = seen+len(es), next, pages+1
		}
		if seen != n {
			t.Fatalf("bob read %d of %d entries in %d pages", seen, n, pages)
		}
		got := 0
		for range 30 {
			ws, err := cb.Welcomes(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(ws) == 0 {
				break
			}
			for _, w := range ws {
				if len(w.Welcome) != api.MaxWelcomeSize || len(w.RatchetTree) != api.MaxRatchetTreeSize {
					t.Fatalf("welcome of %d+%d bytes", len(w.Welcome), len(w.RatchetTree))
				}
				if err := cb.AckWelcome(ctx, w.ID); err != nil {
					t.Fatal(err)
				}
				got++
			}
		}
		if got != n/2 {
			t.Fatalf("bob read %d of %d Welcomes", got, n/2)
		}
		t.Logf("%d log entries at the size limits in %d pages, %d Welcomes of 4 MiB", n, pages, n/2)
	})
}

func post(c *relayclient.Client, gid, msg []byte) error {
	_, err := c.PostMessage(context.Background(), gid, relayclient.Post{Message: msg})
	return err
}

func postWelcome(c *relayclient.Client, gid []byte, to *ident, w, tree []byte) error {
	_, err := c.PostWelcome(context.Background(), relayclient.Welcome{Recipients: []string{to.uid()}, Welcome: w, RatchetTree: tree, GroupID: gid})
	return err
}

// sizedWelcome is an MLSMessage(Welcome) of n bytes.
func sizedWelcome(t testing.TB, n int) []byte {
	t.Helper()
	base := len(mlsBytes(t, &mls.Welcome{CipherSuite: 1, Secrets: []mls.EncryptedGroupSecrets{}, EncryptedGroupInfo: []byte{}}))
	for c := max(0, n-base-8); c <= n-base; c++ {
		if m := mlsBytes(t, &mls.Welcome{CipherSuite: 1, Secrets: []mls.EncryptedGroupSecrets{}, EncryptedGroupInfo: make([]byte, c)}); len(m) == n {
			return m
		}
	}
	t.Fatalf("no Welcome of %d bytes", n)
	return nil
}

// TestProcessLinkMailbox (issue 12): a new device without a certificate
// links through the relay's mailbox (the join side unauthenticated), then
// logs in as the user; flooding the join side is refused.
func TestProcessLinkMailbox(t *testing.T) {
	forEachRelayProcess(t, func(t *testing.T, start func() *relayProc) {
		ctx := context.Background()
		p := start()
		alice := newIdent(t, "alice")
		ca := alice.relayClient(p.base, relayclient.Options{})
		offer, err := identity.NewLinkOffer(nil)
		if err != nil {
			t.Fatal(err)
		}
		mb := offer.Code().Mailbox()
		if _, err := ca.OpenLinkMailbox(ctx, mb); err != nil {
			t.Fatal(err)
		}
		if _, err := ca.PostLink(ctx, mb, relayclient.LinkOffer, offer.Hello()); err != nil {
			t.Fatal(err)
		}
		// The new device has a key, no certificate, and no token.
		nd := newIdent(t, "new device") // its user key is thrown away: only the device key is used
		dev, _ := identity.NewDevice(nd.dev, nd.cs.ID(), nd.pub())
		code, _ := identity.ParseLinkCode(offer.Code().Text())
		join, err := identity.NewLinkJoin(code, dev, nd.signer, "laptop", nil)
		if err != nil {
			t.Fatal(err)
		}
		anon := relayclient.New(p.base, relayclient.Identity{}, relayclient.Options{MaxRetries429: -1})
		ms, next, err := anon.LinkMessages(ctx, mb, relayclient.LinkOffer, 0, 5*time.Second)
		if err != nil || len(ms) != 1 {
			t.Fatal(ms, err)
		}
		req, err := join.Respond(ms[0].Message)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := anon.PostLink(ctx, mb, relayclient.LinkJoin, req); err != nil {
			t.Fatal(err)
		}
		rq, _, err := ca.LinkMessages(ctx, mb, relayclient.LinkJoin, 0, 5*time.Second)
		if err != nil || len(rq) != 1 {
			t.Fatal(rq, err)
		}
		if _, err := offer.ReadRequest(rq[0].Message); err != nil {
			t.Fatal(err)
		}
		sealed, _, err := offer.Accept(alice.user, time.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ca.PostLink(ctx, mb, relayclient.LinkOffer, sealed); err != nil {
			t.Fatal(err)
		}
		ms, _, err = anon.LinkMessages(ctx, mb, relayclient.LinkOffer, next, 5*time.Second)
		if err != nil || len(ms) != 1 {
			t.Fatal(ms, err)
		}
		cert, err := join.Finish(ms[0].Message)
		if err != nil {
			t.Fatal(err)
		}
		enc, _ := cert.Marshal()
		linked := relayclient.New(p.base, relayclient.Identity{Certificate: enc, Signer: nd.signer}, relayclient.Options{})
		if err := linked.Login(ctx); err != nil || linked.UserID() != alice.user.UserID() {
			t.Fatalf("the linked device: %v %v", linked.UserID(), err)
		}

		// A flood of join messages from one address: the mailbox takes four
		// in all, then refuses; the address's bucket runs out.
		var full, limited bool
		for i := 0; i < 30 && !limited; i++ {
			_, err := anon.PostLink(ctx, mb, relayclient.LinkJoin, req)
			full = full || errors.Is(err, relayclient.ErrConflict)
			limited = errors.Is(err, relayclient.ErrRateLimited)
			if err != nil && !full && !limited {
				t.Fatalf("flood %d: %v", i, err)
			}
		}
		if !full || !limited {
			t.Fatalf("flood: mailbox full %v, rate limited %v", full, limited)
		}
		// The owner is not affected by the flooder's bucket.
		if _, _, err := ca.LinkMessages(ctx, mb, relayclient.LinkJoin, 0, 0); err != nil {
			t.Fatal(err)
		}
	})
}
