package apitest

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"testing"
)

// Transport returns a RoundTripper that sends through base (nil:
// http.DefaultTransport) and checks every exchange against doc, failing
// t (Errorf) on any departure. Event streams are checked by status and
// media type only, and handed on unread.
func Transport(t testing.TB, doc *Doc, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{t: t, doc: doc, base: base}
}

type transport struct {
	t    testing.TB
	doc  *Doc
	base http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	res, err := tr.base.RoundTrip(req)
	if err != nil {
		return res, err
	}
	ex := Exchange{Req: req, ReqBody: reqBody, Status: res.StatusCode, Header: res.Header}
	if isStream(res.Header) {
		ex.SkipResBody = true
		if c := tr.doc.sseChecker(ex, func(err error) { tr.t.Errorf("%v", err) }); c != nil {
			res.Body = &sseBody{ReadCloser: res.Body, c: c}
		}
	} else {
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		res.Body = io.NopCloser(bytes.NewReader(b))
		if err != nil {
			return res, nil // the caller sees the truncated body; nothing to check
		}
		ex.Body = b
	}
	if err := tr.doc.Check(ex); err != nil {
		tr.t.Errorf("%v", err)
	}
	return res, nil
}

func isStream(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "text/event-stream"
}
