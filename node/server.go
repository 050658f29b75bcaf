// Package node serves one identity's channels over HTTP (API v1): a thin
// layer over the sync engine (package client) that any language, script or
// UI can drive, with one route set whether or not the node uses a relay.
// All bodies are JSON; MLS objects travel as base64 of their wire
// encoding. See api.go for the shapes and README for the endpoint list.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/client"
	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/wire"
	"github.com/spacepanda/spacepanda/node/webui"
	"github.com/spacepanda/spacepanda/provider"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
)

// Options configure a Server.
type Options struct {
	// Token, when set, is the bearer token every request must carry.
	Token []byte
	// MaxBody is the largest request body accepted (0: DefaultMaxBody).
	MaxBody int64
	// Logger receives request failures (nil: discard).
	Logger *slog.Logger
}

// DefaultMaxBody bounds request bodies: a Welcome for a large group is the
// largest legitimate one.
const DefaultMaxBody = 8 << 20

// Server is the HTTP API of one node: a thin layer over the sync engine
// (package client), one route set with or without a relay.
type Server struct {
	c       *client.Client
	p       *provider.Provider
	mgr     *channel.Manager
	opts    Options
	log     *slog.Logger
	metrics *metrics
	mux     *http.ServeMux
}

// New returns the server of the engine c.
func New(c *client.Client, o Options) *Server {
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{c: c, p: c.Provider(), mgr: c.Manager(), opts: o, log: log, metrics: newMetrics(), mux: http.NewServeMux()}
	s.metrics.domain(c)
	s.routes()
	return s
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.guard(s.mux) }

// Mux is the route table (another package mounts its handler at "/" here).
func (s *Server) Mux() *http.ServeMux { return s.mux }

func (s *Server) routes() {
	h := func(pattern, route string, f func(http.ResponseWriter, *http.Request) error) {
		s.mux.Handle(pattern, s.instrument(route, f))
	}
	h("GET /v1/identity", "identity", s.identity)
	h("GET /v1/devices", "devices_list", s.listDevices)
	h("POST /v1/devices/link", "devices_link_offer", s.offerLink)
	h("POST /v1/devices/link/accept", "devices_link_accept", s.acceptLink)
	h("DELETE /v1/devices/{id}", "devices_revoke", s.revokeDevice)
	h("POST /v1/key-packages", "key_packages_create", s.createKeyPackages)
	h("GET /v1/key-packages", "key_packages_count", s.countKeyPackages)
	h("POST /v1/channels", "channels_create", s.createChannel)
	h("GET /v1/channels", "channels_list", s.listChannels)
	h("GET /v1/channels/{id}", "channel_get", s.getChannel)
	h("POST /v1/channels/{id}/invites", "invites_create", s.createInvite)
	h("POST /v1/join", "join", s.join)
	h("POST /v1/channels/{id}/messages", "messages_send", s.sendMessage)
	h("GET /v1/channels/{id}/messages", "messages_list", s.listMessages)
	h("POST /v1/channels/{id}/inbox", "inbox", s.inbox)
	h("GET /v1/channels/{id}/members", "members_list", s.listMembers)
	h("DELETE /v1/channels/{id}/members/me", "members_leave", s.leave)
	h("DELETE /v1/channels/{id}/members/{user_id}", "members_remove", s.removeMember)
	h("PUT /v1/channels/{id}/members/{user_id}/role", "members_set_role", s.setRole)
	h("POST /v1/channels/{id}/update", "update", s.update)
	h("GET /v1/channels/{id}/changes", "changes", s.listChanges)
	h("GET /v1/openapi.json", "openapi", serveOpenAPI)
	h("GET /v1/invitations", "invitations_list", s.listInvitations)
	h("POST /v1/invitations/{id}/accept", "invitations_accept", s.acceptInvitation)
	h("POST /v1/invitations/{id}/decline", "invitations_decline", s.declineInvitation)
	h("GET /v1/contacts", "contacts_list", s.listContacts)
	h("PUT /v1/contacts/{user_id}", "contacts_put", s.putContact)
	h("DELETE /v1/contacts/{user_id}", "contacts_delete", s.deleteContact)
	h("GET /v1/contacts/{user_id}/safety-number", "safety_number", s.safetyNumber)
	h("GET /v1/events", "events", s.events)
	h("GET /v1/relay", "relay_status", s.relayStatus)
	s.mux.Handle("GET /healthz", s.open("healthz", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	}))
	s.mux.Handle("GET /readyz", s.open("readyz", s.readyz))
	// /metrics sits behind the bearer token too: every request needs it.
	metricsHandler := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
	s.mux.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.authorize(r); err != nil {
			s.fail(w, r, err)
			return
		}
		metricsHandler.ServeHTTP(w, r)
	}))
	webui.Mount(s.mux) // the browser client: GET / and /ui/ only
	h("/", "not_found", s.noRoute)
}

