package relay

import (
	"context"
	"errors"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/relay/api"
)

// Groups: registration, the ordered log (one commit per epoch), cursors
// and GroupInfos. Membership at the relay is by user id: every device of a
// member user reads the log.

func (s *Server) handleCreateGroup(w http.ResponseWriter, r *http.Request, sess Session) error {
	var q struct {
		GroupInfo []byte `json:"group_info"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	pg, err := s.createVerifiedGroup(r.Context(), sess, q.GroupInfo) // verify.go
	if errors.Is(err, ErrExists) {
		return errf(http.StatusConflict, "group_exists", "the group is already registered")
	} else if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"group_id": pg.GroupID(), "epoch": pg.Epoch()})
	return nil
}

// member checks user is a current reader of gid.
func (s *Server) member(ctx context.Context, gid []byte, user string) (Access, error) {
	a, err := s.st.Access(ctx, gid, user)
	if err != nil {
		return a, err
	}
	if a.Removed {
		return a, errf(http.StatusForbidden, "forbidden", "removed from the group")
	}
	return a, nil
}

func (s *Server) handleGroup(w http.ResponseWriter, r *http.Request, sess Session) error {
	user := sess.UserID
	gid, err := pathGroupID(r)
	if err != nil {
		return err
	}
	if _, err := s.member(r.Context(), gid, user); err != nil {
		return err
	}
	g, err := s.st.Group(r.Context(), gid)
	if err != nil {
		return err
	}
	th, err := s.treeHash(r.Context(), gid)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"group_id": g.GroupID, "epoch": g.Epoch, "tree_hash": th, "members": g.Members, "last_seq": g.LastSeq})
	return nil
}

var kinds = map[mls.ContentType]string{
	mls.ContentTypeApplication: api.KindApplication,
	mls.ContentTypeProposal:    api.KindProposal,
	mls.ContentTypeCommit:      api.KindCommit,
}

// framing is what the relay can see of a handshake or application message
// (RFC 9420 §6; RFC 9750 §5.2: the DS may order by epoch and
// content_type).
type framing struct {
	kind       string
	epoch      uint64
	wireFormat mls.WireFormat
}

// readFraming checks a message's size and framing: a PublicMessage or
// PrivateMessage of group gid, at most the size limit of its kind.
func readFraming(data, gid []byte) (framing, error) {
	if len(data) > api.MaxCommitSize {
		return framing{}, errf(http.StatusRequestEntityTooLarge, "message_too_large", "a message is at most %d bytes", api.MaxCommitSize)
	}
	m, err := mls.UnmarshalMessage(data)
	if err != nil {
		return framing{}, errf(http.StatusBadRequest, "invalid_message", "not an MLSMessage")
	}
	var mgid []byte
	var f framing
	var ct mls.ContentType
	switch m.WireFormat {
	case mls.WireFormatPublicMessage:
		c := &m.PublicMessage.Content
		mgid, f.epoch, ct = c.GroupID, c.Epoch, c.ContentType
	case mls.WireFormatPrivateMessage:
		p := m.PrivateMessage
		mgid, f.epoch, ct = p.GroupID, p.Epoch, p.ContentType
	default:
		return framing{}, errf(http.StatusBadRequest, "invalid_message", "a group message must be a PublicMessage or PrivateMessage")
	}
	f.wireFormat = m.WireFormat
	if string(mgid) != string(gid) {
		return framing{}, errf(http.StatusBadRequest, "invalid_message", "the message is for another group")
	}
	if f.kind = kinds[ct]; f.kind == "" {
		return framing{}, errf(http.StatusBadRequest, "invalid_message", "content type %v", ct)
	}
	if f.epoch > math.MaxInt64 {
		return framing{}, errf(http.StatusBadRequest, "invalid_message", "epoch out of range")
	}
	if max := api.MaxMessageSize(f.kind); len(data) > max {
		return framing{}, errf(http.StatusRequestEntityTooLarge, "message_too_large", "%s messages are at most %d bytes", f.kind, max)
	}
	return f, nil
}

func (s *Server) handlePost(w http.ResponseWriter, r *http.Request, sess Session) error {
	gid, err := pathGroupID(r)
	if err != nil {
		return err
	}
	// kind and epoch are optional: the framing says them; when given they
	// must agree with it. A commit brings the GroupInfo of its new epoch.
	var q struct {
		Message   []byte  `json:"message"`
		Kind      string  `json:"kind"`
		Epoch     *uint64 `json:"epoch"`
		GroupInfo []byte  `json:"group_info"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	f, err := readFraming(q.Message, gid)
	if err != nil {
		return err
	}
	if q.Kind != "" && q.Kind != f.kind {
		return errf(http.StatusBadRequest, "invalid_message", "kind %s does not match the message's content type (%s)", q.Kind, f.kind)
	}
	if q.Epoch != nil && *q.Epoch != f.epoch {
		return errf(http.StatusBadRequest, "invalid_message", "epoch %d does not match the message's epoch %d", *q.Epoch, f.epoch)
	}
	m := Message{GroupID: gid, Kind: f.kind, Epoch: f.epoch, Sender: sess.UserID, SenderDevice: sess.DeviceID, Data: q.Message,
		ReceivedAt: s.o.Now()}
	var seq int64
	var cur uint64
	gen := s.hub.generation()
	err = s.m.timed("append", func() (err error) {
		seq, cur, err = s.appendVerified(r.Context(), sess, &m, f.wireFormat, q.GroupInfo) // verify.go
		return err
	})
	switch {
	case errors.Is(err, ErrCommitConflict):
		ae := errf(http.StatusConflict, "commit_conflict", "%v", err)
		ae.epoch = &cur
		return ae
	case errors.Is(err, ErrFutureEpoch):
		ae := errf(http.StatusConflict, "future_epoch", "%v", err)
		ae.epoch = &cur
		return ae
	case errors.Is(err, ErrStaleEpoch):
		ae := errf(http.StatusConflict, "stale_epoch", "%v", err)
		ae.epoch = &cur
		return ae
	case errors.Is(err, ErrLimit):
		return errf(http.StatusConflict, "group_full", "%v", err)
	case err != nil:
		return err
	}
	s.m.posts.WithLabelValues(f.kind).Inc()
	s.hub.publishAppended(Event{GroupID: gid, Seq: seq}, gen)
	writeJSON(w, http.StatusOK, map[string]any{"seq": seq, "epoch": f.epoch, "kind": f.kind})
	return nil
}

// handlePostBatch appends up to api.MaxBatchMessages application messages
// (PrivateMessages of this group) in order: each is accepted or refused
// as POST /v1/groups/{gid}/messages would, and they share the batcher's
// transactions (one sender's queue in one request and one fsync). A
// request with any message that is not such an application message is
// refused whole (400, 413), before anything is appended.
func (s *Server) handlePostBatch(w http.ResponseWriter, r *http.Request, sess Session) error {
	gid, err := pathGroupID(r)
	if err != nil {
		return err
	}
	var q struct {
		Messages [][]byte `json:"messages"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	if len(q.Messages) == 0 || len(q.Messages) > api.MaxBatchMessages {
		return errf(http.StatusBadRequest, "bad_request", "a batch holds 1 to %d messages", api.MaxBatchMessages)
	}
	now := s.o.Now()
	ms := make([]Message, len(q.Messages))
	for i, data := range q.Messages {
		f, err := readFraming(data, gid)
		if err != nil {
			return err
		}
		if f.kind != api.KindApplication || f.wireFormat != mls.WireFormatPrivateMessage {
			return errf(http.StatusBadRequest, "invalid_message", "message %d: a batch holds application messages (PrivateMessages) only", i)
		}
		ms[i] = Message{GroupID: gid, Kind: f.kind, Epoch: f.epoch, Sender: sess.UserID, SenderDevice: sess.DeviceID, Data: data, ReceivedAt: now}
	}
	var rs []AppendResult
	gen := s.hub.generation()
	s.m.timed("append", func() error {
		rs = s.st.AppendAll(r.Context(), ms)
		return nil
	})
	type result struct {
		Seq          int64             `json:"seq,omitempty"`
		Epoch        uint64            `json:"epoch"`
		Error        map[string]string `json:"error,omitempty"`
		CurrentEpoch *uint64           `json:"current_epoch,omitempty"`
	}
	out := make([]result, len(rs))
	var last int64
	for i, res := range rs {
		if res.Err != nil {
			ae := s.apiErr(res.Err)
			if ae.status >= 500 {
				s.log.Error("relay: batch append", "err", res.Err)
			}
			s.m.refused.WithLabelValues(ae.code).Inc()
			out[i] = result{Epoch: ms[i].Epoch, Error: map[string]string{"code": ae.code, "message": publicMessage(ae.msg)}}
			if errors.Is(res.Err, ErrFutureEpoch) || errors.Is(res.Err, ErrStaleEpoch) {
				cur := res.CurrentEpoch
				out[i].CurrentEpoch = &cur
			}
			continue
		}
		s.m.posts.WithLabelValues(api.KindApplication).Inc()
		out[i] = result{Seq: res.Seq, Epoch: ms[i].Epoch}
		last = max(last, res.Seq)
	}
	if last > 0 {
		s.hub.publishAppended(Event{GroupID: gid, Seq: last}, gen)
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": out})
	return nil
}

type messageJSON struct {
	Seq          int64  `json:"seq"`
	Message      []byte `json:"message"`
	Kind         string `json:"kind"`
	Epoch        uint64 `json:"epoch"`
	Sender       string `json:"sender"`
	SenderDevice string `json:"sender_device"`
	ReceivedAt   string `json:"received_at"`
}

func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request, sess Session) error {
	user := sess.UserID
	gid, err := pathGroupID(r)
	if err != nil {
		return err
	}
	after, err := intParam(r, "after", 0, 0, math.MaxInt64)
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", api.DefaultPageEntries, 1, api.MaxPageEntries)
	if err != nil {
		return err
	}
	maxBytes, err := intParam(r, "max_bytes", api.MaxPageBytes, 1, api.MaxPageBytes)
	if err != nil {
		return err
	}
	wait, err := s.waitParam(r)
	if err != nil {
		return err
	}
	// The reader's window is checked before any wait (403 for a
	// non-reader, or a removed one past its last entry; 404): by the
	// first page read itself when the store can (a page it finds is in
	// the window; an empty one comes with the window), else apart.
	windowChecked := false
	checkWindow := func(a Access) error {
		windowChecked = true
		if a.Removed && after >= a.ToSeq {
			return errf(http.StatusForbidden, "forbidden", "removed from the group")
		}
		return nil
	}
	ma, firstPage := s.st.(interface {
		messagesAccess(ctx context.Context, groupID []byte, userID string, after int64, limit, maxBytes int) ([]Message, Access, error)
	})
	access := func() error {
		a, err := s.st.Access(r.Context(), gid, user)
		if err != nil {
			return err
		}
		return checkWindow(a)
	}
	if !firstPage {
		if err := access(); err != nil {
			return err
		}
	}
	var msgs []Message
	skipped := func() error { // the first read skipped: check the window alone
		if windowChecked || s.read.continues(gid, user, after) {
			return nil
		}
		return access()
	}
	err = s.longPollAfter(r.Context(), groupKey(gid), wait, after, skipped, func() (bool, error) {
		var err error
		if windowChecked {
			msgs, err = s.st.Messages(r.Context(), gid, user, after, int(limit), int(maxBytes))
			return len(msgs) > 0, err
		}
		var a Access
		msgs, a, err = ma.messagesAccess(r.Context(), gid, user, after, int(limit), int(maxBytes))
		if err != nil || len(msgs) > 0 {
			windowChecked = true
			return len(msgs) > 0, err
		}
		return false, checkWindow(a)
	})
	if err != nil {
		return err
	}
	s.m.delivered.Add(float64(len(msgs)))
	if n := len(msgs); n > 0 {
		s.read.ended(gid, user, msgs[n-1])
	}
	out := make([]messageJSON, len(msgs))
	next := after
	for i, m := range msgs {
		out[i] = messageJSON{Seq: m.Seq, Message: m.Data, Kind: m.Kind, Epoch: m.Epoch, Sender: m.Sender, SenderDevice: m.SenderDevice,
			ReceivedAt: m.ReceivedAt.UTC().Format(time.RFC3339Nano)}
		next = m.Seq
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": out, "next": next})
	return nil
}

func (s *Server) handleGetCursor(w http.ResponseWriter, r *http.Request, sess Session) error {
	user := sess.UserID
	gid, err := pathGroupID(r)
	if err != nil {
		return err
	}
	if _, err := s.st.Access(r.Context(), gid, user); err != nil {
		return err
	}
	after, err := s.st.Cursor(r.Context(), gid, user, sess.DeviceID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int64{"after": after})
	return nil
}

func (s *Server) handlePutCursor(w http.ResponseWriter, r *http.Request, sess Session) error {
	user := sess.UserID
	gid, err := pathGroupID(r)
	if err != nil {
		return err
	}
	var q struct {
		After *int64 `json:"after"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	if q.After == nil || *q.After < 0 {
		return errf(http.StatusBadRequest, "bad_request", "after must be an integer >= 0")
	}
	if _, err := s.st.Access(r.Context(), gid, user); err != nil {
		return err
	}
	if err := s.st.SetCursor(r.Context(), gid, user, sess.DeviceID, *q.After); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int64{"after": *q.After})
	return nil
}

func (s *Server) handlePutGroupInfo(w http.ResponseWriter, r *http.Request, sess Session) error {
	user := sess.UserID
	gid, err := pathGroupID(r)
	if err != nil {
		return err
	}
	var q struct {
		GroupInfo []byte `json:"group_info"`
		Epoch     uint64 `json:"epoch"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	if len(q.GroupInfo) > api.MaxGroupInfoSize {
		return errf(http.StatusRequestEntityTooLarge, "group_info_too_large", "a GroupInfo is at most %d bytes", api.MaxGroupInfoSize)
	}
	m, err := mls.UnmarshalMessage(q.GroupInfo)
	if err != nil || m.WireFormat != mls.WireFormatGroupInfo {
		return errf(http.StatusBadRequest, "invalid_group_info", "not an MLSMessage(GroupInfo)")
	}
	gc := &m.GroupInfo.GroupContext
	if string(gc.GroupID) != string(gid) || gc.Epoch != q.Epoch {
		return errf(http.StatusBadRequest, "invalid_group_info", "the GroupInfo is for another group or epoch")
	}
	if _, err := s.member(r.Context(), gid, user); err != nil {
		return err
	}
	if err := s.checkGroupInfo(r.Context(), gid, m.GroupInfo); err != nil { // verify.go
		return err
	}
	if err := s.st.PutGroupInfo(r.Context(), gid, q.GroupInfo, q.Epoch); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"epoch": q.Epoch})
	return nil
}

func (s *Server) handleGetGroupInfo(w http.ResponseWriter, r *http.Request, sess Session) error {
	user := sess.UserID
	gid, err := pathGroupID(r)
	if err != nil {
		return err
	}
	if _, err := s.member(r.Context(), gid, user); err != nil {
		return err
	}
	gi, epoch, err := s.st.GroupInfo(r.Context(), gid)
	if errors.Is(err, ErrNotFound) {
		return errf(http.StatusNotFound, "no_group_info", "no GroupInfo posted yet")
	} else if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"group_info": gi, "epoch": epoch})
	return nil
}

// readPositions lets a reader that comes back for the entries after its
// last page, when the hub has seen none published past it, wait without
// reading its window again: a page whose last entry is not a commit
// proves the window went on past that entry (a removal is the commit that
// ends a window, and a window ends at it), and a window changes only by
// a commit, a later entry, whose publish wakes the waiter: it reads the
// store, in its window, before anything is answered. So the waiter learns
// nothing it could not read. A removed user's last page ends at the
// removing commit, so it is never taken for a continuing window.
type readPositions struct {
	mu sync.Mutex
	m  map[memberKey]int64
}

func (p *readPositions) ended(gid []byte, user string, last Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := memberKey{string(gid), user}
	if last.Kind == api.KindCommit {
		delete(p.m, k)
		return
	}
	if p.m == nil || len(p.m) >= memberCacheMax {
		p.m = map[memberKey]int64{}
	}
	p.m[k] = last.Seq
}

// continues reports whether the user's last page ended at after, its
// window going on.
func (p *readPositions) continues(gid []byte, user string, after int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	end, ok := p.m[memberKey{string(gid), user}]
	return ok && end == after
}
