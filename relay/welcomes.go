package relay

import (
	"net/http"
	"strconv"
	"time"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/relay/api"
)

// Welcomes are queued per recipient user and read by each of its devices.
// A Welcome is accepted only from a current member of its group, for
// recipients who are current members at the relay — added by an accepted
// commit — so that nobody who merely knows a group id can queue a Welcome
// for a look-alike group to a future invitee ahead of the real one. It
// carries no plaintext: the channel descriptor travels inside the
// encrypted GroupInfo.

func (s *Server) handlePostWelcome(w http.ResponseWriter, r *http.Request, sess Session) error {
	var q struct {
		Recipients  []string `json:"recipients"`
		Welcome     []byte   `json:"welcome"`
		RatchetTree []byte   `json:"ratchet_tree"`
		GroupID     []byte   `json:"group_id"`
	}
	if err := decode(r, &q); err != nil {
		return err
	}
	if len(q.Recipients) == 0 {
		return errf(http.StatusBadRequest, "bad_request", "no recipients")
	}
	if err := checkMemberIDs("recipients", q.Recipients); err != nil {
		return err
	}
	if err := checkGroupID(q.GroupID); err != nil {
		return err
	}
	if len(q.Welcome) > api.MaxWelcomeSize {
		return errf(http.StatusRequestEntityTooLarge, "welcome_too_large", "a Welcome is at most %d bytes", api.MaxWelcomeSize)
	}
	if len(q.RatchetTree) > api.MaxRatchetTreeSize {
		return errf(http.StatusRequestEntityTooLarge, "welcome_too_large", "a Welcome's ratchet tree is at most %d bytes", api.MaxRatchetTreeSize)
	}
	if m, err := mls.UnmarshalMessage(q.Welcome); err != nil || m.WireFormat != mls.WireFormatWelcome {
		return errf(http.StatusBadRequest, "invalid_welcome", "not an MLSMessage(Welcome)")
	}
	if err := s.welcomeQuota(r, q.Recipients, int64(len(q.Welcome)+len(q.RatchetTree))); err != nil {
		return err
	}
	wl := Welcome{Sender: sess.UserID, SenderDevice: sess.DeviceID, GroupID: q.GroupID, Welcome: q.Welcome, RatchetTree: q.RatchetTree, CreatedAt: s.o.Now()}
	ids, err := s.st.AddWelcome(r.Context(), wl, q.Recipients)
	if err != nil {
		return err
	}
	s.m.welcomes.Add(float64(len(ids)))
	for i, rc := range q.Recipients {
		s.hub.publish(Event{Recipient: rc, WelcomeID: ids[i]})
	}
	writeJSON(w, http.StatusOK, map[string]any{"ids": ids})
	return nil
}

type welcomeJSON struct {
	ID          int64  `json:"id"`
	Welcome     []byte `json:"welcome"`
	RatchetTree []byte `json:"ratchet_tree"`
	GroupID     []byte `json:"group_id"`
	From        string `json:"from"`
	FromDevice  string `json:"from_device"`
	CreatedAt   string `json:"created_at"`
}

func (s *Server) handleWelcomes(w http.ResponseWriter, r *http.Request, sess Session) error {
	wait, err := s.waitParam(r)
	if err != nil {
		return err
	}
	maxBytes, err := intParam(r, "max_bytes", api.MaxPageBytes, 1, api.MaxPageBytes)
	if err != nil {
		return err
	}
	var ws []Welcome
	err = s.longPoll(r.Context(), welcomeKey(sess.UserID), wait, func() (bool, error) {
		var err error
		ws, err = s.st.Welcomes(r.Context(), sess.UserID, sess.DeviceID, api.MaxWelcomesPerPage, int(maxBytes))
		return len(ws) > 0, err
	})
	if err != nil {
		return err
	}
	out := make([]welcomeJSON, len(ws))
	for i, wl := range ws {
		out[i] = welcomeJSON{ID: wl.ID, Welcome: wl.Welcome, RatchetTree: wl.RatchetTree, GroupID: wl.GroupID, From: wl.Sender,
			FromDevice: wl.SenderDevice, CreatedAt: wl.CreatedAt.UTC().Format(time.RFC3339Nano)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"welcomes": out})
	return nil
}

func (s *Server) handleDeleteWelcome(w http.ResponseWriter, r *http.Request, sess Session) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return errf(http.StatusBadRequest, "bad_request", "welcome id must be a positive integer")
	}
	if err := s.st.AckWelcome(r.Context(), sess.UserID, sess.DeviceID, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
