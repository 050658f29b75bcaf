package relay

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, sess Session) error {
	user := sess.UserID
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	th := sha256.Sum256([]byte(tok))
	idb := make([]byte, 16)
	rand.Read(idb)
	streamID := hex.EncodeToString(idb)
	const lease = 90 * time.Second
	if err := s.st.OpenStream(r.Context(), th[:], streamID, s.o.StreamsPerToken, s.o.Now().Add(lease), s.o.Now()); err != nil {
		if errors.Is(err, ErrQuota) {
			return &quotaErr{apiError: errf(http.StatusTooManyRequests, "stream_quota", "at most %d event streams per token", s.o.StreamsPerToken), retry: lease}
		}
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.st.CloseStream(ctx, th[:], streamID)
	}()
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
			if rerr := s.st.RenewStream(r.Context(), th[:], streamID, s.o.Now().Add(lease)); rerr != nil && r.Context().Err() == nil {
				s.log.Warn("relay: renew event stream lease", "err", rerr)
			}
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
