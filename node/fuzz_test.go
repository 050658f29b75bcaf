package node_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzInbox posts fuzzer bytes to a node's inbox, as the base64 message
// of a well-formed body and as the raw body: never a 5xx (nor a panic),
// and every refusal is the JSON error shape. The node is in process, with
// a channel shared with a second node; seeds are real ciphertexts and a
// commit of that channel.
func FuzzInbox(f *testing.F) {
	ctx := context.Background()
	alice, bob, chn := inProcPair(f)
	for _, text := range []string{"hello", "a longer message with some text in it"} {
		r := must(alice.c.Send(ctx, chn.id, text, ""))
		ct, _ := base64.StdEncoding.DecodeString(r.Ciphertext)
		f.Add(ct, false)
		f.Add([]byte(`{"message":"`+r.Ciphertext+`"}`), true)
	}
	up := must(alice.c.Update(ctx, chn.id))
	commit, _ := base64.StdEncoding.DecodeString(up.Commit)
	f.Add(commit, false)
	f.Add([]byte{0, 1, 0, 2}, false)
	f.Add([]byte{0, 1, 0, 1}, false)
	f.Add([]byte(`{"message":"AAEAAg=="}`), true)
	f.Add([]byte(`{"message":null}`), true)
	f.Add([]byte(`{"message":"AAEAAg==","x":1}`), true)

	h := bob.srv.Handler()
	path := "/v1/channels/" + chn.id + "/inbox"
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		body := data
		if !raw {
			body = []byte(`{"message":"` + base64.StdEncoding.EncodeToString(data) + `"}`)
		}
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		resp := rec.Result()
		if resp.StatusCode >= 500 {
			t.Fatalf("%d for %q: %s", resp.StatusCode, body, rec.Body.Bytes())
		}
		if resp.StatusCode != http.StatusOK {
			if resp.StatusCode/100 != 4 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			errorCode(t, resp, rec.Body.Bytes())
		}
	})
}
