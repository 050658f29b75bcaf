package relay

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spacepanda/spacepanda/internal/apitest"
	"github.com/spacepanda/spacepanda/mls"
)

// served lists the routes the relay's handler registers, read from its
// sources (every mux.Handle/HandleFunc pattern with a method).
func served(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`mux\.Handle(?:Func)?\("([A-Z]+) ([^"]+)"`)
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			out = append(out, m[1]+" "+m[2])
		}
	}
	return out
}

// documented is the document's operations except those another branch
// adds (x-spacepanda-pending), which are logged.
func documented(t *testing.T) []string {
	d := relayDoc(t)
	pending := d.PendingOps()
	var out []string
	for _, op := range d.Ops() {
		if b, ok := pending[op]; ok {
			t.Logf("%s is documented, pending from branch %s", op, b)
			continue
		}
		out = append(out, op)
	}
	return out
}

// TestOpenAPIRoutes: the relay serves exactly the documented routes, and
// API.md lists exactly them.
func TestOpenAPIRoutes(t *testing.T) {
	doc := documented(t)
	if d := apitest.Diff("relay/api/openapi.json", doc, "the relay's handler", served(t)); d != "" {
		t.Errorf("the relay and its OpenAPI document disagree:%s", d)
	}
	md, err := os.ReadFile("API.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := apitest.MarkdownOps(md, "")
	var extra []string
	for _, op := range listed {
		if !slices.Contains(doc, op) {
			if _, ok := relayDoc(t).PendingOps()[op]; ok {
				continue // documented ahead of its branch
			}
		}
		extra = append(extra, op)
	}
	if d := apitest.Diff("relay/api/openapi.json", doc, "relay/API.md", extra); d != "" {
		t.Errorf("relay/API.md and the OpenAPI document disagree:%s", d)
	}
}

// TestServesOpenAPI: GET /v1/openapi.json answers the embedded document,
// without a token.
func TestServesOpenAPI(t *testing.T) {
	_, base := newTestServer(t, openSQLiteT(t), Options{})
	r := (&client{t: t, base: base}).must(200, "GET", "/v1/openapi.json", nil)
	if r.body["openapi"] != "3.1.0" || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %v %q", r.body["openapi"], r.header.Get("Content-Type"))
	}
}

// TestErrorMessages: hostile requests get one-line messages that name the
// problem once, without Go types or repeated package prefixes.
func TestErrorMessages(t *testing.T) {
	_, base := newTestServer(t, openSQLiteT(t), Options{})
	alice := newIdent(t, "alice")
	ca := login(t, base, alice)
	gid := []byte("messages-group")
	setupGroup(t, ca, gid, alice)
	other := newIdent(t, "other")
	for name, c := range map[string]struct {
		method, path string
		body         any
		status       int
		code         string
	}{
		"wrong JSON type": {"POST", "/v1/key-packages/claim", []byte(`{"user_id": 5}`), 400, "bad_request"},
		"foreign key package": {"POST", "/v1/key-packages", map[string]any{"key_packages": [][]byte{alice.keyPackageWith(t, other.uid(), alice.cert, false)}},
			400, "invalid_key_package"},
		"future epoch": {"POST", "/v1/groups/" + gidPath(gid) + "/messages",
			map[string]any{"message": privMsg(t, gid, 7, mls.ContentTypeApplication)}, 409, "future_epoch"},
		"store error": {"DELETE", "/v1/welcomes/99", nil, 404, "not_found"},
	} {
		t.Run(name, func(t *testing.T) {
			r := ca.must(c.status, c.method, c.path, c.body)
			if r.code() != c.code {
				t.Fatalf("code %s, want %s: %s", r.code(), c.code, r.raw)
			}
			msg := r.body["error"].(map[string]any)["message"].(string)
			for _, bad := range []string{"\n", "Go value", "relay: ", "mls: ", "identity: ", "json: "} {
				if strings.Contains(msg, bad) {
					t.Errorf("message %q contains %q", msg, bad)
				}
			}
		})
	}
}

// TestOpenAPIErrorCodes: every error code the relay's sources can answer
// is in the document under its status (for some operation).
func TestOpenAPIErrorCodes(t *testing.T) {
	statuses := map[string]int{"BadRequest": 400, "Unauthorized": 401, "Forbidden": 403, "NotFound": 404, "Conflict": 409,
		"RequestEntityTooLarge": 413, "TooManyRequests": 429, "InternalServerError": 500, "ServiceUnavailable": 503}
	documented := map[string]bool{}
	for _, item := range relayDoc(t).T.Paths.Map() {
		for _, op := range item.Operations() {
			for st, r := range op.Responses.Map() {
				if r.Value == nil {
					continue
				}
				for _, mt := range r.Value.Content {
					s := mt.Schema.Value
					if s == nil || s.Properties["error"] == nil {
						continue
					}
					for _, c := range s.Properties["error"].Value.Properties["code"].Value.Enum {
						documented[st+" "+c.(string)] = true
					}
				}
			}
		}
	}
	files, _ := filepath.Glob("*.go")
	re := regexp.MustCompile(`http\.Status(\w+), "([a-z_]+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			st, ok := statuses[m[1]]
			if !ok {
				t.Errorf("%s: status %s is not known to this test", f, m[1])
				continue
			}
			// fail()'s fallbacks for ErrExists and ErrLimit: every handler
			// maps those store errors to its own code today, so no answer
			// carries them; a new store error must get its own code.
			if f == "errors.go" && (m[2] == "exists" || m[2] == "limit") {
				continue
			}
			if key := strconv.Itoa(st) + " " + m[2]; !documented[key] {
				t.Errorf("%s answers %s, which relay/api/openapi.json does not list", f, key)
			}
		}
	}
}
