package relayclient_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/internal/apitest"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
	"github.com/spacepanda/spacepanda/relay"
	"github.com/spacepanda/spacepanda/relay/api"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
)

// device is a test device of a user.
type device struct {
	user   *identity.PrivateIdentity
	cs     *suite.Suite
	signer *suite.Signer
	cert   []byte
	c      *relayclient.Client
}

func newUser(t *testing.T) *identity.PrivateIdentity {
	t.Helper()
	u, err := identity.GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func newDevice(t *testing.T, base string, u *identity.PrivateIdentity) *device {
	t.Helper()
	cs := suite.MustNew(suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	priv, _, err := cs.GenerateSignatureKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := cs.NewSigner(priv)
	id, _ := identity.NewDeviceID(nil)
	d, _ := identity.NewDevice(id, cs.ID(), signer.PublicKey())
	cert, err := u.Certify(d, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := cert.Marshal()
	return &device{user: u, cs: cs, signer: signer, cert: enc,
		c: relayclient.New(base, relayclient.Identity{Certificate: enc, Signer: signer}, checked(t))}
}

func (d *device) keyPackage(t *testing.T, lastResort bool) []byte {
	t.Helper()
	cert, _ := identity.ParseCertificate(d.cert)
	ext, _ := cert.Extension()
	kp, _, err := mls.NewKeyPackage(d.cs, nil, d.signer, tree.NewBasicCredential([]byte(d.user.UserID())),
		mls.KeyPackageOptions{LastResort: lastResort, LeafExtensions: tree.Extensions{ext}})
	if err != nil {
		t.Fatal(err)
	}
	return marshal(t, kp)
}

func marshal(t *testing.T, body wire.Marshaler) []byte {
	t.Helper()
	m, err := mls.NewMessage(body)
	if err != nil {
		t.Fatal(err)
	}
	b, err := wire.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func privMsg(t *testing.T, gid []byte, epoch uint64, ct mls.ContentType, size int) []byte {
	return marshal(t, &mls.PrivateMessage{GroupID: gid, Epoch: epoch, ContentType: ct, AuthenticatedData: []byte{},
		EncryptedSenderData: make([]byte, 16), Ciphertext: make([]byte, size)})
}

func startRelay(t *testing.T) string {
	t.Helper()
	st, err := relay.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := relay.New(st, relay.Options{Rate: 1e6, Burst: 1e6})
	// Every exchange of every client with this relay is checked against
	// the relay's OpenAPI document, on the server's side.
	hs := httptest.NewServer(apitest.Handler(t, relayDoc(t), srv.Handler()))
	t.Cleanup(func() { hs.Close(); srv.Close(); st.Close() })
	return hs.URL
}

func relayDoc(t *testing.T) *apitest.Doc {
	t.Helper()
	d, err := apitest.Parse(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// checked is client options whose HTTP client checks every exchange
// against the relay's OpenAPI document, on the client's side.
func checked(t *testing.T) relayclient.Options {
	return relayclient.Options{HTTP: &http.Client{Transport: apitest.Transport(t, relayDoc(t), nil)}}
}

// TestClient walks every method against a real relay: two devices of
// alice and one of bob.
func TestClient(t *testing.T) {
	ctx := context.Background()
	base := startRelay(t)
	alice := newUser(t)
	a1, a2, b := newDevice(t, base, alice), newDevice(t, base, alice), newDevice(t, base, newUser(t))
	if err := a1.c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	if a1.c.UserID() != alice.UserID() {
		t.Fatal(a1.c.UserID())
	}
	for _, d := range []*device{a1, a2} {
		if n, err := d.c.PublishKeyPackages(ctx, [][]byte{d.keyPackage(t, false)}, d.keyPackage(t, true)); err != nil || n != 2 {
			t.Fatal(n, err)
		}
	}
	if n, lr, err := a2.c.KeyPackageCount(ctx); err != nil || n != 1 || !lr {
		t.Fatal(n, lr, err)
	}
	kps, err := b.c.ClaimKeyPackages(ctx, alice.UserID())
	if err != nil || len(kps) != 2 || kps[0].LastResort || kps[0].DeviceID == kps[1].DeviceID {
		t.Fatalf("claim: %+v %v", kps, err)
	}
	if _, err := b.c.ClaimKeyPackages(ctx, newUser(t).UserID()); !errors.Is(err, relayclient.ErrNotFound) {
		t.Fatal(err)
	}
	dir, err := b.c.Devices(ctx, alice.UserID())
	if err != nil || len(dir.Devices) != 2 || dir.UserID != alice.UserID() {
		t.Fatalf("devices: %+v %v", dir, err)
	}

	// Revoking a2: its next request fails as revoked, its key packages go.
	rv, _ := alice.Revoke(a2.c.DeviceID(), time.Now())
	rvb, _ := rv.Marshal()
	if err := a1.c.Revoke(ctx, rvb); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a2.c.KeyPackageCount(ctx); !errors.Is(err, relayclient.ErrRevoked) {
		t.Fatalf("revoked device: %v", err)
	}
	if kps, _ := b.c.ClaimKeyPackages(ctx, alice.UserID()); len(kps) != 1 || kps[0].DeviceID != a1.c.DeviceID().String() || !kps[0].LastResort {
		t.Fatalf("claim after revocation: %+v", kps)
	}
	if dir, _ := b.c.Devices(ctx, alice.UserID()); len(dir.Devices) != 1 || len(dir.Revocations) != 1 {
		t.Fatalf("directory after revocation: %+v", dir)
	}

	// Groups.
	gid := []byte("client group")
	g := a1.createMLSGroup(t, gid)
	if err := a1.c.CreateGroup(ctx, groupInfoOf(t, g)); err != nil {
		t.Fatal(err)
	}
	w := relayclient.Welcome{Recipients: []string{string(b.c.UserID())}, Welcome: marshal(t, &mls.Welcome{CipherSuite: 1, Secrets: []mls.EncryptedGroupSecrets{}, EncryptedGroupInfo: []byte("x")}), GroupID: gid}
	if _, err := a1.c.PostWelcome(ctx, w); !errors.Is(err, relayclient.ErrNotMember) {
		t.Fatalf("Welcome before the commit: %v", err)
	}
	var re *relayclient.Error
	if _, err := a1.c.PostCommit(ctx, gid, privMsg(t, gid, 0, mls.ContentTypeCommit, 32), groupInfoOf(t, g)); !errors.As(err, &re) || re.Code != "private_handshake" {
		t.Fatalf("a commit the relay cannot read: %v", err)
	}
	if _, err := a1.c.PostCommit(ctx, gid, forgedCommit(t, g), groupInfoOf(t, g)); !errors.Is(err, relayclient.ErrInvalidCommit) {
		t.Fatalf("a forged commit: %v", err)
	}
	res, commit, gi := commitAdding(t, g, b)
	if seq, err := a1.c.PostCommit(ctx, gid, commit, gi); err != nil || seq != 1 {
		t.Fatal(seq, err)
	}
	var ce *relayclient.CommitConflictError
	_, stale, staleGI := commitAdding(t, g, nil)
	if _, err := a1.c.PostMessage(ctx, gid, relayclient.Post{Message: stale, Kind: relayclient.KindCommit, GroupInfo: staleGI}); !errors.As(err, &ce) || ce.CurrentEpoch != 1 {
		t.Fatalf("conflict: %v", err)
	}
	var ee *relayclient.EpochError
	if _, err := b.c.PostMessage(ctx, gid, relayclient.Post{Message: privMsg(t, gid, 9, mls.ContentTypeApplication, 32)}); !errors.As(err, &ee) || ee.CurrentEpoch != 1 || !errors.Is(err, relayclient.ErrFutureEpoch) {
		t.Fatalf("future epoch: %v", err)
	}
	if _, err := b.c.PostMessage(ctx, gid, relayclient.Post{Message: privMsg(t, gid, 1, mls.ContentTypeApplication, api.MaxApplicationSize)}); !errors.Is(err, relayclient.ErrTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	for range 5 {
		if _, err := b.c.PostMessage(ctx, gid, relayclient.Post{Message: privMsg(t, gid, 1, mls.ContentTypeApplication, 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	es, next, err := b.c.Messages(ctx, gid, relayclient.Page{MaxBytes: len(commit) + 2100})
	if err != nil || len(es) != 3 || next != 3 || es[0].SenderDevice != a1.c.DeviceID().String() || es[1].Sender != string(b.c.UserID()) {
		t.Fatalf("page: %d entries, next %d, %v", len(es), next, err)
	}
	es, next, _ = b.c.Messages(ctx, gid, relayclient.Page{After: next, Limit: 2})
	if len(es) != 2 || next != 5 {
		t.Fatalf("page 2: %d next %d", len(es), next)
	}
	start := time.Now()
	if es, next, _ := b.c.Messages(ctx, gid, relayclient.Page{After: 6, Wait: 200 * time.Millisecond}); len(es) != 0 || next != 6 || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("long-poll: %d %d after %v", len(es), next, time.Since(start))
	}
	if err := b.c.SetCursor(ctx, gid, 4); err != nil {
		t.Fatal(err)
	}
	if c, _ := b.c.Cursor(ctx, gid); c != 4 {
		t.Fatal(c)
	}
	gs, err := b.c.Group(ctx, gid)
	ctxt := res.State.Context()
	if err != nil || gs.Epoch != 1 || len(gs.Members) != 2 || !bytes.Equal(gs.TreeHash, ctxt.TreeHash) || gs.LastSeq != 6 {
		t.Fatalf("group: %+v %v", gs, err)
	}
	// A batch: each message's outcome in its place, a future epoch as an
	// *EpochError.
	rs, err := b.c.PostMessages(ctx, gid, [][]byte{privMsg(t, gid, 1, mls.ContentTypeApplication, 100),
		privMsg(t, gid, 9, mls.ContentTypeApplication, 100), privMsg(t, gid, 1, mls.ContentTypeApplication, 100)})
	if err != nil || len(rs) != 3 || rs[0].Err != nil || rs[0].Seq != 7 || !errors.As(rs[1].Err, &ee) || ee.CurrentEpoch != 1 ||
		rs[2].Err != nil || rs[2].Seq != 8 {
		t.Fatalf("batch: %+v %v", rs, err)
	}
	es1, err := b.c.EpochState(ctx, gid, 1)
	if err != nil || es1.Epoch != 1 || !bytes.Equal(es1.TreeHash, ctxt.TreeHash) || !bytes.Equal(es1.ConfirmedTranscriptHash, ctxt.ConfirmedTranscriptHash) {
		t.Fatalf("epoch state: %+v %v", es1, err)
	}
	if _, err := b.c.EpochState(ctx, gid, 2); !errors.Is(err, relayclient.ErrNotFound) {
		t.Fatalf("epoch state of a future epoch: %v", err)
	}

	// Welcomes.
	ids, err := a1.c.PostWelcome(ctx, w)
	if err != nil || len(ids) != 1 {
		t.Fatal(ids, err)
	}
	ws, err := b.c.Welcomes(ctx, time.Second)
	if err != nil || len(ws) != 1 || ws[0].From != string(alice.UserID()) || ws[0].FromDevice != a1.c.DeviceID().String() || ws[0].CreatedAt.IsZero() {
		t.Fatalf("welcomes: %+v %v", ws, err)
	}
	if err := b.c.AckWelcome(ctx, ws[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := b.c.AckWelcome(ctx, ws[0].ID); !errors.Is(err, relayclient.ErrNotFound) {
		t.Fatal(err)
	}
}

// TestLink links a device through the relay with the client: the joining
// side is a client without a device.
func TestLink(t *testing.T) {
	ctx := context.Background()
	base := startRelay(t)
	alice := newUser(t)
	a1 := newDevice(t, base, alice)
	offer, _ := identity.NewLinkOffer(nil)
	mb := offer.Code().Mailbox()
	if exp, err := a1.c.OpenLinkMailbox(ctx, mb); err != nil || time.Until(exp) < 9*time.Minute {
		t.Fatal(exp, err)
	}
	if _, err := a1.c.PostLink(ctx, mb, relayclient.LinkOffer, offer.Hello()); err != nil {
		t.Fatal(err)
	}

	newcomer := relayclient.New(base, relayclient.Identity{}, checked(t))
	if err := newcomer.Login(ctx); !errors.Is(err, relayclient.ErrNoDevice) {
		t.Fatalf("login without a device: %v", err)
	}
	if _, err := newcomer.PostLink(ctx, mb, relayclient.LinkOffer, offer.Hello()); !errors.Is(err, relayclient.ErrNoDevice) {
		t.Fatalf("the offer side without a device: %v", err)
	}
	cs := suite.MustNew(1)
	priv, _, _ := cs.GenerateSignatureKeyPair(nil)
	signer, _ := cs.NewSigner(priv)
	did, _ := identity.NewDeviceID(nil)
	dev, _ := identity.NewDevice(did, cs.ID(), signer.PublicKey())
	code, _ := identity.ParseLinkCode(offer.Code().Text())
	join, _ := identity.NewLinkJoin(code, dev, signer, "phone", nil)
	ms, next, err := newcomer.LinkMessages(ctx, mb, relayclient.LinkOffer, 0, time.Second)
	if err != nil || len(ms) != 1 {
		t.Fatal(ms, err)
	}
	req, err := join.Respond(ms[0].Message)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newcomer.PostLink(ctx, mb, relayclient.LinkJoin, req); err != nil {
		t.Fatal(err)
	}
	got, _, err := a1.c.LinkMessages(ctx, mb, relayclient.LinkJoin, 0, time.Second)
	if err != nil || len(got) != 1 {
		t.Fatal(got, err)
	}
	if _, err := offer.ReadRequest(got[0].Message); err != nil {
		t.Fatal(err)
	}
	sealed, _, err := offer.Accept(alice, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	a1.c.PostLink(ctx, mb, relayclient.LinkOffer, sealed)
	ms, _, err = newcomer.LinkMessages(ctx, mb, relayclient.LinkOffer, next, time.Second)
	if err != nil || len(ms) != 1 {
		t.Fatal(ms, err)
	}
	cert, err := join.Finish(ms[0].Message)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := cert.Marshal()
	linked := relayclient.New(base, relayclient.Identity{Certificate: enc, Signer: signer}, relayclient.Options{})
	if err := linked.Login(ctx); err != nil || linked.UserID() != alice.UserID() {
		t.Fatal(linked.UserID(), err)
	}
	if err := a1.c.CloseLinkMailbox(ctx, mb); err != nil {
		t.Fatal(err)
	}
}

// TestBoundedAnswers: a relay (or a server in the middle) that answers
// more than the documented limits allow is cut off before the answer is
// buffered, for every kind of answer.
func TestBoundedAnswers(t *testing.T) {
	huge := strings.Repeat("A", 16<<20) // more than any bound
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"messages":[{"message":"` + huge + `"}]}`))
	}))
	defer hs.Close()
	ctx := context.Background()
	c := relayclient.New(hs.URL, relayclient.Identity{}, relayclient.Options{
		TokenSource: func(context.Context) (string, time.Time, error) { return "t", time.Now().Add(time.Hour), nil }})
	calls := map[string]func() error{
		"messages":  func() error { _, _, err := c.Messages(ctx, []byte("g"), relayclient.Page{Limit: 1000}); return err },
		"welcomes":  func() error { _, err := c.Welcomes(ctx, 0); return err },
		"claim":     func() error { _, err := c.ClaimKeyPackages(ctx, "sp1x"); return err },
		"devices":   func() error { _, err := c.Devices(ctx, "sp1x"); return err },
		"groupinfo": func() error { _, _, err := c.GroupInfo(ctx, []byte("g")); return err },
		"group":     func() error { _, err := c.Group(ctx, []byte("g")); return err },
		"link":      func() error { _, _, err := c.LinkMessages(ctx, "AB12", relayclient.LinkOffer, 0, 0); return err },
		"count":     func() error { _, _, err := c.KeyPackageCount(ctx); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, relayclient.ErrResponseTooLarge) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestLongRetryAfterReturned: a 429 whose Retry-After is long (an hourly
// quota spent) is returned to the caller at once, with the wait, rather
// than slept out inside the call (an invite hung until its caller gave
// up, minutes before the quota would refill).
func TestLongRetryAfterReturned(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := relay.OpenSQLite(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := relay.New(st, relay.Options{Rate: 1e6, Burst: 1e6, ClaimsPerPair: 1})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close(); st.Close() })
	alice := newUser(t)
	a, b := newDevice(t, hs.URL, alice), newDevice(t, hs.URL, newUser(t))
	if _, err := a.c.PublishKeyPackages(ctx, [][]byte{a.keyPackage(t, false), a.keyPackage(t, false)}, a.keyPackage(t, true)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.c.ClaimKeyPackages(ctx, alice.UserID()); err != nil {
		t.Fatal(err)
	}
	_, err = b.c.ClaimKeyPackages(ctx, alice.UserID())
	var e *relayclient.Error
	if !errors.As(err, &e) || e.Status != http.StatusTooManyRequests || e.RetryAfter < time.Minute {
		t.Fatalf("second claim: %v", err)
	}
	if n := b.c.RateLimited(); n != 0 {
		t.Fatalf("waited out %d 429s", n)
	}
}
