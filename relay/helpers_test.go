package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/internal/apitest"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
	"github.com/spacepanda/spacepanda/relay/api"
)

// pgURL returns $SPACEPANDA_TEST_POSTGRES; without it the test skips,
// except under CI=true, where a missing database is a failure (.ci/run
// starts one).
func pgURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("SPACEPANDA_TEST_POSTGRES")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SPACEPANDA_TEST_POSTGRES is not set under CI=true (.ci/run starts PostgreSQL)")
		}
		t.Skip("SPACEPANDA_TEST_POSTGRES not set")
	}
	return u
}

// freshPG returns a URL of the test database whose search_path is a new,
// empty schema (dropped at cleanup), so tests do not see each other.
func freshPG(t testing.TB) string {
	t.Helper()
	base := pgURL(t)
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err == nil {
			db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
			db.Close()
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

type backend struct {
	name string
	open func(t testing.TB) Store
}

func openSQLiteT(t testing.TB) Store {
	st, err := OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func openPostgresT(t testing.TB) Store { return openPostgresAt(t, freshPG(t)) }

// openPostgresAt opens a store on url (one more relay instance on the
// same database), closed at the end of the test.
func openPostgresAt(t testing.TB, url string) Store {
	t.Helper()
	st, err := OpenPostgres(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var backends = []backend{{"sqlite", openSQLiteT}, {"postgres", openPostgresT}}

// forEachInstancePair runs f on a store st and the store other through
// which the test writes what "another relay" would: on SQLite and on
// PostgreSQL the same store, and on PostgreSQL two instances on one
// database (other's writes reach st only through the database).
func forEachInstancePair(t *testing.T, f func(t *testing.T, st, other Store)) {
	t.Run("sqlite", func(t *testing.T) {
		st := openSQLiteT(t)
		f(t, st, st)
	})
	t.Run("postgres", func(t *testing.T) {
		st := openPostgresT(t)
		f(t, st, st)
	})
	t.Run("postgres/two instances", func(t *testing.T) {
		url := freshPG(t)
		var sts [2]Store
		for i := range sts {
			sts[i] = openPostgresAt(t, url)
		}
		f(t, sts[0], sts[1])
	})
}

// forEachBackend runs f as a subtest per backend.
func forEachBackend(t *testing.T, f func(t *testing.T, st Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.open(t)) })
	}
}

// ident is a test device: a user's identity key (shared by the user's
// devices), and this device's id, Ed25519 MLS signature key and
// certificate.
type ident struct {
	name   string // for messages only
	user   *identity.PrivateIdentity
	cs     *suite.Suite
	signer *suite.Signer
	dev    identity.DeviceID
	cert   []byte
}

func newIdent(t testing.TB, name string) *ident {
	t.Helper()
	u, err := identity.GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	return newDevice(t, name, u, time.Now(), 0)
}

// newDevice certifies a new device of user u at now for lifetime (0: the
// default).
func newDevice(t testing.TB, name string, u *identity.PrivateIdentity, now time.Time, lifetime time.Duration) *ident {
	t.Helper()
	cs := suite.MustNew(1)
	priv, _, err := cs.GenerateSignatureKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := cs.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	id := &ident{name: name, user: u, cs: cs, signer: sg}
	if id.dev, err = identity.NewDeviceID(nil); err != nil {
		t.Fatal(err)
	}
	d, err := identity.NewDevice(id.dev, cs.ID(), sg.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	c, err := u.Certify(d, now, lifetime)
	if err != nil {
		t.Fatal(err)
	}
	if id.cert, err = c.Marshal(); err != nil {
		t.Fatal(err)
	}
	return id
}

// another is a new device of id's user.
func (id *ident) another(t testing.TB, name string) *ident {
	return newDevice(t, name, id.user, time.Now(), 0)
}

func (id *ident) uid() string    { return string(id.user.UserID()) }
func (id *ident) device() string { return id.dev.String() }
func (id *ident) pub() []byte    { return id.signer.PublicKey() }
func (id *ident) String() string { return id.name }
func (id *ident) revocation(t testing.TB) []byte {
	t.Helper()
	r, err := id.user.Revoke(id.dev, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keyPackage returns a fresh MLSMessage(KeyPackage) of this device: its
// leaf carries the device certificate and presents the user id.
func (id *ident) keyPackage(t testing.TB, lastResort bool) []byte {
	t.Helper()
	return id.keyPackageWith(t, id.uid(), id.cert, lastResort)
}

// keyPackageWith is keyPackage with another credential identity or
// certificate (nil: none).
func (id *ident) keyPackageWith(t testing.TB, who string, cert []byte, lastResort bool) []byte {
	t.Helper()
	o := mls.KeyPackageOptions{LastResort: lastResort}
	if cert != nil {
		c, err := identity.ParseCertificate(cert)
		if err != nil {
			t.Fatal(err)
		}
		ext, err := c.Extension()
		if err != nil {
			t.Fatal(err)
		}
		o.LeafExtensions = tree.Extensions{ext}
	}
	kp, _, err := mls.NewKeyPackage(id.cs, nil, id.signer, tree.NewBasicCredential([]byte(who)), o)
	if err != nil {
		t.Fatal(err)
	}
	return mlsBytes(t, kp)
}

func mlsBytes(t testing.TB, body wire.Marshaler) []byte {
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

// privMsg is a PrivateMessage of group gid in epoch with content type ct
// and a random (meaningless) ciphertext: all the relay can look at.
func privMsg(t testing.TB, gid []byte, epoch uint64, ct mls.ContentType) []byte {
	ctext := make([]byte, 48)
	rand.Read(ctext)
	return mlsBytes(t, &mls.PrivateMessage{GroupID: gid, Epoch: epoch, ContentType: ct,
		AuthenticatedData: []byte{}, EncryptedSenderData: ctext[:16], Ciphertext: ctext[16:]})
}

func groupInfoMsg(t testing.TB, gid []byte, epoch uint64) []byte {
	gi := &mls.GroupInfo{GroupContext: mls.GroupContext{Version: tree.ProtocolVersionMLS10, CipherSuite: 1, GroupID: gid, Epoch: epoch,
		TreeHash: make([]byte, 32), ConfirmedTranscriptHash: make([]byte, 32), Extensions: tree.Extensions{}},
		Extensions: tree.Extensions{}, ConfirmationTag: make([]byte, 32), Signature: make([]byte, 64)}
	return mlsBytes(t, gi)
}

func welcomeMsg(t testing.TB) []byte {
	return mlsBytes(t, &mls.Welcome{CipherSuite: 1, Secrets: []mls.EncryptedGroupSecrets{}, EncryptedGroupInfo: []byte("sealed")})
}

// client is a logged-in test client of a relay at base.
type client struct {
	t     testing.TB
	base  string
	hc    *http.Client
	id    *ident
	token string
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (r resp) code() string {
	if e, ok := r.body["error"].(map[string]any); ok {
		s, _ := e["code"].(string)
		return s
	}
	return ""
}

func (r resp) num(k string) int64 {
	f, _ := r.body[k].(float64)
	return int64(f)
}

func (c *client) do(method, path string, body any) resp {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.hc
	if hc == nil {
		// Every answer a test gets is checked against the relay's
		// OpenAPI document.
		hc = &http.Client{Transport: apitest.Transport(c.t, relayDoc(c.t), nil)}
	}
	res, err := hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, header: res.Header, raw: raw}
	json.Unmarshal(raw, &out.body)
	return out
}

// must checks the status and returns the response.
func (c *client) must(status int, method, path string, body any) resp {
	c.t.Helper()
	r := c.do(method, path, body)
	if r.status != status {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, status, r.raw)
	}
	return r
}

// login runs the challenge/response for id against base.
func login(t testing.TB, base string, id *ident) *client {
	t.Helper()
	c := &client{t: t, base: base, id: id}
	r := c.must(200, "POST", "/v1/auth/challenge", map[string]any{"certificate": id.cert})
	ch, _ := base64.StdEncoding.DecodeString(r.body["challenge"].(string))
	r = c.must(200, "POST", "/v1/auth/login", map[string]any{"certificate": id.cert, "challenge": ch, "signature": id.loginSignature(t, base, ch)})
	if r.body["user_id"] != id.uid() || r.body["device_id"] != id.device() {
		t.Fatalf("logged in as %v %v", r.body["user_id"], r.body["device_id"])
	}
	c.token = r.body["token"].(string)
	return c
}

func (id *ident) loginSignature(t testing.TB, base string, challenge []byte) []byte {
	t.Helper()
	sig, err := id.signer.SignWithLabel(api.LoginLabel, api.LoginContent(base, id.user.UserID(), id.dev, challenge))
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func gidPath(gid []byte) string { return base64.RawURLEncoding.EncodeToString(gid) }

// newTestServer serves st over httptest; opts tune it.
func newTestServer(t testing.TB, st Store, opts Options) (*Server, string) {
	srv := New(st, opts)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return srv, hs.URL
}

var _ = fmt.Sprintf

// relayDoc is the relay's OpenAPI document, parsed once.
var relayDoc = func() func(t testing.TB) *apitest.Doc {
	doc := sync.OnceValues(func() (*apitest.Doc, error) { return apitest.Parse(api.OpenAPI()) })
	return func(t testing.TB) *apitest.Doc {
		d, err := doc()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
}()