// noRoute answers a request no pattern matched: 405 (with Allow) when the
// path exists under another method, else 404; both as JSON errors.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) error {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pat := s.mux.Handler(r2); pat != "" && pat != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
			msg: fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))}
	}
	return notFound("not_found", "no endpoint %s %s", r.Method, r.URL.Path)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	resp := ReadyResponse{Status: "ok", Relay: "none"}
	if s.c.HasRelay() {
		resp.Relay = "unreachable"
		if s.c.Reachable() {
			resp.Relay = "reachable"
		} else {
			resp.Status = "degraded"
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) identity(w http.ResponseWriter, r *http.Request) error {
	resp := IdentityResponse{UserID: string(s.p.UserID()), Name: s.p.DisplayName(), DisplayName: s.p.DisplayName(),
		DeviceID: s.p.DeviceID().String(), Fingerprint: identity.Fingerprint(s.p.IdentityKey()),
		SignatureKey: enc64(s.p.SignaturePublicKey()), Ciphersuite: uint16(s.p.Suite().ID())}
	if resp.UserID == "" {
		// A device waiting to be linked has no identity key yet: a
		// fingerprint of the zero key would be the same on every such device.
		resp.Fingerprint = ""
	}
	if s.c.HasRelay() {
		resp.Relay = &RelayInfo{URL: s.c.RelayURL(), Reachable: s.c.Reachable()}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// MaxKeyPackagesPerRequest bounds POST /v1/key-packages.
const MaxKeyPackagesPerRequest = 500

func (s *Server) createKeyPackages(w http.ResponseWriter, r *http.Request) error {
	var req KeyPackagesRequest
	if err := decodeBody(w, r, s.opts.MaxBody, &req); err != nil {
		return err
	}
	if req.Count < 1 || req.Count > MaxKeyPackagesPerRequest {
		return badRequest("bad_request", "count must be between 1 and %d", MaxKeyPackagesPerRequest)
	}
	kps, err := s.mgr.GenerateKeyPackages(r.Context(), req.Count)
	if err != nil {
		return err
	}
	resp := KeyPackagesResponse{KeyPackages: make([]string, len(kps))}
	for i, kp := range kps {
		resp.KeyPackages[i] = enc64(kp)
	}
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

func (s *Server) countKeyPackages(w http.ResponseWriter, r *http.Request) error {
	c, err := s.p.KeyPackageCount(r.Context())
	if err != nil {
		return err
	}
	n := c.OneTime + c.LastResort
	writeJSON(w, http.StatusOK, KeyPackageCountResponse{Valid: n, Available: n})
	return nil
}

// classify maps an error to its HTTP status and code, in one place.
func classify(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	// The relay's rate limit first: the engine reports a 429 it could not
	// wait out as ErrRelayUnreachable too, but the caller should learn when
	// to try again.
	var re *relayclient.Error
	if errors.As(err, &re) && re.Status == http.StatusTooManyRequests {
		return &apiError{status: http.StatusTooManyRequests, code: "rate_limited", err: err, retryAfter: re.RetryAfter,
			msg: fmt.Sprintf("the relay is rate limiting this node (%s): retry after %s s", re.Code, retryAfterSeconds(re.RetryAfter))}
	}
	// A 403 the relay gives for another reason than our removal from the
	// channel (below): passed on as the relay's refusal.
	if errors.As(err, &re) && re.Status == http.StatusForbidden &&
		re.Code != "forbidden" && re.Code != "device_revoked" && re.Code != "recipient_not_member" {
		return &apiError{status: http.StatusForbidden, code: "relay_forbidden", msg: err.Error(), err: err}
	}
	type rule struct {
		target error
		status int
		code   string
	}
	rules := []rule{
		{client.ErrNotActive, http.StatusConflict, "channel_not_active"},
		{client.ErrAlreadyLinked, http.StatusConflict, "already_linked"},
		{client.ErrLinkFailed, http.StatusConflict, "link_failed"},
		{identity.ErrLinkAuth, http.StatusConflict, "link_failed"},
		{identity.ErrLinkCode, http.StatusBadRequest, "bad_link_code"},
		{client.ErrRevokeSelf, http.StatusBadRequest, "revoke_self"},
		{client.ErrDeviceNotFound, http.StatusNotFound, "not_found"},
		{provider.ErrNotLinked, http.StatusConflict, "not_linked"},
		{provider.ErrNoIdentityKey, http.StatusConflict, "no_identity_key"},
		{provider.ErrSelfRevoked, http.StatusConflict, "device_revoked"},
		{client.ErrRelayUnreachable, http.StatusServiceUnavailable, "relay_unreachable"},
		{client.ErrRelayRequired, http.StatusPreconditionFailed, "relay_required"},
		{client.ErrNoKeyPackage, http.StatusNotFound, "no_key_package"},
		{client.ErrInviteSelf, http.StatusBadRequest, "invite_self"},
		{client.ErrLookalikeGroup, http.StatusConflict, "lookalike_group"},
		{client.ErrCommitConflict, http.StatusConflict, "commit_conflict"},
		{client.ErrDeliveryRefused, http.StatusConflict, "channel_not_active"},
		// Our user revoked this device: the relay refuses it.
		{relayclient.ErrRevoked, http.StatusConflict, "device_revoked"},
		// A Welcome posted before its commit reached the relay.
		{relayclient.ErrNotMember, http.StatusConflict, "recipient_not_member"},
		// The relay no longer counts us a member (our removal is on its way).
		{relayclient.ErrForbidden, http.StatusConflict, "channel_not_active"},
		// The relay's other refusals a caller can act on.
		{relayclient.ErrCommitConflict, http.StatusConflict, "commit_conflict"},
		{relayclient.ErrStaleEpoch, http.StatusConflict, "stale_epoch"},
		{relayclient.ErrFutureEpoch, http.StatusConflict, "future_epoch"},
		{relayclient.ErrInvalidCommit, http.StatusConflict, "commit_refused"},
		{relayclient.ErrNoDevice, http.StatusConflict, "not_linked"},
		{relayclient.ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
		{relayclient.ErrNotFound, http.StatusNotFound, "not_found"},
		{relayclient.ErrConflict, http.StatusConflict, "relay_conflict"},
		// An answer over the relay's own documented bounds: the relay
		// misbehaves, not this node.
		{relayclient.ErrResponseTooLarge, http.StatusBadGateway, "bad_relay_answer"},
		{client.ErrInvitationNotFound, http.StatusNotFound, "not_found"},
		{client.ErrContactNotFound, http.StatusNotFound, "not_found"},
		{channel.ErrChannelNotFound, http.StatusNotFound, "not_found"},
		{channel.ErrMemberNotFound, http.StatusNotFound, "not_found"},
		// A channel we were removed from keeps its history but has no group
		// any more: ErrNotMember (joined with ErrGroupNotFound) is a 409.
		{channel.ErrNotMember, http.StatusConflict, "channel_not_active"},
		{provider.ErrGroupNotFound, http.StatusNotFound, "not_found"},
		{channel.ErrChannelExists, http.StatusConflict, "already_member"},
		{channel.ErrAlreadyMember, http.StatusConflict, "already_member"},
		{channel.ErrDeviceExists, http.StatusConflict, "already_member"},
		{provider.ErrGroupExists, http.StatusConflict, "already_member"},
		{channel.ErrDuplicateMessage, http.StatusConflict, "duplicate_message"},
		{channel.ErrRemoveSelf, http.StatusConflict, "remove_self"},
		{mls.ErrWrongEpoch, http.StatusConflict, "wrong_epoch"},
		{mls.ErrPendingProposals, http.StatusConflict, "pending_proposals"},
		{mls.ErrOwnCommit, http.StatusConflict, "own_commit"},
		{mls.ErrNotMember, http.StatusConflict, "not_member"},
		{schedule.ErrKeyConsumed, http.StatusConflict, "replayed_message"},
		{channel.ErrPermission, http.StatusForbidden, "forbidden"},
		{channel.ErrLastAdmin, http.StatusConflict, "last_admin"},
		{channel.ErrNoRoles, http.StatusConflict, "no_roles"},
		{channel.ErrInvalidRole, http.StatusBadRequest, "bad_role"},
		{channel.ErrRolesUnsupported, http.StatusBadRequest, "roles_unsupported"},
		{mls.ErrReInitPending, http.StatusConflict, "reinit_pending"},
		{mls.ErrGroupExists, http.StatusConflict, "already_member"},
		{channel.ErrBodyTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
		{channel.ErrInviteExpired, http.StatusBadRequest, "invite_expired"},
		{channel.ErrInvalidInvite, http.StatusBadRequest, "bad_invite"},
		{channel.ErrWrongChannel, http.StatusBadRequest, "wrong_channel"},
		{channel.ErrInvalidEncoding, http.StatusBadRequest, "bad_encoding"},
		{mls.ErrNoMatchingKeyPackage, http.StatusBadRequest, "no_matching_key_package"},
		{mls.ErrInvalidKeyPackage, http.StatusBadRequest, "invalid_key_package"},
		{mls.ErrWrongGroup, http.StatusBadRequest, "wrong_channel"},
		{mls.ErrDecryption, http.StatusBadRequest, "decryption_failed"},
		{mls.ErrInvalidSignature, http.StatusBadRequest, "invalid_signature"},
		{mls.ErrInvalidMembershipTag, http.StatusBadRequest, "invalid_membership_tag"},
		{mls.ErrInvalidConfirmationTag, http.StatusBadRequest, "invalid_confirmation_tag"},
		{schedule.ErrGenerationTooOld, http.StatusBadRequest, "message_too_old"},
		{schedule.ErrGenerationTooFar, http.StatusBadRequest, "message_too_far_ahead"},
		{wire.ErrInvalidValue, http.StatusBadRequest, "malformed_message"},
		{wire.ErrTruncated, http.StatusBadRequest, "malformed_message"},
		{wire.ErrTrailingData, http.StatusBadRequest, "malformed_message"},
		{wire.ErrNonMinimalVarint, http.StatusBadRequest, "malformed_message"},
		{wire.ErrInvalidVarint, http.StatusBadRequest, "malformed_message"},
		{wire.ErrInvalidOptional, http.StatusBadRequest, "malformed_message"},
		{mls.ErrUnsupportedVersion, http.StatusBadRequest, "malformed_message"},
		{mls.ErrInvalidMessage, http.StatusBadRequest, "invalid_message"},
		{mls.ErrInvalidCommit, http.StatusBadRequest, "invalid_commit"},
		{mls.ErrInvalidProposal, http.StatusBadRequest, "invalid_proposal"},
		{mls.ErrUnknownProposal, http.StatusBadRequest, "unknown_proposal"},
		{mls.ErrInvalidWelcome, http.StatusBadRequest, "invalid_welcome"},
		{mls.ErrUnknownSender, http.StatusBadRequest, "unknown_sender"},
		{mls.ErrUnknownWireFormat, http.StatusBadRequest, "malformed_message"},
		{mls.ErrUnknownContentType, http.StatusBadRequest, "malformed_message"},
		{mls.ErrUnknownSenderType, http.StatusBadRequest, "malformed_message"},
		{mls.ErrUnknownProposalType, http.StatusBadRequest, "malformed_message"},
		{mls.ErrUnknownProposalOrRefType, http.StatusBadRequest, "malformed_message"},
		{mls.ErrNonZeroPadding, http.StatusBadRequest, "malformed_message"},
		{mls.ErrIncompleteValue, http.StatusBadRequest, "malformed_message"},
		{mls.ErrPathRequired, http.StatusBadRequest, "invalid_commit"},
		{mls.ErrMissingPSK, http.StatusBadRequest, "missing_psk"},
		{mls.ErrInvalidGroupInfo, http.StatusBadRequest, "invalid_group_info"},
		{mls.ErrUnsupportedExtension, http.StatusBadRequest, "unsupported_extension"},
		{mls.ErrKeyPackageNotFound, http.StatusBadRequest, "no_matching_key_package"},
		{mls.ErrInvalidLeafNode, http.StatusBadRequest, "invalid_leaf_node"},
		{mls.ErrExpired, http.StatusBadRequest, "expired"},
		{mls.ErrUnsupportedCapability, http.StatusBadRequest, "unsupported_capability"},
		{mls.ErrInvalidCredential, http.StatusBadRequest, "invalid_credential"},
		// A peer's message the group's policy (channel roles) forbids.
		{mls.ErrPolicy, http.StatusBadRequest, "policy_violation"},
	}
	for _, rl := range rules {
		if errors.Is(err, rl.target) {
			return &apiError{status: rl.status, code: rl.code, msg: err.Error(), err: err}
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &apiError{status: http.StatusServiceUnavailable, code: "cancelled", msg: "request cancelled", err: err}
	}
	if errors.As(err, &re) {
		return classifyRelay(re, err)
	}
	// A relay call that failed on the network without the engine naming it
	// (connection refused, reset, DNS): the relay is away, not a bug.
	var ne net.Error
	if errors.As(err, &ne) {
		return &apiError{status: http.StatusServiceUnavailable, code: "relay_unreachable", msg: err.Error(), err: err}
	}
	return &apiError{status: http.StatusInternalServerError, code: "internal", msg: "internal error", err: err}
}

// classifyRelay maps a relay answer no sentinel rule named, by its status:
// a relay that fails or is overloaded is "try again later" (503), one that
// refuses our login or our request is the relay's answer passed on (502),
// never an internal error of this node.
func classifyRelay(re *relayclient.Error, err error) *apiError {
	ae := &apiError{msg: err.Error(), err: err}
	switch {
	case re.Status >= 500:
		ae.status, ae.code = http.StatusServiceUnavailable, "relay_unreachable"
		ae.retryAfter = re.RetryAfter
	case re.Status == http.StatusUnauthorized:
		ae.status, ae.code = http.StatusBadGateway, "relay_unauthorized"
	default:
		ae.status, ae.code = http.StatusBadGateway, "relay_refused"
	}
	return ae
}
