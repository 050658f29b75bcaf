package relay

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, sess Session) error {
	user := sess.UserID
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's WriteTimeout
	sub, cancel := s.hub.subscribe()
	defer cancel()
	s.m.streams.Inc()
	defer s.m.streams.Dec()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, ": spacepanda relay events\n\n")
	if err := rc.Flush(); err != nil {
		return nil
	}
	send := func(event string, v any) error {
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	// On PostgreSQL an event arrives twice (this process's own publish and
	// its NOTIFY echo): send each group's seq once.
	sent := map[string]int64{}
	heartbeat := time.NewTicker(25 * time.Second)
	defer heartbeat.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return nil
		case <-heartbeat.C:
			_, err = io.WriteString(w, ": keep-alive\n\n")
			if err == nil {
				err = rc.Flush()
			}
		case ev := <-sub:
			switch {
			case ev.Recipient != "":
				if ev.Recipient == user {
					err = send("welcome", map[string]int64{"id": ev.WelcomeID})
				}
			case ev.GroupID != nil:
				a, aerr := s.st.Access(r.Context(), ev.GroupID, user)
				if aerr == nil && ev.Seq >= a.FromSeq && (!a.Removed || ev.Seq <= a.ToSeq) && ev.Seq > sent[string(ev.GroupID)] {
					if len(sent) > 10000 {
						clear(sent)
					}
					sent[string(ev.GroupID)] = ev.Seq
					err = send("message", map[string]any{"group_id": ev.GroupID, "seq": ev.Seq})
				}
			case ev.Revoked != nil:
				if *ev.Revoked == (DeviceRef{UserID: sess.UserID, DeviceID: sess.DeviceID}) {
					return nil // the device's session is gone
				}
			case ev.Mailbox != "":
			default:
				// Events may have been lost: the client re-reads its groups
				// and welcomes.
				err = send("resync", map[string]any{})
			}
		}
		if err != nil {
			return nil
		}
	}
}
