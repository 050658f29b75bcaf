package apitest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// TestDocumentsValidate is the linter: both documents load as OpenAPI
// 3.1 and pass kin-openapi's validation.
func TestDocumentsValidate(t *testing.T) {
	for _, f := range []string{"../../relay/api/openapi.json", "../../node/openapi.json"} {
		t.Run(f, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Ops()) < 20 {
				t.Fatalf("only %d operations", len(d.Ops()))
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for name, doc := range map[string]string{
		"not json":     `{`,
		"openapi 3.0":  `{"openapi":"3.0.3","info":{"title":"x","version":"1"},"paths":{}}`,
		"broken ref":   `{"openapi":"3.1.0","info":{"title":"x","version":"1"},"paths":{"/a":{"get":{"responses":{"200":{"description":"ok","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Nope"}}}}}}}}}`,
		"no info":      `{"openapi":"3.1.0","paths":{}}`,
		"bad response": `{"openapi":"3.1.0","info":{"title":"x","version":"1"},"paths":{"/a":{"get":{"responses":{"200":{}}}}}}`,
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

const testDoc = `{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{
 "/v1/things/{id}":{"get":{"operationId":"get","parameters":[{"name":"id","in":"path","required":true,"schema":{"type":"string"}}],
  "responses":{
   "200":{"description":"ok","content":{"application/json":{"schema":{"type":"object","required":["n"],"additionalProperties":false,"properties":{"n":{"type":"integer"}}}}}},
   "404":{"description":"nf","content":{"application/json":{"schema":{"type":"object","required":["error"],"properties":{"error":{"type":"object","properties":{"code":{"enum":["not_found"]}}}}}}}}}}},
 "/v1/things":{"post":{"operationId":"post","requestBody":{"required":true,"content":{"application/json":{"schema":{"type":"object","required":["name"],"additionalProperties":false,"properties":{"name":{"type":"string"}}}}}},
  "responses":{"201":{"description":"created"},"400":{"description":"bad","content":{"application/json":{"schema":{"type":"object"}}}}}}}}}`

// TestTransportCatches: each kind of drift the helper exists for makes
// the test fail, and a conforming exchange does not.
func TestTransportCatches(t *testing.T) {
	d, err := Parse([]byte(testDoc))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, method, path, body string
		status                   int
		resp                     string
		fails                    bool
	}{
		{"conforming", "GET", "/v1/things/a", "", 200, `{"n":1}`, false},
		{"documented error", "GET", "/v1/things/a", "", 404, `{"error":{"code":"not_found"}}`, false},
		{"undocumented field", "GET", "/v1/things/a", "", 200, `{"n":1,"extra":2}`, true},
		{"wrong type", "GET", "/v1/things/a", "", 200, `{"n":"1"}`, true},
		{"undocumented status", "GET", "/v1/things/a", "", 409, `{"error":{"code":"x"}}`, true},
		{"undocumented code", "GET", "/v1/things/a", "", 404, `{"error":{"code":"gone"}}`, true},
		{"repeated prefix", "GET", "/v1/things/a", "", 404, `{"error":{"code":"not_found","message":"mls: bad key: mls: bad leaf"}}`, true},
		{"one prefix", "GET", "/v1/things/a", "", 404, `{"error":{"code":"not_found","message":"bad key: bad leaf: sp1x"}}`, false},
		{"undocumented route", "GET", "/v1/other", "", 200, `{}`, true},
		{"unknown route refused", "GET", "/v1/other", "", 404, `{"error":{"code":"not_found"}}`, false},
		{"invalid request accepted", "POST", "/v1/things", `{"name":1}`, 201, ``, true},
		{"invalid request refused", "POST", "/v1/things", `{"name":1}`, 400, `{}`, false},
		{"valid request", "POST", "/v1/things", `{"name":"x"}`, 201, ``, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c.resp != "" {
					w.Header().Set("Content-Type", "application/json")
				}
				w.WriteHeader(c.status)
				w.Write([]byte(c.resp))
			}))
			defer srv.Close()
			for _, side := range []string{"transport", "handler"} {
				rec := &recordT{TB: t}
				hc := &http.Client{Transport: Transport(rec, d, nil)}
				url := srv.URL
				if side == "handler" {
					hs := httptest.NewServer(Handler(rec, d, srv.Config.Handler))
					defer hs.Close()
					hc, url = http.DefaultClient, hs.URL
				}
				req, _ := http.NewRequest(c.method, url+c.path, strings.NewReader(c.body))
				if c.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				res, err := hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if rec.failed != c.fails {
					t.Errorf("%s: failed=%v, want %v (%s)", side, rec.failed, c.fails, rec.msg)
				}
			}
		})
	}
}

