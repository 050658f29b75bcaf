package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/client"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/store"
)

// rfc3339 is the time format of every API time.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// describe is the channel d as the API shows it; a channel that is not
// active carries only its state.
func (s *Server) describe(ctx context.Context, d *channel.Descriptor) (ChannelResponse, error) {
	resp := ChannelResponse{ChannelID: d.ID, Name: d.Name, GroupID: enc64(d.GroupID), IsPublic: d.Public}
	st, err := s.c.State(ctx, d.ID)
	if err != nil {
		return resp, err
	}
	resp.State, resp.RemovedBy, resp.RecoveryCausedBy = st.State, st.RemovedBy, st.RecoveryCausedBy
	if st.State != client.StateActive {
		return resp, nil
	}
	ep, err := s.mgr.Epoch(ctx, d.ID)
	if errors.Is(err, channel.ErrNotMember) {
		// No group any more (removed while we were away): say so.
		resp.State = client.StateRemoved
		return resp, nil
	}
	if err != nil {
		return resp, err // a store failure is not a removal
	}
	resp.Epoch = ep
	_, rerr := s.mgr.Roles(ctx, d.ID)
	resp.Roles = rerr == nil
	ms, err := s.mgr.Members(ctx, d.ID)
	if err != nil {
		return resp, err
	}
	resp.MemberCount = len(ms)
	return resp, nil
}

func (s *Server) createChannel(w http.ResponseWriter, r *http.Request) error {
	var req CreateChannelRequest
	if err := decodeBody(w, r, s.opts.MaxBody, &req); err != nil {
		return err
	}
	if req.Name == "" || len(req.Name) > 200 {
		return badRequest("bad_request", "name must be 1 to 200 bytes")
	}
	roles := req.Roles == nil || *req.Roles
	d, err := s.c.CreateChannel(r.Context(), req.Name, req.IsPublic, roles)
	if err != nil {
		return err
	}
	return s.writeChannel(w, r, http.StatusCreated, d)
}

