// Package apitest checks HTTP exchanges against an OpenAPI 3.1 document
// (kin-openapi): every request a test makes and every response it gets,
// success or error, must be what the document describes — a documented
// route, status, media type, body shape with no undocumented field, and
// an error code listed for that status. Transport checks from the
// client's side, Handler from the server's; both report through the
// test's Errorf, so a drift between an API and its document fails the
// test that saw it.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// Doc is a loaded, validated document with a router over its paths.
type Doc struct {
	T   *openapi3.T
	mux *http.ServeMux
}

// Parse loads and validates an OpenAPI document (the linter's check:
// structure, references, schemas, unique operation ids).
func Parse(data []byte) (*Doc, error) {
	l := openapi3.NewLoader()
	t, err := l.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("apitest: load: %w", err)
	}
	if !t.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("apitest: openapi %q, want 3.1", t.OpenAPI)
	}
	if err := t.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("apitest: invalid document: %w", err)
	}
	d := &Doc{T: t, mux: http.NewServeMux()}
	for path, item := range t.Paths.Map() {
		names := paramNames.FindAllStringSubmatch(path, -1)
		for method, op := range item.Operations() {
			route := &routers.Route{Spec: t, Path: path, PathItem: item, Method: method, Operation: op}
			d.mux.HandleFunc(method+" "+path, func(w http.ResponseWriter, r *http.Request) {
				m, ok := w.(*match)
				if !ok {
					return
				}
				m.route = route
				m.params = map[string]string{}
				for _, n := range names {
					m.params[n[1]] = r.PathValue(n[1])
				}
			})
		}
	}
	return d, nil
}

var paramNames = regexp.MustCompile(`\{([A-Za-z0-9_]+)\}`)

// Ops lists the document's operations as "METHOD /path".
func (d *Doc) Ops() []string {
	var out []string
	for path, item := range d.T.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	return out
}

// match is the ResponseWriter the router writes its finding to.
type match struct {
	route  *routers.Route
	params map[string]string
	h      http.Header
}

func (m *match) Header() http.Header {
	if m.h == nil {
		m.h = http.Header{}
	}
	return m.h
}
func (m *match) Write(b []byte) (int, error) { return len(b), nil }
func (m *match) WriteHeader(int)             {}

// find routes req; nil when the document has no such operation.
func (d *Doc) find(req *http.Request) *match {
	m := &match{}
	d.mux.ServeHTTP(m, req)
	if m.route == nil {
		return nil
	}
	return m
}

// Exchange is one request and its response, bodies read.
type Exchange struct {
	Req         *http.Request
	ReqBody     []byte
	Status      int
	Header      http.Header
	Body        []byte
	SkipResBody bool // a stream: the body is not checked
}

// Check reports how ex departs from the document (nil: it does not).
// A request the document refuses is fine if the server refused it too
// (4xx); accepting it is an error. A route outside the document must be
// answered 404 or 405.
func (d *Doc) Check(ex Exchange) error {
	name := ex.Req.Method + " " + ex.Req.URL.Path
	m := d.find(ex.Req)
	if m == nil {
		if ex.Status == http.StatusNotFound || ex.Status == http.StatusMethodNotAllowed {
			return checkErrorEnvelope(ex)
		}
		return fmt.Errorf("apitest: %s -> %d: the route is not in the document", name, ex.Status)
	}
	opts := &openapi3filter.Options{
		IncludeResponseStatus: true,
		MultiError:            false,
		AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
			if !strings.HasPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ") {
				return errors.New("no bearer token")
			}
			return nil
		},
	}
	req := ex.Req.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(ex.ReqBody))
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: m.params, Route: m.route, Options: opts}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil && ex.Status < 400 {
		return fmt.Errorf("apitest: %s -> %d: the server accepted a request the document refuses: %s", name, ex.Status, oneLine(err))
	}
	ropts := *opts
	ropts.ExcludeResponseBody = ex.SkipResBody
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: ex.Status, Header: ex.Header,
		Body: io.NopCloser(bytes.NewReader(ex.Body)), Options: &ropts}
	if err := openapi3filter.ValidateResponse(context.Background(), rin); err != nil {
		return fmt.Errorf("apitest: %s -> %d: %s; body %s", name, ex.Status, oneLine(err), clip(ex.Body))
	}
	if ex.Status >= 400 && !ex.SkipResBody {
		return checkMessage(name, ex)
	}
	return nil
}

// checkMessage refuses an error message that repeats a prefix, the mark
// of a wrapped error chain shown as is ("mls: invalid key package: mls:
// invalid leaf node: …").
func checkMessage(name string, ex Exchange) error {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(ex.Body, &e) != nil {
		return nil
	}
	seen := map[string]bool{}
	for _, p := range strings.Split(e.Error.Message, ": ")[:max(0, strings.Count(e.Error.Message, ": "))] {
		if !prefixWord.MatchString(p) {
			continue
		}
		if seen[p] {
			return fmt.Errorf("apitest: %s -> %d: the error message repeats the prefix %q: %s", name, ex.Status, p, e.Error.Message)
		}
		seen[p] = true
	}
	return nil
}

var prefixWord = regexp.MustCompile(`^[a-z]+$`)

// checkErrorEnvelope checks a 404/405 outside the document is a JSON
// error.
func checkErrorEnvelope(ex Exchange) error {
	if !strings.HasPrefix(ex.Header.Get("Content-Type"), "application/json") || !bytes.Contains(ex.Body, []byte(`"error"`)) {
		return fmt.Errorf("apitest: %s %s -> %d: not a JSON error body: %s", ex.Req.Method, ex.Req.URL.Path, ex.Status, clip(ex.Body))
	}
	return nil
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
