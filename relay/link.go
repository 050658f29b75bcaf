package relay

import (
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/relay/api"
)

// Device-linking mailboxes carry the exchange of identity.LinkOffer (the
// existing device, logged in) and identity.LinkJoin (the new device, which
// has no certificate yet and so no token). The relay is not trusted with
// it — the messages are sealed under a key only the holders of the link
// code share — but it bounds what it carries: a mailbox is opened by a
// logged-in device, lives api.LinkMailboxTTL, holds at most
// api.MaxLinkMessages messages of at most identity.MaxLinkMessageSize
// bytes from each side; the join side is rate-limited per IP address.

const (
	sideOffer = "offer"
	sideJoin  = "join"
)

// Link message types (identity's LinkMessage framing: version 1, then the
// type), by the side that sends them.
var linkTypes = map[string][]byte{sideOffer: {1, 3}, sideJoin: {2}}

func mailboxParam(r *http.Request) (string, error) {
	mb := r.PathValue("mailbox")
	if !api.IsMailbox(mb) {
		return "", errf(http.StatusBadRequest, "bad_request", "a mailbox is the first 4 characters of a link code")
	}
	return mb, nil
}

func sideParam(v string) (string, error) {
	if v != sideOffer && v != sideJoin {
		return "", errf(http.StatusBadRequest, "bad_request", `from must be "offer" or "join"`)
	}
	return v, nil
}

func linkErr(err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return errf(http.StatusNotFound, "no_mailbox", "no open link mailbox by that name")
	case errors.Is(err, ErrLimit):
		return errf(http.StatusConflict, "mailbox_full", "%v", err)
	}
	return err
}

func (s *Server) handleOpenMailbox(w http.ResponseWriter, r *http.Request, sess Session) error {
	mb, err := mailboxParam(r)
	if err != nil {
		return err
	}
	now := s.o.Now()
	err = s.st.OpenMailbox(r.Context(), Mailbox{Name: mb, UserID: sess.UserID, DeviceID: sess.DeviceID, Expires: now.Add(api.LinkMailboxTTL)},
		api.MaxLinkMailboxesPerUser, now)
	switch {
	case errors.Is(err, ErrExists):
		return errf(http.StatusConflict, "mailbox_taken", "the mailbox is in use: draw another link code")
	case errors.Is(err, ErrLimit):
		return errf(http.StatusConflict, "mailbox_limit", "%v", err)
	case err != nil:
		return err
	}
	m, err := s.st.Mailbox(r.Context(), mb, now)
	if err != nil {
		return linkErr(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"mailbox": mb, "expires_at": m.Expires.UTC().Format(time.RFC3339Nano)})
	return nil
}

func (s *Server) handleCloseMailbox(w http.ResponseWriter, r *http.Request, sess Session) error {
	mb, err := mailboxParam(r)
	if err != nil {
		return err
	}
	if err := s.st.CloseMailbox(r.Context(), mb, sess.UserID, sess.DeviceID); err != nil {
		return linkErr(err)
	}
	// Wake the other side's long-poll: it answers no_mailbox at once (a
	// new device whose wrong code ended the offer learns it now).
	s.hub.publish(Event{Mailbox: mb})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// linkCaller authenticates a link request: the offer side by its token
// (owner set), the join side by its IP's rate limit. When ok is false the
// refusal is written.
func (s *Server) linkCaller(w http.ResponseWriter, r *http.Request, side string) (owner *DeviceRef, ok bool) {
	if side == sideJoin {
		return nil, !s.limitedBy(s.linkLim, w, "link:"+clientIP(r))
	}
	sess, ok := s.authenticate(w, r)
	if !ok {
		return nil, false
	}
	return &DeviceRef{UserID: sess.UserID, DeviceID: sess.DeviceID}, true
}

func (s *Server) handleLinkPost(w http.ResponseWriter, r *http.Request) {
	if err := s.linkPost(w, r); err != nil {
		s.fail(w, r, err)
	}
}

func (s *Server) linkPost(w http.ResponseWriter, r *http.Request) error {
	mb, err := mailboxParam(r)
	if err != nil {
		return err
	}
	// The side is in the body: read at most what a link message needs
	// before deciding who is asking.
	r.Body = http.MaxBytesReader(w, r.Body, 4*identity.MaxLinkMessageSize)
	var q struct {
		From    string `json:"from"`
		Message []byte `json:"message"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	side, err := sideParam(q.From)
	if err != nil {
		return err
	}
	owner, ok := s.linkCaller(w, r, side)
	if !ok {
		return nil
	}
	if len(q.Message) > identity.MaxLinkMessageSize {
		return errf(http.StatusRequestEntityTooLarge, "link_message_too_large", "a link message is at most %d bytes", identity.MaxLinkMessageSize)
	}
	if len(q.Message) < 2 || q.Message[0] != 1 || !containsByte(linkTypes[side], q.Message[1]) {
		return errf(http.StatusBadRequest, "invalid_link_message", "not a link message the %s side sends", side)
	}
	now := s.o.Now()
	seq, err := s.st.PostLink(r.Context(), mb, side, q.Message, owner, api.MaxLinkMessages, now)
	if err != nil {
		return linkErr(err)
	}
	s.hub.publish(Event{Mailbox: mb, Seq: seq})
	writeJSON(w, http.StatusOK, map[string]int64{"seq": seq})
	return nil
}

func containsByte(set []byte, b byte) bool {
	for _, x := range set {
		if x == b {
			return true
		}
	}
	return false
}

type linkMessageJSON struct {
	Seq     int64  `json:"seq"`
	Message []byte `json:"message"`
}

func (s *Server) handleLinkMessages(w http.ResponseWriter, r *http.Request) {
	if err := s.linkMessages(w, r); err != nil {
		s.fail(w, r, err)
	}
}

// linkMessages reads one side's messages: the offer side's (the hello and
// the certificate) are for the new device, which has no token; the join
// side's (the request) only for the mailbox's owner.
func (s *Server) linkMessages(w http.ResponseWriter, r *http.Request) error {
	mb, err := mailboxParam(r)
	if err != nil {
		return err
	}
	side, err := sideParam(r.URL.Query().Get("from"))
	if err != nil {
		return err
	}
	after, err := intParam(r, "after", 0, 0, math.MaxInt64)
	if err != nil {
		return err
	}
	wait, err := s.waitParam(r)
	if err != nil {
		return err
	}
	// The reader is the other side: the joiner reads the offer, the owner
	// the join.
	reader := sideOffer
	if side == sideOffer {
		reader = sideJoin
	}
	owner, ok := s.linkCaller(w, r, reader)
	if !ok {
		return nil
	}
	now := s.o.Now()
	if owner != nil {
		m, err := s.st.Mailbox(r.Context(), mb, now)
		if err != nil {
			return linkErr(err)
		}
		if m.UserID != owner.UserID || m.DeviceID != owner.DeviceID {
			return errf(http.StatusForbidden, "forbidden", "the mailbox belongs to another device")
		}
	}
	var msgs []LinkMessage
	err = s.longPoll(r.Context(), linkKey(mb), wait, func() (bool, error) {
		var err error
		msgs, err = s.st.LinkMessages(r.Context(), mb, side, after, s.o.Now())
		return len(msgs) > 0, err
	})
	if err != nil {
		return linkErr(err)
	}
	out := make([]linkMessageJSON, len(msgs))
	next := after
	for i, m := range msgs {
		out[i] = linkMessageJSON{Seq: m.Seq, Message: m.Data}
		next = m.Seq
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": out, "next": next})
	return nil
}
