package webui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, "http://127.0.0.1:8080"+path, nil))
	return w
}

// Every response, found or not, carries the strict headers.
func TestHeaders(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		method, path string
		status       int
		ctype        string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8"},
		{"HEAD", "/", 200, "text/html; charset=utf-8"},
		{"GET", "/ui/app.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/ui/app.css", 200, "text/css; charset=utf-8"},
		{"GET", "/ui/icon.svg", 200, "image/svg+xml"},
		{"GET", "/ui/missing.js", 404, ""},
		{"POST", "/", 405, ""},
	} {
		w := get(t, h, tc.method, tc.path)
		if w.Code != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, w.Code, tc.status)
		}
		want := map[string]string{"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
			"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
		if tc.ctype != "" {
			want["Content-Type"] = tc.ctype
		}
		for k, v := range want {
			if got := w.Header().Get(k); got != v {
				t.Errorf("%s %s: %s = %q, want %q", tc.method, tc.path, k, got, v)
			}
		}
	}
	if !strings.Contains(CSP, "script-src 'self';") || strings.Contains(CSP, "unsafe") {
		t.Errorf("CSP is not strict: %s", CSP)
	}
}

// Hostile paths: nothing outside the embedded tree, no directory
// listings, no cleaning of dot segments into another file.
func TestHostilePaths(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/ui/", "/ui", "/ui/../index.html", "/ui/./app.js", "/ui//app.js", "/ui/%2e%2e/index.html",
		"/index.html", "/static/index.html", "/ui/../../go.mod", "/webui.go", "/ui/app.js/", "/ui/.hidden", "/v1/identity"} {
		w := get(t, h, "GET", p)
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, w.Code)
		}
		if strings.Contains(w.Body.String(), "<script") {
			t.Errorf("GET %s: served markup", p)
		}
	}
}

var (
	refRe       = regexp.MustCompile(`(?:src|href)="([^"]+)"`)
	importRe    = regexp.MustCompile(`(?m)^\s*import\s[^'"]*['"]\./([^'"]+)['"]`)
	inlineJSRe  = regexp.MustCompile(`(?is)<script\b[^>]*>\s*[^<\s]`)
	styleAttrRe = regexp.MustCompile(`(?i)\sstyle\s*=`)
	eventAttrRe = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
)

// Every file index.html references (and every module those import) is
// embedded and served; no page has inline script, style or handlers.
func TestReferencedFilesEmbedded(t *testing.T) {
	h := Handler()
	index, err := fs.ReadFile(Files(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	var queue []string
	for _, m := range refRe.FindAllStringSubmatch(string(index), -1) {
		ref := m[1]
		if strings.HasPrefix(ref, "#") {
			continue
		}
		if !strings.HasPrefix(ref, AssetPrefix) {
			t.Errorf("index.html references %q: only %s paths are served (no CDN)", ref, AssetPrefix)
			continue
		}
		queue = append(queue, ref)
	}
	seen := map[string]bool{}
	for len(queue) > 0 {
		ref := queue[0]
		queue = queue[1:]
		if seen[ref] {
			continue
		}
		seen[ref] = true
		w := get(t, h, "GET", ref)
		if w.Code != http.StatusOK {
			t.Errorf("%s is referenced but not served (status %d)", ref, w.Code)
			continue
		}
		if strings.HasSuffix(ref, ".js") {
			for _, m := range importRe.FindAllStringSubmatch(w.Body.String(), -1) {
				queue = append(queue, AssetPrefix+m[1])
			}
		}
	}
	if !seen["/ui/app.js"] || len(seen) < 5 {
		t.Errorf("walked only %v", seen)
	}
	// Every embedded asset is reachable (no dead files).
	fs.WalkDir(Files(), "ui", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !seen["/"+p] {
			t.Errorf("%s is embedded but nothing references it", p)
		}
		return nil
	})
}

func TestNoInlineCode(t *testing.T) {
	err := fs.WalkDir(Files(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(Files(), p)
		if err != nil {
			return err
		}
		s := string(b)
		switch {
		case strings.HasSuffix(p, ".html"):
			if inlineJSRe.MatchString(s) {
				t.Errorf("%s has an inline <script> body", p)
			}
			if styleAttrRe.MatchString(s) || strings.Contains(strings.ToLower(s), "<style") {
				t.Errorf("%s has inline style", p)
			}
			if eventAttrRe.MatchString(s) {
				t.Errorf("%s has an inline event handler attribute", p)
			}
		case strings.HasSuffix(p, ".js"):
			// Text from the network goes in as text: no markup sinks.
			for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
				if strings.Contains(s, sink) {
					t.Errorf("%s uses %s", p, sink)
				}
			}
			if strings.Contains(s, "http://") || strings.Contains(s, "https://") {
				t.Errorf("%s names another origin", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The detector itself: each hostile snippet is caught.
func TestInlineDetectors(t *testing.T) {
	for _, tc := range []struct {
		re   *regexp.Regexp
		html string
	}{
		{inlineJSRe, `<script>alert(1)</script>`},
		{inlineJSRe, "<SCRIPT type=\"module\">\n import x from './a.js'</SCRIPT>"},
		{styleAttrRe, `<p style="color:red">`},
		{styleAttrRe, `<p STYLE = 'x'>`},
		{eventAttrRe, `<img src=x onerror="alert(1)">`},
	} {
		if !tc.re.MatchString(tc.html) {
			t.Errorf("%s not caught by %s", tc.html, tc.re)
		}
	}
	if inlineJSRe.MatchString(`<script type="module" src="/ui/app.js"></script>`) {
		t.Error("an external script counted as inline")
	}
}

// Mount serves the page at / and the assets, and leaves every other path
// (the API) to the mux's other routes.
func TestMount(t *testing.T) {
	mux := http.NewServeMux()
	Mount(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.Error(w, `{"error":{"code":"no_route"}}`, 404) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for path, want := range map[string]string{"/": "<!doctype html>", "/ui/app.js": "import", "/v1/events": "no_route", "/x": "no_route"} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Errorf("GET %s: body %.60q, want it to contain %q", path, b, want)
		}
	}
}
