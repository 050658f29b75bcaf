package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/spacepanda/spacepanda/client"
)

// events streams the engine's events as server-sent events: `id:` is the
// event's id, `Last-Event-ID` (or ?after=) resumes after one.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	fl, ok := w.(http.Flusher)
	if !ok {
		if sw, isSW := w.(*statusWriter); isSW {
			fl, ok = sw.ResponseWriter.(http.Flusher)
		}
	}
	if !ok {
		return fmt.Errorf("node: streaming unsupported")
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("after")
	}
	var after uint64
	if last != "" {
		n, err := strconv.ParseUint(last, 10, 64)
		if err != nil {
			return badRequest("bad_request", "Last-Event-ID must be an event id")
		}
		after = n
	}
	past, ch, cancel := s.c.Subscribe(after)
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	write := func(ev client.Event) error {
		data := map[string]any{}
		for k, v := range ev.Data {
			data[k] = v
		}
		if ev.ChannelID != "" {
			data["channel_id"] = ev.ChannelID
		}
		if text, ok := data["text"].(string); ok && ev.Kind == client.EventMessage {
			// The message as a history page has it, but for the sender's
			// name and verification (looked up with the history).
			m := map[string]any{"seq": data["seq"], "message_id": data["message_id"],
				"sender": map[string]any{"user_id": data["sender"]}, "text": text}
			if t, ok := data["sent_at"].(time.Time); ok {
				m["sent_at"] = rfc3339(t)
			}
			if r, ok := data["reply_to"]; ok {
				m["reply_to"] = r
			}
			delete(data, "text")
			delete(data, "sent_at")
			delete(data, "reply_to")
			data["message"] = m
		}
		data["at"] = rfc3339(ev.At)
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.ID, ev.Kind, b)
		return err
	}
	for _, ev := range past {
		if err := write(ev); err != nil {
			return nil
		}
	}
	fl.Flush()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-ping.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return nil
			}
			fl.Flush()
		case ev, ok := <-ch:
			if !ok {
				return nil // fell behind: the client resumes with Last-Event-ID
			}
			if err := write(ev); err != nil {
				return nil
			}
			// The events already waiting go in the same write: one
			// flush (a write to the socket) per burst, not per event.
			for more := true; more; {
				select {
				case ev, ok := <-ch:
					if !ok {
						fl.Flush()
						return nil
					}
					if err := write(ev); err != nil {
						return nil
					}
				default:
					more = false
				}
			}
			fl.Flush()
		}
	}
}
