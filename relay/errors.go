package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
)

// Errors and JSON answers: every refusal is {"error":{"code","message"}}.

type apiError struct {
	status int
	code   string
	msg    string
	epoch  *uint64 // current_epoch of a commit conflict
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": publicMessage(msg)}})
}

// publicMessage makes an error message one line without the package
// prefixes a wrapped error chain repeats ("relay: ", "mls: ", …): the
// code says where it comes from.
func publicMessage(msg string) string {
	parts := strings.Split(oneLine(msg), ": ")
	out := parts[:0]
	for _, p := range parts {
		switch p {
		case "relay", "relayclient", "mls", "identity", "wire", "suite", "tree", "json":
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, ": ")
}

// fail writes err: an *apiError as is, store errors by kind, anything
// else as 500 (logged; the message is not shown).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	var qe *quotaErr
	if errors.As(err, &qe) {
		setRetryAfter(w, qe.retry)
	}
	ae := s.apiErr(err)
	if ae.status == http.StatusInternalServerError {
		s.log.Error("relay: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if ae.epoch != nil {
		writeJSON(w, ae.status, map[string]any{"error": map[string]string{"code": ae.code, "message": publicMessage(ae.msg)}, "current_epoch": *ae.epoch})
		return
	}
	writeError(w, ae.status, ae.code, ae.msg)
}

// apiErr maps err to its answer.
func (s *Server) apiErr(err error) *apiError {
	var ae *apiError
	var qe *quotaErr
	switch {
	case errors.As(err, &qe):
		ae = qe.apiError
	case errors.As(err, &ae):
	case errors.Is(err, ErrNotFound):
		ae = errf(http.StatusNotFound, "not_found", "%v", err)
	case errors.Is(err, ErrForbidden):
		ae = errf(http.StatusForbidden, "forbidden", "%v", err)
	case errors.Is(err, ErrNotMember):
		ae = errf(http.StatusForbidden, "recipient_not_member", "%v", err)
	case errors.Is(err, ErrRevoked):
		ae = errf(http.StatusForbidden, "device_revoked", "%v", err)
	case errors.Is(err, ErrFutureEpoch):
		ae = errf(http.StatusConflict, "future_epoch", "%v", err)
	case errors.Is(err, ErrStaleEpoch):
		ae = errf(http.StatusConflict, "stale_epoch", "%v", err)
	case errors.Is(err, ErrExists):
		ae = errf(http.StatusConflict, "exists", "%v", err)
	case errors.Is(err, ErrLimit):
		ae = errf(http.StatusConflict, "limit", "%v", err)
	case errors.Is(err, ErrUnknownUser):
		ae = errf(http.StatusNotFound, "unknown_recipient", "%v", err)
	case errors.Is(err, ErrStale):
		ae = errf(http.StatusConflict, "stale_group_info", "%v", err)
	default:
		ae = errf(http.StatusInternalServerError, "internal", "internal error")
	}
	return ae
}

// decode reads exactly one JSON value into v; unknown fields are refused.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errf(http.StatusRequestEntityTooLarge, "too_large", "request body over %d bytes", mbe.Limit)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return errf(http.StatusBadRequest, "bad_request", "invalid JSON body: %s is not a JSON %s", te.Field, jsonKind(te.Type))
		}
		return errf(http.StatusBadRequest, "bad_request", "invalid JSON body: %s", oneLine(err.Error()))
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errf(http.StatusRequestEntityTooLarge, "too_large", "request body over %d bytes", mbe.Limit)
		}
		return errf(http.StatusBadRequest, "bad_request", "trailing data after the JSON body")
	}
	return nil
}

// jsonKind names the JSON value a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "base64 string"
		}
		return "array"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Uint32, reflect.Int32, reflect.Float64:
		return "number"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "object"
}

// oneLine cuts s to one short line (a JSON error may quote the input).
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