func (s *Server) listChannels(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.mgr.Channels(r.Context())
	if err != nil {
		return err
	}
	resp := ChannelsResponse{Channels: []ChannelResponse{}}
	for _, d := range ds {
		c, err := s.describe(r.Context(), d)
		if err != nil {
			s.log.Warn("describing a channel", "channel", d.ID, "err", err)
			c.State = client.StateRemoved
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
	return s.writeChannel(w, r, http.StatusOK, d)
}

func (s *Server) createInvite(w http.ResponseWriter, r *http.Request) error {
	var req InviteRequest
	if err := decodeBody(w, r, s.opts.MaxBody, &req); err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := s.mgr.Channel(r.Context(), id); err != nil {
		return err
	}
	ir := client.InviteRequest{UserID: req.UserID, Role: channel.RoleMember}
	switch {
	case req.UserID != "" && req.KeyPackage != "":
		return badRequest("bad_request", "give user_id or key_package, not both")
	case req.UserID == "":
		kp, err := b64("key_package", req.KeyPackage)
		if err != nil {
			return err
		}
		ir.KeyPackages = [][]byte{kp}
	}
	if req.Role != "" {
		role, err := channel.ParseRole(req.Role)
		if err != nil {
			return err
		}
		ir.Role = role
	}
	res, err := s.c.Invite(r.Context(), id, ir)
	if err != nil {
		return err
	}
	resp := InviteResponse{Status: res.Status, ID: res.ID, Epoch: res.Epoch, UserIDs: res.Added, LastResort: res.LastResort}
	if !s.c.HasRelay() {
		resp.Commit, resp.Welcome, resp.RatchetTree = enc64(res.Commit), enc64(res.Welcome), enc64(res.RatchetTree)
		if res.Invite != nil {
			inv, err := res.Invite.MarshalBinary()
			if err != nil {
				return err
			}
			resp.Invite = enc64(inv)
		}
	}
	writeJSON(w, http.StatusAccepted, resp)
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
			return badRequest("bad_request", "invite does not decode: %v", err)
		}
		if d, err = s.c.JoinInvite(r.Context(), &tok); err != nil {
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
		if d, err = s.c.JoinWelcome(r.Context(), welcome, rt); err != nil {
			return err
		}
	}
	return s.writeChannel(w, r, http.StatusCreated, d)
}

// MaxTextBytes bounds a chat message's text.
const MaxTextBytes = 64 << 10

func (s *Server) sendMessage(w http.ResponseWriter, r *http.Request) error {
	var req SendRequest
	if err := decodeBody(w, r, s.opts.MaxBody, &req); err != nil {
		return err
	}
	if req.Text == "" {
		return badRequest("bad_request", "text is required")
	}
	if len(req.Text) > MaxTextBytes {
		return &apiError{status: http.StatusRequestEntityTooLarge, code: "too_large", msg: "text over 64 KiB"}
	}
	res, err := s.c.Send(r.Context(), r.PathValue("id"), req.Text, req.ReplyTo)
	if err != nil {
		return err
	}
	resp := SendResponse{MessageID: res.MessageID, Status: res.Status, SentAt: rfc3339(res.SentAt), Epoch: res.Epoch}
	if !s.c.HasRelay() {
		resp.Ciphertext = enc64(res.Ciphertext)
	}
	writeJSON(w, http.StatusAccepted, resp)
	return nil
}

func (s *Server) chatOf(ctx context.Context, m *store.Message, queued map[string]bool, senders map[string]*client.Contact) *ChatMessage {
	if m == nil {
		return nil
	}
	cm := &ChatMessage{Seq: m.Seq, MessageID: m.ID, Sender: SenderInfo{UserID: m.Sender}, Text: string(m.Body),
		SentAt: rfc3339(m.Timestamp), ReceivedAt: rfc3339(m.ReceivedAt), ReplyTo: m.ReplyTo}
	if m.Sender == s.mgr.Identity() {
		cm.Sender.DisplayName = s.p.DisplayName()
		cm.Status = "sent"
		if queued[m.ID] {
			cm.Status = "queued"
		}
	} else if ct := s.contactOf(ctx, m.Sender, senders); ct != nil {
		cm.Sender.DisplayName, cm.Sender.Verified = ct.DisplayName, ct.Verified && !ct.KeyChanged
	}
	return cm
}

// contactOf is the contact of user (nil: none), looked up once in seen
// (nil: no memo).
func (s *Server) contactOf(ctx context.Context, user string, seen map[string]*client.Contact) *client.Contact {
	if ct, ok := seen[user]; ok {
		return ct
	}
	ct, err := s.c.Contact(ctx, user)
	if err != nil {
		ct = nil
	}
	if seen != nil {
		seen[user] = ct
	}
	return ct
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
	id := r.PathValue("id")
	if _, err := s.mgr.Channel(r.Context(), id); err != nil {
		return err
	}
	ev, err := s.c.Receive(r.Context(), id, msg)
	if err != nil {
		return s.replayed(r.Context(), id, msg, err)
	}
	resp := InboxResponse{Epoch: ev.Epoch, Message: s.chatOf(r.Context(), ev.Message, nil, nil)}
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

// historyPage reads the paging query of GET .../messages: after or
// before (sequence numbers) and limit (1 to 10000, default 100).
func historyPage(r *http.Request) (after, before uint64, limit int, err error) {
	q := r.URL.Query()
	limit = 100
	seq := func(k string) (uint64, error) {
		v := q.Get(k)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			return 0, badRequest("bad_request", "%s must be a sequence number", k)
		}
		return n, nil
	}
	if after, err = seq("after"); err != nil {
		return
	}
	if before, err = seq("before"); err != nil {
		return
	}
	if after > 0 && before > 0 {
		return 0, 0, 0, badRequest("bad_request", "give after or before, not both")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return 0, 0, 0, badRequest("bad_request", "limit must be 1 to 10000")
		}
		limit = n
	}
	return after, before, limit, nil
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) error {
	after, before, limit, err := historyPage(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	// One more than asked says whether there is a next page.
	msgs, err := s.c.History(r.Context(), id, after, before, limit+1)
	if err != nil {
		return err
	}
	resp := MessagesResponse{Messages: make([]ChatMessage, 0, len(msgs))}
	more := len(msgs) > limit
	if more {
		if before > 0 {
			msgs = msgs[1:] // oldest dropped: the page is the newest ones
		} else {
			msgs = msgs[:limit]
		}
	}
	queued := s.c.Queued(r.Context(), id)
	var users []string
	for i := range msgs {
		users = append(users, msgs[i].Sender)
	}
	senders, err := s.c.ContactsIn(r.Context(), id, users) // once per page
	if err != nil {
		return err
	}
	for _, u := range users {
		if _, ok := senders[u]; !ok {
			senders[u] = nil // no contact: not looked up again
		}
	}
	for i := range msgs {
		resp.Messages = append(resp.Messages, *s.chatOf(r.Context(), &msgs[i], queued, senders))
	}
	if more && len(msgs) > 0 {
		n := msgs[len(msgs)-1].Seq
		if before > 0 {
			n = msgs[0].Seq
		}
		resp.Next = &n
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.mgr.Leaves(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	resp := MembersResponse{Members: []MemberResponse{}}
	byUser := map[string]int{}
	for _, m := range ms {
		i, ok := byUser[m.Identity]
		if !ok {
			mr := MemberResponse{UserID: m.Identity, LeafIndex: m.LeafIndex, Role: client.RoleName(m.Role), DisplayName: m.DisplayName,
				Unverified: !m.Verified, Devices: []DeviceResponse{}}
			if ct, err := s.c.Contact(r.Context(), m.Identity); err == nil {
				mr.Verified = ct.Verified && !ct.KeyChanged
			}
			if m.Verified {
				mr.Fingerprint = fingerprint(m.IdentityKey)
			}
			resp.Members = append(resp.Members, mr)
			i = len(resp.Members) - 1
			byUser[m.Identity] = i
		}
		resp.Members[i].Devices = append(resp.Members[i].Devices, DeviceResponse{DeviceID: m.DeviceID.String(), LeafIndex: m.LeafIndex})
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) commitResponse(w http.ResponseWriter, res *client.CommitResult) error {
	status := http.StatusAccepted
	if !res.Committed {
		status = http.StatusOK
	}
	resp := CommitResponse{Status: res.Status, ID: res.ID, Epoch: res.Epoch}
	if !s.c.HasRelay() && res.Commit != nil {
		resp.Commit = enc64(res.Commit)
	}
	writeJSON(w, status, resp)
	return nil
}

// listChanges lists the channel's recent state changes through the
// outbox (relay) with their status: queued, sent, or failed and why.
func (s *Server) listChanges(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.c.Changes(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	resp := ChangesResponse{Changes: make([]ChangeResponse, 0, len(cs))}
	for _, c := range cs {
		// The refusal in the one-line form of the API's errors.
		cr := ChangeResponse{ID: c.ID, Op: c.Op, UserID: c.UserID, Role: c.Role, Status: c.Status, Error: publicMessage(c.Error),
			Epoch: c.Epoch, QueuedAt: rfc3339(c.QueuedAt)}
		if !c.DoneAt.IsZero() {
			cr.DoneAt = rfc3339(c.DoneAt)
		}
		resp.Changes = append(resp.Changes, cr)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.mgr.Channel(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	res, err := s.c.Remove(r.Context(), r.PathValue("id"), r.PathValue("user_id"))
	if err != nil {
		return err
	}
	return s.commitResponse(w, res)
}

func (s *Server) leave(w http.ResponseWriter, r *http.Request) error {
	res, err := s.c.Leave(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	res.Committed = true
	return s.commitResponse(w, res)
}

// setRole commits a member's new role; the same role again commits nothing (200).
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
	res, err := s.c.SetRole(r.Context(), r.PathValue("id"), r.PathValue("user_id"), role)
	if err != nil {
		return err
	}
	return s.commitResponse(w, res)
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) error {
	res, err := s.c.SelfUpdate(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.commitResponse(w, res)
}

func (s *Server) relayStatus(w http.ResponseWriter, r *http.Request) error {
	if !s.c.HasRelay() {
		return &apiError{status: http.StatusPreconditionFailed, code: "relay_required", msg: "the node has no relay"}
	}
	st := RelayStatus{URL: s.c.RelayURL(), UserID: string(s.p.UserID()), Reachable: s.c.Reachable(),
		OutboxDepth: s.c.OutboxDepth(r.Context()), RateLimited: s.c.RateLimited(), Channels: []RelayChannelProgress{}}
	for _, p := range s.c.Progress() {
		st.Channels = append(st.Channels, RelayChannelProgress{ChannelID: p.ChannelID, Cursor: p.Cursor, Held: p.Held, Done: p.Done})
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// replayed turns a wrong-epoch refusal of a handshake message from an
// epoch the channel has passed into 409 already_processed: it was
// processed (or superseded by the commit that was) — a replay, not a
// message from the future.
func (s *Server) replayed(ctx context.Context, channelID string, msg []byte, err error) error {
	if !errors.Is(err, mls.ErrWrongEpoch) {
		return err
	}
	m, derr := mls.UnmarshalMessage(msg)
	if derr != nil || m.PublicMessage == nil && m.PrivateMessage == nil {
		return err
	}
	var epoch uint64
	var handshake bool
	if m.PublicMessage != nil {
		epoch, handshake = m.PublicMessage.Content.Epoch, m.PublicMessage.Content.ContentType != mls.ContentTypeApplication
	} else {
		epoch, handshake = m.PrivateMessage.Epoch, m.PrivateMessage.ContentType != mls.ContentTypeApplication
	}
	cur, cerr := s.mgr.Epoch(ctx, channelID)
	if cerr != nil || !handshake || epoch >= cur {
		return err
	}
	return &apiError{status: http.StatusConflict, code: "already_processed",
		msg: fmt.Sprintf("a handshake message of epoch %d: the channel is at epoch %d", epoch, cur), err: err}
}

// writeChannel answers the channel d as the API describes it.
func (s *Server) writeChannel(w http.ResponseWriter, r *http.Request, status int, d *channel.Descriptor) error {
	resp, err := s.describe(r.Context(), d)
	if err != nil {
		return err
	}
	writeJSON(w, status, resp)
	return nil
}
