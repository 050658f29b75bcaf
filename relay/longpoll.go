package relay

import (
	"context"
	"time"
)

// longPoll calls check until it reports something or wait has passed,
// sleeping on the hub key between calls.
func (s *Server) longPoll(ctx context.Context, key string, wait time.Duration, check func() (bool, error)) error {
	var timer <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	for {
		ch, release := s.hub.wait(key)
		found, err := check()
		if err != nil || found || timer == nil {
			release()
			return err
		}
		s.m.polls.Inc()
		select {
		case <-ch:
		case <-timer:
			timer = nil // one last check
		case <-ctx.Done():
			s.m.polls.Dec()
			release()
			return ctx.Err()
		}
		s.m.polls.Dec()
		release()
	}
}
