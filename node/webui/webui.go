// Package webui is the node's browser client: one page of plain HTML, CSS
// and JavaScript modules, embedded in the binary so that `spacepanda serve`
// needs nothing built or downloaded. The page talks only to the node's own
// HTTP API under /v1 (same origin); Handler serves the files with a strict
// Content-Security-Policy (no inline script or style, nothing from another
// origin), so a message a peer sends can never become code in the page.
package webui

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var files embed.FS

// CSP is the Content-Security-Policy of every response: scripts, styles and
// connections from the node itself only, no framing, no inline code.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// AssetPrefix is the path under which the page's assets are served.
const AssetPrefix = "/ui/"

// Files is the embedded tree (index.html at its root, assets under ui/).
func Files() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	return sub
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// Handler serves GET / (the page) and GET /ui/NAME (its assets); anything
// else is 404. It needs no token: the files hold nothing private, and the
// page asks for the token when the API answers 401.
func Handler() http.Handler {
	root := Files()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-cache")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name, ok := fileName(r.URL.Path)
		ct := contentTypes[path.Ext(name)]
		if !ok || ct == "" {
			http.NotFound(w, r)
			return
		}
		b, err := fs.ReadFile(root, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", ct)
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(b)
		}
	})
}

// fileName maps a request path to an embedded file: "/" is index.html,
// "/ui/x.js" is ui/x.js. Paths that are not clean (dot segments, double
// slashes) are refused rather than cleaned.
func fileName(p string) (string, bool) {
	if p == "/" {
		return "index.html", true
	}
	rest, ok := strings.CutPrefix(p, AssetPrefix)
	if !ok || rest == "" || path.Clean(p) != p || !fs.ValidPath(rest) {
		return "", false
	}
	return "ui/" + rest, true
}

// Mount registers Handler on mux for the page and its assets only, so
// every other path (the API under /v1) keeps its own routes and errors.
func Mount(mux *http.ServeMux) {
	h := Handler()
	mux.Handle("GET /{$}", h)
	mux.Handle("GET "+AssetPrefix, h)
}
