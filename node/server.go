// Package node serves one identity's channels over HTTP (API v1): the seed's
// "HTTP test harness", grown into a node any language, script or UI can
// drive. All bodies are JSON; MLS objects travel as base64 of their wire
// encoding. See api.go for the shapes and README for the endpoint list.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/wire"
	"github.com/spacepanda/spacepanda/node/webui"
	"github.com/spacepanda/spacepanda/provider"
	"github.com/spacepanda/spacepanda/store"
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

// Server is the HTTP API of one node.
type Server struct {
	p       *provider.Provider
	mgr     *channel.Manager
	opts    Options
	log     *slog.Logger
	metrics *metrics
	mux     *http.ServeMux
}

// New returns the server for the identity p and its channel manager.
func New(p *provider.Provider, mgr *channel.Manager, o Options) *Server {
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{p: p, mgr: mgr, opts: o, log: log, metrics: newMetrics(), mux: http.NewServeMux()}
	s.routes()
	return s
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) routes() {
	h := func(pattern, route string, f func(http.ResponseWriter, *http.Request) error) {
		s.mux.Handle(pattern, s.instrument(route, f))
	}
	h("GET /v1/identity", "identity", s.identity)
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
	h("DELETE /v1/channels/{id}/members/{user_id}", "members_remove", s.removeMember)
	h("PUT /v1/channels/{id}/members/{user_id}/role", "members_set_role", s.setRole)
	h("POST /v1/channels/{id}/update", "update", s.update)
	h("GET /v1/openapi.json", "openapi", serveOpenAPI)
	h("GET /healthz", "healthz", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	})
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
	return notFound("no_route", "no endpoint %s %s", r.Method, r.URL.Path)
}

func (s *Server) identity(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, IdentityResponse{UserID: string(s.p.UserID()), Name: s.p.DisplayName(),
		SignatureKey: enc64(s.p.SignaturePublicKey()), Ciphersuite: uint16(s.p.Suite().ID())})
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
		return badRequest("bad_count", "count must be between 1 and %d", MaxKeyPackagesPerRequest)
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
	writeJSON(w, http.StatusOK, KeyPackageCountResponse{Valid: c.OneTime + c.LastResort})
	return nil
}

func (s *Server) describe(ctx context.Context, d *channel.Descriptor, withMembers bool) (ChannelResponse, error) {
	resp := ChannelResponse{ChannelID: d.ID, Name: d.Name, GroupID: enc64(d.GroupID), IsPublic: d.Public}
	ep, err := s.mgr.Epoch(ctx, d.ID)
	if err != nil {
		return resp, err
	}
	resp.Epoch = ep
	if withMembers {
		ms, err := s.mgr.Members(ctx, d.ID)
		if err != nil {
			return resp, err
		}
		resp.MemberCount = len(ms)
	}
	return resp, nil
}

