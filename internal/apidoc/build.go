// Package apidoc builds the OpenAPI 3.1 documents of the node's and the
// relay's HTTP APIs (node/openapi.json, relay/api/openapi.json) from a
// compact description in Go: one Op per route with its request and
// response shapes and, per status, the error codes it may answer. The
// JSON files are generated from it (go test ./internal/apidoc -update)
// and a test fails when they differ, so the description, the files and
// (through internal/apitest) the servers cannot drift apart.
package apidoc

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// S is a JSON Schema (2020-12, as OpenAPI 3.1 uses it) or any other JSON
// object of the document.
type S = map[string]any

// Patterns of the string formats the APIs use; as JSON Schema "format"
// is only an annotation, the pattern is what a validator checks.
const (
	base64Pattern  = `^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$`
	timePattern    = `^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z$`
	oneLinePattern = `^[^\r\n]*$`
	userIDPattern  = `^sp1[a-z2-7]{52}$`
)

// Str is a string; Int a non-negative integer; Bool a boolean.
func Str(desc string) S  { return withDesc(S{"type": "string"}, desc) }
func Int(desc string) S  { return withDesc(S{"type": "integer", "minimum": 0}, desc) }
func Bool(desc string) S { return withDesc(S{"type": "boolean"}, desc) }

// B64 is binary data in standard base64 (RFC 4648 §4, padded).
func B64(desc string) S {
	return withDesc(S{"type": "string", "contentEncoding": "base64", "pattern": base64Pattern}, desc)
}

// Time is an RFC 3339 time in UTC.
func Time(desc string) S {
	return withDesc(S{"type": "string", "format": "date-time", "pattern": timePattern}, desc)
}

// UserID is a user id (sp1…, identity.UserID).
func UserID(desc string) S {
	return withDesc(S{"type": "string", "pattern": userIDPattern}, desc)
}

// Enum is one of vals.
func Enum(desc string, vals ...string) S { return withDesc(S{"type": "string", "enum": vals}, desc) }

// Arr is an array of items.
func Arr(items S, desc string) S { return withDesc(S{"type": "array", "items": items}, desc) }

// Null is s or null.
func Null(s S) S { return S{"anyOf": []any{s, S{"type": "null"}}} }

// Ref refers to a schema in components.
func Ref(name string) S { return S{"$ref": "#/components/schemas/" + name} }

// Obj is a closed object: props are pairs of a name and its schema; a
// name ending in "?" is optional, every other one required.
func Obj(props ...any) S {
	if len(props)%2 != 0 {
		panic("apidoc: Obj wants name, schema pairs")
	}
	p := S{}
	req := []string{}
	for i := 0; i < len(props); i += 2 {
		name := props[i].(string)
		if n, ok := strings.CutSuffix(name, "?"); ok {
			name = n
		} else {
			req = append(req, name)
		}
		p[name] = props[i+1]
	}
	o := S{"type": "object", "properties": p, "additionalProperties": false}
	if len(req) > 0 {
		o["required"] = req
	}
	return o
}

// OneOf is exactly one of the schemas.
func OneOf(ss ...S) S { return S{"oneOf": ss} }

// nullOptional returns a request schema in which an optional property
// may also be null: a JSON null stands for an absent field (as Go's
// decoder and the servers treat it).
func nullOptional(s S) S {
	out := S{}
	for k, v := range s {
		out[k] = v
	}
	if one, ok := s["oneOf"].([]S); ok {
		alts := make([]S, len(one))
		for i, a := range one {
			alts[i] = nullOptional(a)
		}
		out["oneOf"] = alts
	}
	props, ok := s["properties"].(S)
	if !ok {
		return out
	}
	req, _ := s["required"].([]string)
	np := S{}
	for name, p := range props {
		if slices.Contains(req, name) {
			np[name] = p
		} else {
			np[name] = Null(p.(S))
		}
	}
	out["properties"] = np
	return out
}

func withDesc(s S, desc string) S {
	if desc != "" {
		s["description"] = desc
	}
	return s
}

// Param is a query parameter.
type Param struct {
	Name   string
	Schema S
}

// Op is one route.
type Op struct {
	Method, Path string
	ID           string // operationId
	Tag          string
	Summary      string
	Desc         string
	Public       bool    // no bearer token
	Query        []Param // query parameters, all optional
	Header       []Param // header parameters, all optional
	Body         S       // JSON request body (nil: none)
	Status       int     // the success status
	Also         []int   // other success statuses with the same body
	Resp         S       // JSON success body (nil: none)
	RespType     string  // success media type ("": application/json)
	Errs         Errs    // error codes by status, besides the API's common ones
	// Pending names the branch that adds the route (x-spacepanda-pending):
	// documented, not yet served by this tree.
	Pending string
	// Deprecated marks a route that goes away.
	Deprecated bool
	// Ext are extra fields of the operation (x-…).
	Ext S
}

