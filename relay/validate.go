package relay

import (
	"encoding/base64"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spacepanda/spacepanda/identity"
)

// Validation of identifiers and query parameters.

// checkMemberIDs checks a list of user ids naming group members: distinct
// canonical user ids (identity.UserID), at most maxList.
func checkMemberIDs(field string, us []string) error {
	if err := checkUserIDs(field, us); err != nil {
		return err
	}
	for _, u := range us {
		if _, err := identity.ParseUserID(u); err != nil {
			return errf(http.StatusBadRequest, "bad_request", "%s: %q is not a user id", field, oneLine(u))
		}
	}
	return nil
}

func checkUserID(field, u string) error {
	if u == "" || len(u) > MaxUserIDLen || !utf8.ValidString(u) || strings.ContainsRune(u, 0) {
		return errf(http.StatusBadRequest, "bad_request", "%s: a user id is 1 to %d bytes of UTF-8 without NUL", field, MaxUserIDLen)
	}
	return nil
}

func checkUserIDs(field string, us []string) error {
	if len(us) > maxList {
		return errf(http.StatusBadRequest, "bad_request", "%s: more than %d user ids", field, maxList)
	}
	seen := make(map[string]bool, len(us))
	for _, u := range us {
		if err := checkUserID(field, u); err != nil {
			return err
		}
		if seen[u] {
			return errf(http.StatusBadRequest, "bad_request", "%s: %q listed twice", field, u)
		}
		seen[u] = true
	}
	return nil
}

func checkGroupID(gid []byte) error {
	if len(gid) == 0 || len(gid) > MaxGroupIDLen {
		return errf(http.StatusBadRequest, "bad_request", "group_id must be 1 to %d bytes", MaxGroupIDLen)
	}
	return nil
}

// pathGroupID decodes {gid}: base64url without padding (the form clients
// should use in a path), or any of standard/URL base64 with or without
// padding ('/' percent-encoded). The alphabets agree where they overlap,
// so the decodings cannot disagree.
func pathGroupID(r *http.Request) ([]byte, error) { return decodePathGroupID(r.PathValue("gid")) }

func decodePathGroupID(p string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if gid, err := enc.Strict().DecodeString(p); err == nil {
			return gid, checkGroupID(gid)
		}
	}
	return nil, errf(http.StatusBadRequest, "bad_request", "group id in the path is not base64")
}

// waitParam parses ?wait=SECONDS (capped at MaxWait).
func (s *Server) waitParam(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 || math.IsNaN(n) {
		return 0, errf(http.StatusBadRequest, "bad_request", "wait must be a number of seconds >= 0")
	}
	if n*float64(time.Second) >= float64(s.o.MaxWait) {
		return s.o.MaxWait, nil
	}
	return time.Duration(n * float64(time.Second)), nil
}

func intParam(r *http.Request, name string, def, lo, hi int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo {
		return 0, errf(http.StatusBadRequest, "bad_request", "%s must be an integer >= %d", name, lo)
	}
	return min(n, hi), nil
}