func (s *Server) createChannel(w http.ResponseWriter, r *http.Request) error {
	var req CreateChannelRequest
	if err := decodeBody(w, r, s.opts.MaxBody, &req); err != nil {
		return err
	}
	if req.Name == "" || len(req.Name) > 200 {
		return badRequest("bad_name", "name must be 1 to 200 bytes")
	}
	d, err := s.mgr.CreateChannel(r.Context(), req.Name, req.IsPublic)
	if err != nil {
		return err
	}
	resp, err := s.describe(r.Context(), d, true)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

func (s *Server) listChannels(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.mgr.Channels(r.Context())
	if err != nil {
		return err
	}
	resp := ChannelsResponse{Channels: []ChannelResponse{}}
	for _, d := range ds {
		c, err := s.describe(r.Context(), d, false)
		if err != nil {
			return err
		}
		resp.Channels = append(resp.Channels, c)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) getChannel(w http.ResponseWriter, r *http.Request) error {
	d, err := s.mgr.Channel(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	resp, err := s.describe(r.Context(), d, true)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) createInvite(w http.ResponseWriter, r *http.Request) error {
	var req InviteRequest
	if err := decodeBody(w, r, s.opts.MaxBody, &req); err != nil {
		return err
	}
	kp, err := b64("key_package", req.KeyPackage)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	role := channel.RoleMember
	if req.Role != "" {
		if role, err = channel.ParseRole(req.Role); err != nil {
			return err
		}
	}
	tok, commit, err := s.mgr.CreateInviteAs(r.Context(), id, kp, role)
	if err != nil {
		return err
	}
	inv, err := tok.MarshalBinary()
	if err != nil {
		return err
	}
	ep, err := s.mgr.Epoch(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, InviteResponse{Welcome: enc64(tok.Welcome), RatchetTree: enc64(tok.RatchetTree),
		Commit: enc64(commit), Epoch: ep, Invite: enc64(inv)})
	return nil
}

func (s *Server) join(w http.ResponseWriter, r *http.Request) error {
	var req JoinRequest
	if err := decodeBody(w, r, s.opts.MaxBody, &req); err != nil {
		return err
	}
	var d *channel.Descriptor
	switch {
	case req.Invite != "":
		raw, err := b64("invite", req.Invite)
		if err != nil {
			return err
		}
		var tok channel.InviteToken
		if err := tok.UnmarshalBinary(raw); err != nil {
			return badRequest("bad_invite", "invite does not decode: %v", err)
		}
		if d, err = s.mgr.JoinChannel(r.Context(), &tok); err != nil {
			return err
		}
	default:
		welcome, err := b64("welcome", req.Welcome)
		if err != nil {
			return err
		}
		var rt []byte
		if req.RatchetTree != "" {
			if rt, err = b64("ratchet_tree", req.RatchetTree); err != nil {
				return err
			}
		}
		if d, err = s.mgr.JoinWelcome(r.Context(), welcome, rt); err != nil {
			return err
		}
	}
	resp, err := s.describe(r.Context(), d, true)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

// MaxTextBytes bounds a chat message's text.
const MaxTextBytes = 64 << 10

func (s *Server) sendMessage(w http.ResponseWriter, r *http.Request) error {
	var req SendRequest
	if err := decodeBody(w, r, s.opts.MaxBody, &req); err != nil {
		return err
	}
	if req.Text == "" {
		return badRequest("missing_field", "text is required")
	}
	if len(req.Text) > MaxTextBytes {
		return &apiError{status: http.StatusRequestEntityTooLarge, code: "text_too_large", msg: "text over 64 KiB"}
	}
	id, ct, err := s.mgr.SendMessage(r.Context(), r.PathValue("id"), req.Text, req.ReplyTo)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, SendResponse{MessageID: id, Ciphertext: enc64(ct)})
	return nil
}

func chatOf(m *store.Message) *ChatMessage {
	if m == nil {
		return nil
	}
	return &ChatMessage{MessageID: m.ID, Sender: m.Sender, Text: string(m.Body),
		Timestamp: m.Timestamp.UTC().Format(time.RFC3339Nano), ReplyTo: m.ReplyTo}
}

func (s *Server) inbox(w http.ResponseWriter, r *http.Request) error {
	var req InboxRequest
	if err := decodeBody(w, r, s.opts.MaxBody, &req); err != nil {
		return err
	}
	msg, err := b64("message", req.Message)
	if err != nil {
		return err
	}
	// An unknown channel is a 404 whatever the message holds (ReceiveFor
	// would first call it a message for another channel).
	id := r.PathValue("id")
	if _, err := s.mgr.Channel(r.Context(), id); err != nil {
		return err
	}
	ev, err := s.mgr.ReceiveFor(r.Context(), id, msg)
	if err != nil {
		return err
	}
	resp := InboxResponse{Epoch: ev.Epoch, Message: chatOf(ev.Message)}
	switch ev.Kind {
	case channel.EventChatMessage:
		resp.Kind = "application"
	case channel.EventProposal:
		resp.Kind = "proposal"
	default:
		resp.Kind = "commit"
		resp.Removed = ev.Kind == channel.EventRemoved
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// historyPage reads the paging query of GET .../messages: after (a
// sequence number, default 0) and limit (1 to 10000, default 1000).
func historyPage(r *http.Request) (after uint64, limit int, err error) {
	q := r.URL.Query()
	limit = 1000
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			return 0, 0, badRequest("bad_query", "after must be a sequence number")
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return 0, 0, badRequest("bad_query", "limit must be 1 to 10000")
		}
		limit = n
	}
	return after, limit, nil
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) error {
	after, limit, err := historyPage(r)
	if err != nil {
		return err
	}
	msgs, err := s.mgr.History(r.Context(), r.PathValue("id"), after, limit)
	if err != nil {
		return err
	}
	resp := MessagesResponse{Messages: make([]ChatMessage, 0, len(msgs))}
	for i := range msgs {
		resp.Messages = append(resp.Messages, *chatOf(&msgs[i]))
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.mgr.Leaves(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	resp := MembersResponse{Members: make([]MemberResponse, 0, len(ms))}
	for _, m := range ms {
		resp.Members = append(resp.Members, MemberResponse{UserID: m.Identity, LeafIndex: m.LeafIndex, Role: string(m.Role)})
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) commitResponse(w http.ResponseWriter, r *http.Request, commit []byte) error {
	ep, err := s.mgr.Epoch(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, CommitResponse{Commit: enc64(commit), Epoch: ep})
	return nil
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) error {
	// An unknown channel is a 404 before anything about the member.
	if _, err := s.mgr.Channel(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	commit, err := s.mgr.RemoveMember(r.Context(), r.PathValue("id"), r.PathValue("user_id"))
	if err != nil {
		return err
	}
	return s.commitResponse(w, r, commit)
}

// setRole commits a member's new role; the commit goes to the other members.
func (s *Server) setRole(w http.ResponseWriter, r *http.Request) error {
	var req SetRoleRequest
	if err := decodeBody(w, r, s.opts.MaxBody, &req); err != nil {
		return err
	}
	role, err := channel.ParseRole(req.Role)
	if err != nil {
		return err
	}
	if _, err := s.mgr.Channel(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	commit, err := s.mgr.SetRole(r.Context(), r.PathValue("id"), r.PathValue("user_id"), role)
	if err != nil {
		return err
	}
	return s.commitResponse(w, r, commit)
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) error {
	commit, err := s.mgr.SelfUpdate(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.commitResponse(w, r, commit)
}

// classify maps an error to its HTTP status and code, in one place.
func classify(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	type rule struct {
		target error
		status int
		code   string
	}
	rules := []rule{
		{channel.ErrChannelNotFound, http.StatusNotFound, "unknown_channel"},
		{channel.ErrMemberNotFound, http.StatusNotFound, "unknown_member"},
		// A channel we were removed from keeps its history but has no group
		// any more: ErrNotMember (joined with ErrGroupNotFound) is a 409.
		{channel.ErrNotMember, http.StatusConflict, "not_member"},
		{provider.ErrGroupNotFound, http.StatusNotFound, "unknown_channel"},
		{channel.ErrChannelExists, http.StatusConflict, "already_member"},
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
		{channel.ErrBodyTooLarge, http.StatusRequestEntityTooLarge, "body_too_large"},
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
	return &apiError{status: http.StatusInternalServerError, code: "internal", msg: "internal error", err: err}
}