// Errs are error codes by HTTP status.
type Errs map[int][]string

// API is one document's input.
type API struct {
	Title, Version, Desc string
	Ops                  []Op
	Schemas              map[string]S
	// Common adds the error codes every operation (or this one) may answer.
	Common func(op *Op) Errs
	// ErrorExtra are extra optional fields of the error body.
	ErrorExtra []any
	// PathParams describes path parameters by name.
	PathParams map[string]S
	// OptionalAuth: the bearer token is needed only in some deployments
	// (the node's, beyond loopback).
	OptionalAuth bool
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// Document returns the OpenAPI 3.1 document of a.
func (a *API) Document() S {
	paths := S{}
	for i := range a.Ops {
		op := &a.Ops[i]
		item, _ := paths[op.Path].(S)
		if item == nil {
			item = S{}
			paths[op.Path] = item
		}
		m := strings.ToLower(op.Method)
		if item[m] != nil {
			panic(fmt.Sprintf("apidoc: %s %s twice", op.Method, op.Path))
		}
		item[m] = a.operation(op)
	}
	security := []any{S{"bearer": []any{}}}
	if a.OptionalAuth {
		security = []any{S{}, S{"bearer": []any{}}}
	}
	return S{
		"openapi":           "3.1.0",
		"jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
		"info":              S{"title": a.Title, "version": a.Version, "description": a.Desc},
		"paths":             paths,
		"components": S{
			"schemas":         a.Schemas,
			"securitySchemes": S{"bearer": S{"type": "http", "scheme": "bearer"}},
		},
		"security": security,
	}
}

func (a *API) operation(op *Op) S {
	o := S{"operationId": op.ID, "summary": op.Summary}
	if op.Tag != "" {
		o["tags"] = []string{op.Tag}
	}
	if op.Desc != "" {
		o["description"] = op.Desc
	}
	if op.Public {
		o["security"] = []any{}
	}
	if op.Pending != "" {
		o["x-spacepanda-pending"] = op.Pending
	}
	if op.Deprecated {
		o["deprecated"] = true
	}
	for k, v := range op.Ext {
		o[k] = v
	}
	var params []any
	for _, m := range pathParam.FindAllStringSubmatch(op.Path, -1) {
		s, ok := a.PathParams[m[1]]
		if !ok {
			panic("apidoc: undescribed path parameter " + m[1])
		}
		params = append(params, S{"name": m[1], "in": "path", "required": true, "schema": s})
	}
	for _, q := range op.Query {
		params = append(params, S{"name": q.Name, "in": "query", "schema": q.Schema})
	}
	for _, h := range op.Header {
		params = append(params, S{"name": h.Name, "in": "header", "schema": h.Schema})
	}
	if len(params) > 0 {
		o["parameters"] = params
	}
	if op.Body != nil {
		o["requestBody"] = S{"required": true, "content": S{"application/json": S{"schema": nullOptional(op.Body)}}}
	}
	resp := S{}
	ok := S{"description": http.StatusText(op.Status)}
	switch {
	case op.RespType != "":
		ok["content"] = S{op.RespType: S{"schema": S{"type": "string"}}}
	case op.Resp != nil:
		ok["content"] = S{"application/json": S{"schema": op.Resp}}
	}
	resp[fmt.Sprint(op.Status)] = ok
	for _, st := range op.Also {
		resp[fmt.Sprint(st)] = ok
	}
	errs := Errs{}
	if a.Common != nil {
		for st, cs := range a.Common(op) {
			errs[st] = append(errs[st], cs...)
		}
	}
	for st, cs := range op.Errs {
		errs[st] = append(errs[st], cs...)
	}
	for st, cs := range errs {
		slices.Sort(cs)
		cs = slices.Compact(cs)
		name := "Error." + strings.Join(cs, ".")
		if a.Schemas == nil {
			a.Schemas = map[string]S{}
		}
		a.Schemas[name] = a.errorSchema(cs)
		r := S{"description": http.StatusText(st) + ": " + strings.Join(cs, ", "),
			"content": S{"application/json": S{"schema": Ref(name)}}}
		if st == http.StatusTooManyRequests {
			r["headers"] = S{"Retry-After": S{"description": "seconds to wait", "schema": S{"type": "string", "pattern": "^[0-9]+$"}}}
		}
		resp[fmt.Sprint(st)] = r
	}
	o["responses"] = resp
	return o
}

func (a *API) errorSchema(codes []string) S {
	props := []any{"error", Obj(
		"code", Enum("snake_case error code", codes...),
		"message", withDesc(S{"type": "string", "pattern": oneLinePattern}, "one line, for people"),
	)}
	props = append(props, a.ErrorExtra...)
	return Obj(props...)
}

// JSON is the document as indented JSON with a final newline.
func (a *API) JSON() []byte {
	b, err := json.MarshalIndent(a.Document(), "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}
