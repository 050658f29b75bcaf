package node

import (
	_ "embed"
	"net/http"
)

// The node's OpenAPI 3.1 description (CONTRACT.md's node API), generated
// by internal/apidoc.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the node's OpenAPI 3.1 document (a copy).
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

// serveOpenAPI answers GET /v1/openapi.json.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, err := w.Write(openAPI)
	return err
}
