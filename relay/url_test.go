package relay

import (
	"encoding/base64"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
)

// TestLoginBoundToRelayURL: a forwarding proxy in front of the relay
// cannot obtain a token with a victim's login signed for the proxy's URL,
// whether it passes its own Host on or rewrites it to the relay's; the
// relay checks the signature against its configured URL (or, without
// one, the address the connection reached), never the Host header. A
// login signed for the relay's URL works, through the proxy too.
func TestLoginBoundToRelayURL(t *testing.T) {
	target, _ := url.Parse("")
	for _, configured := range []bool{false, true} {
		for _, rewrite := range []bool{false, true} {
			name := map[bool]string{false: "no --url", true: "--url"}[configured] + "/" + map[bool]string{false: "Host kept", true: "Host rewritten"}[rewrite]
			t.Run(name, func(t *testing.T) {
				st := openSQLiteT(t)
				srv := New(st, Options{})
				hs := httptest.NewUnstartedServer(nil)
				relayURL := "http://" + hs.Listener.Addr().String()
				if configured {
					srv.Close()
					srv = New(st, Options{URLs: []string{relayURL}})
				}
				hs.Config.Handler = srv.Handler()
				hs.Start()
				t.Cleanup(func() { hs.Close(); srv.Close() })
				target, _ = url.Parse(relayURL)
				proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
					pr.SetURL(target)
					if !rewrite {
						pr.Out.Host = pr.In.Host // the proxy's own Host goes on
					}
				}})
				t.Cleanup(proxy.Close)

				victim := newIdent(t, "victim")
				try := func(via, signedFor string) resp {
					c := &client{t: t, base: via, id: victim}
					r := c.must(200, "POST", "/v1/auth/challenge", map[string]any{"certificate": victim.cert})
					ch, _ := base64.StdEncoding.DecodeString(r.body["challenge"].(string))
					return c.do("POST", "/v1/auth/login", map[string]any{"certificate": victim.cert, "challenge": ch,
						"signature": victim.loginSignature(t, signedFor, ch)})
				}
				if r := try(proxy.URL, proxy.URL); r.status != 401 || r.code() != "bad_signature" || r.body["token"] != nil {
					t.Fatalf("login signed for the proxy, through the proxy: %d %s", r.status, r.raw)
				}
				if r := try(relayURL, "http://evil.example"); r.status != 401 {
					t.Fatalf("login signed for another URL: %d %s", r.status, r.raw)
				}
				for _, via := range []string{relayURL, proxy.URL} {
					if r := try(via, relayURL); r.status != 200 || r.body["token"] == nil {
						t.Fatalf("login signed for the relay via %s: %d %s", via, r.status, r.raw)
					}
				}
			})
		}
	}
}
