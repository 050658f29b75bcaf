package apitest

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// Handler wraps a server's handler so that every exchange it serves is
// checked against doc (failing t with Errorf): a server-side contract
// test that sees every client of a test server, hostile ones included.
// Streams pass through unbuffered and are checked by status and media
// type.
func Handler(t testing.TB, doc *Doc, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var reqBody []byte
		if r.Body != nil {
			// Bounded by the server's own limit: read at most one byte
			// more than a test server accepts.
			b, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
			reqBody = b
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		orig := r.Clone(r.Context())
		rec := &recorder{ResponseWriter: w}
		rec.sse = doc.sseChecker(Exchange{Req: orig}, func(err error) { t.Errorf("%v", err) })
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		ex := Exchange{Req: orig, ReqBody: reqBody, Status: rec.status, Header: w.Header(), Body: rec.body.Bytes(),
			SkipResBody: isStream(w.Header())}
		if err := doc.Check(ex); err != nil {
			t.Errorf("%v", err)
		}
	})
}

// recorder forwards a response and keeps a copy of its status and (for
// non-streams) body.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
	sse    *sseCheck
}

func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
	r.ResponseWriter.WriteHeader(s)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if !isStream(r.Header()) {
		r.body.Write(b)
	} else if r.sse != nil {
		r.sse.feed(b)
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
