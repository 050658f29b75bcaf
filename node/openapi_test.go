package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/client"
	"github.com/spacepanda/spacepanda/internal/apitest"
	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/provider"
)

func nodeDoc(t *testing.T) *apitest.Doc {
	t.Helper()
	d, err := apitest.Parse(node.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// contractNode is an in-process node whose every exchange is checked
// against node/openapi.json (apitest.Handler); probe asks the node
// unchecked.
func contractNode(t *testing.T) (base string, probe func(path string) int) {
	t.Helper()
	p, err := provider.Open(context.Background(), filepath.Join(t.TempDir(), "n"),
		provider.OpenOptions{Options: channel.ProviderOptions(provider.Options{Name: "alice"})})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(context.Background(), p, client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := node.New(cl, node.Options{})
	hs := httptest.NewServer(apitest.Handler(t, nodeDoc(t), srv.Handler()))
	t.Cleanup(func() { hs.Close(); cl.Close(); p.Close() })
	return hs.URL, func(path string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", path, nil)
		req.Host = "127.0.0.1"
		srv.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
}

type exchange struct {
	method, path string
	body         string
	ctype        string // "": application/json when there is a body
	status       int
}

func (e exchange) do(t *testing.T, base string) map[string]any {
	t.Helper()
	var rd io.Reader
	if e.body != "" {
		rd = bytes.NewReader([]byte(e.body))
	}
	req, _ := http.NewRequest(e.method, base+e.path, rd)
	if e.body != "" {
		ct := e.ctype
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != e.status {
		t.Errorf("%s %s: %d, want %d: %s", e.method, e.path, res.StatusCode, e.status, raw)
	}
	var out map[string]any
	json.Unmarshal(raw, &out)
	return out
}

// TestOpenAPIContract drives a node through its API with every exchange
// checked against node/openapi.json. The document is the CONTRACT's
// target API, which the sync branch implements: until this tree's node
// serves it (GET /readyz), the test skips, and the lead enables it at the
// merge.
func TestOpenAPIContract(t *testing.T) {
	base, probe := contractNode(t)
	for _, path := range []string{"/readyz", "/v1/openapi.json"} {
		if probe(path) == http.StatusNotFound {
			t.Skipf("node: contract tests wait for CONTRACT.md's node API (sync branch): GET %s is not served yet", path)
		}
	}
	for _, e := range []exchange{
		{method: "GET", path: "/healthz", status: 200},
		{method: "GET", path: "/v1/identity", status: 200},
		{method: "POST", path: "/v1/key-packages", body: `{"count":2}`, status: 201},
		{method: "GET", path: "/v1/key-packages", status: 200},
		{method: "GET", path: "/v1/channels", status: 200},
		{method: "GET", path: "/v1/channels/nope", status: 404},
		{method: "POST", path: "/v1/channels", body: `{"name":`, status: 400},
		{method: "POST", path: "/v1/channels", body: `{"name":"x"}`, ctype: "text/plain", status: 415},
		{method: "GET", path: "/v1/no-such-thing", status: 404},
		{method: "GET", path: "/v1/invitations", status: 200},
		{method: "GET", path: "/v1/contacts", status: 200},
	} {
		e.do(t, base)
	}
	ch := exchange{method: "POST", path: "/v1/channels", body: `{"name":"general"}`, status: 201}.do(t, base)
	id, _ := ch["channel_id"].(string)
	if id == "" {
		t.Fatalf("no channel_id in %v", ch)
	}
	c := "/v1/channels/" + id
	for _, e := range []exchange{
		{method: "GET", path: c, status: 200},
		{method: "POST", path: c + "/messages", body: `{"text":"hello"}`, status: 202},
		{method: "GET", path: c + "/messages?limit=10", status: 200},
		{method: "GET", path: c + "/members", status: 200},
		{method: "POST", path: c + "/update", status: 202},
		{method: "POST", path: c + "/messages", body: `{"text":"hi","nope":1}`, status: 400},
	} {
		e.do(t, base)
	}
}

// TestOpenAPISurprises holds the surprises of issue 17 to the document,
// through two nodes without a relay (skipped like TestOpenAPIContract):
// re-inviting a member is 409 already_member, a user id without a relay
// is 412 relay_required, the same role twice makes no commit, history
// pages by seq with a next cursor.
func TestOpenAPISurprises(t *testing.T) {
	alice, probe := contractNode(t)
	if probe("/readyz") == http.StatusNotFound {
		t.Skip("node: contract tests wait for CONTRACT.md's node API (sync branch): GET /readyz is not served yet")
	}
	bob, _ := contractNode(t)
	kp := exchange{method: "POST", path: "/v1/key-packages", body: `{"count":1}`, status: 201}.do(t, bob)
	kps, _ := kp["key_packages"].([]any)
	if len(kps) != 1 {
		t.Fatalf("key packages: %v", kp)
	}
	ch := exchange{method: "POST", path: "/v1/channels", body: `{"name":"s"}`, status: 201}.do(t, alice)
	c := "/v1/channels/" + ch["channel_id"].(string)
	inv := exchange{method: "POST", path: c + "/invites", body: `{"key_package":"` + kps[0].(string) + `"}`, status: 202}.do(t, alice)
	body, _ := json.Marshal(map[string]any{"welcome": inv["welcome"], "ratchet_tree": inv["ratchet_tree"]})
	joined := exchange{method: "POST", path: "/v1/join", body: string(body), status: 201}.do(t, bob)
	exchange{method: "POST", path: c + "/invites", body: `{"key_package":"` + kps[0].(string) + `"}`, status: 409}.do(t, alice)
	bobID := exchange{method: "GET", path: "/v1/identity", status: 200}.do(t, bob)["user_id"].(string)
	exchange{method: "POST", path: c + "/invites", body: `{"user_id":"` + bobID + `"}`, status: 412}.do(t, alice)
	role := exchange{method: "PUT", path: c + "/members/" + bobID + "/role", body: `{"role":"admin"}`, status: 202}.do(t, alice)
	again := exchange{method: "PUT", path: c + "/members/" + bobID + "/role", body: `{"role":"admin"}`, status: 200}.do(t, alice)
	if role["epoch"] != again["epoch"] {
		t.Errorf("the same role twice made a commit: epoch %v then %v", role["epoch"], again["epoch"])
	}
	for i := 0; i < 3; i++ {
		exchange{method: "POST", path: c + "/messages", body: `{"text":"m"}`, status: 202}.do(t, alice)
	}
	page := exchange{method: "GET", path: c + "/messages?limit=2", status: 200}.do(t, alice)
	if msgs, _ := page["messages"].([]any); len(msgs) != 2 || page["next"] == nil {
		t.Errorf("a page of 2 of 3 messages: %v", page)
	}
	_ = joined
}

// TestOpenAPIServed: the node's GET /v1/openapi.json answers the document
// in node/openapi.json, when the node has the route.
func TestOpenAPIServed(t *testing.T) {
	file, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, node.OpenAPI()) {
		t.Fatal("the embedded document is not node/openapi.json")
	}
	p, err := provider.Open(context.Background(), filepath.Join(t.TempDir(), "n"),
		provider.OpenOptions{Options: channel.ProviderOptions(provider.Options{Name: "alice"})})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cl, err := client.New(context.Background(), p, client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	srv := node.New(cl, node.Options{})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/v1/openapi.json", nil)
	req.Host = "127.0.0.1" // without a token the node answers loopback Hosts only
	srv.Handler().ServeHTTP(rec, req)
	if rec.Code == http.StatusNotFound {
		t.Skip("node: GET /v1/openapi.json is not routed in this tree (the lead adds the route line at the sync merge)")
	}
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), file) {
		t.Fatalf("GET /v1/openapi.json: %d, %d bytes", rec.Code, rec.Body.Len())
	}
}

// TestREADMEMatchesOpenAPI: the README's node endpoint list is the
// document's.
func TestREADMEMatchesOpenAPI(t *testing.T) {
	md, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if d := apitest.Diff("node/openapi.json", nodeDoc(t).Ops(), "README.md (HTTP API)", apitest.MarkdownOps(md, "HTTP API")); d != "" {
		t.Errorf("README.md's node API list and node/openapi.json disagree:%s", d)
	}
}
