package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// An event stream's events are described by the operation's
// x-sse-events: event type → {"$ref": "#/components/schemas/Name"}
// (OpenAPI 3.1 has no way to describe the items of a stream). sseCheck
// follows a stream as it is read or written and checks each event's type
// is listed and its data is one JSON value of the listed schema.
type sseCheck struct {
	name    string
	schemas map[string]*openapi3.SchemaRef
	report  func(error)
	line    []byte
	event   string
}

// sseChecker returns the checker of an operation's stream (nil when the
// request is not a documented stream).
func (d *Doc) sseChecker(ex Exchange, report func(error)) *sseCheck {
	m := d.find(ex.Req)
	if m == nil {
		return nil
	}
	c := &sseCheck{name: ex.Req.Method + " " + ex.Req.URL.Path, schemas: map[string]*openapi3.SchemaRef{}, report: report}
	evs, _ := m.route.Operation.Extensions["x-sse-events"].(map[string]any)
	for ev, v := range evs {
		ref, _ := v.(map[string]any)["$ref"].(string)
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		if s := d.T.Components.Schemas[name]; s != nil {
			c.schemas[ev] = s
		}
	}
	return c
}

func (c *sseCheck) feed(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.line = append(c.line, p...)
			return
		}
		c.line = append(c.line, p[:i]...)
		p = p[i+1:]
		c.handle(string(bytes.TrimSuffix(c.line, []byte("\r"))))
		c.line = c.line[:0]
	}
}

func (c *sseCheck) handle(line string) {
	switch {
	case line == "":
		c.event = ""
	case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "id:"), strings.HasPrefix(line, "retry:"):
	case strings.HasPrefix(line, "event:"):
		c.event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		if _, ok := c.schemas[c.event]; !ok {
			c.report(fmt.Errorf("apitest: %s: event %q is not in x-sse-events", c.name, c.event))
		}
	case strings.HasPrefix(line, "data:"):
		ev := c.event
		if ev == "" {
			ev = "message"
		}
		s, ok := c.schemas[ev]
		if !ok {
			if c.event == "" {
				c.report(fmt.Errorf("apitest: %s: data without an event line (type message) is not in x-sse-events", c.name))
			}
			return // else reported at its event line
		}
		var v any
		if err := json.Unmarshal([]byte(strings.TrimSpace(strings.TrimPrefix(line, "data:"))), &v); err != nil {
			c.report(fmt.Errorf("apitest: %s: event %s: data is not JSON: %s", c.name, ev, clip([]byte(line))))
			return
		}
		if err := s.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse()); err != nil {
			c.report(fmt.Errorf("apitest: %s: event %s: %s", c.name, ev, oneLine(err)))
		}
	default:
		c.report(fmt.Errorf("apitest: %s: not an event stream line: %s", c.name, clip([]byte(line))))
	}
}

// sseBody checks a stream's events as the client reads them.
type sseBody struct {
	io.ReadCloser
	c *sseCheck
}

func (b *sseBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.c.feed(p[:n])
	return n, err
}