// recordT records Errorf instead of failing.
type recordT struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recordT) Errorf(format string, args ...any) {
	r.failed = true
	r.msg = format
	if len(args) > 0 {
		r.msg = args[0].(error).Error()
	}
}

func TestMarkdownOps(t *testing.T) {
	md := "# API\n\n```\nGET  /v1/a/{id} -> x        PUT /v1/a/{id}/c {\"after\"}\nPOST /v1/b?x=1\ncurl -X POST localhost/v1/nope\n```\n" +
		"text GET /v1/prose\n## Other\n```\nDELETE /v1/other\n```\n"
	got := strings.Join(MarkdownOps([]byte(md), ""), ",")
	if want := "DELETE /v1/other,GET /v1/a/{id},POST /v1/b,PUT /v1/a/{id}/c"; got != want {
		t.Errorf("all: %s, want %s", got, want)
	}
	got = strings.Join(MarkdownOps([]byte(md), "API"), ",")
	if want := "GET /v1/a/{id},POST /v1/b,PUT /v1/a/{id}/c"; got != want {
		t.Errorf("section: %s, want %s", got, want)
	}
	if d := Diff("a", []string{"GET /x", "GET /y"}, "b", []string{"GET /x", "PUT /z"}); !strings.Contains(d, "GET /y is in a") || !strings.Contains(d, "PUT /z is in b") {
		t.Errorf("diff: %s", d)
	}
	if d := Diff("a", []string{"GET /x"}, "b", []string{"GET /x"}); d != "" {
		t.Errorf("equal sets differ: %s", d)
	}
}

const sseDoc = `{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{
 "/events":{"get":{"operationId":"ev","x-sse-events":{"tick":{"$ref":"#/components/schemas/Tick"}},
  "responses":{"200":{"description":"ok","content":{"text/event-stream":{"schema":{"type":"string"}}}}}}}},
 "components":{"schemas":{"Tick":{"type":"object","required":["n"],"additionalProperties":false,"properties":{"n":{"type":"integer"}}}}}}`

func TestEventStreamChecked(t *testing.T) {
	d, err := Parse([]byte(sseDoc))
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		stream string
		fails  bool
	}{
		"documented":         {": hello\n\nevent: tick\ndata: {\"n\":1}\n\nid: 2\nevent: tick\ndata: {\"n\":2}\n\n", false},
		"undocumented event": {"event: tock\ndata: {\"n\":1}\n\n", true},
		"undocumented field": {"event: tick\ndata: {\"n\":1,\"x\":2}\n\n", true},
		"not json":           {"event: tick\ndata: n=1\n\n", true},
		"default event type": {"data: {\"n\":1}\n\n", true},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Write([]byte(c.stream))
			}))
			defer srv.Close()
			for _, side := range []string{"transport", "handler"} {
				rec := &recordT{TB: t}
				hc, url := &http.Client{Transport: Transport(rec, d, nil)}, srv.URL
				if side == "handler" {
					hs := httptest.NewServer(Handler(rec, d, srv.Config.Handler))
					defer hs.Close()
					hc, url = http.DefaultClient, hs.URL
				}
				res, err := hc.Get(url + "/events")
				if err != nil {
					t.Fatal(err)
				}
				io.ReadAll(res.Body)
				res.Body.Close()
				if rec.failed != c.fails {
					t.Errorf("%s: failed=%v, want %v (%s)", side, rec.failed, c.fails, rec.msg)
				}
			}
		})
	}
}
