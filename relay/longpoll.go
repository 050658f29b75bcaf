package relay

import (
	"context"
	"time"
)

// longPoll calls check until it reports something or wait has passed,
// sleeping on the hub key between calls.
func (s *Server) longPoll(ctx context.Context, key string, wait time.Duration, check func() (bool, error)) error {
	return s.longPollAfter(ctx, key, wait, -1, nil, check)
}

// longPollAfter is longPoll for a group log read after seq after: when the
// hub has seen the group's publishes and none past after (hub.published),
// the first check is skipped, the store would find nothing: a reader that
// comes back for more right after a page waits without reading the store.
// after < 0: never skip. A skipped check is replaced by skipped (if not
// nil): what the caller must still verify before waiting.
func (s *Server) longPollAfter(ctx context.Context, key string, wait time.Duration, after int64, skipped func() error, check func() (bool, error)) error {
	var timer <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	for {
		ch, release := s.hub.wait(key)
		// Only the first check may be skipped: the later ones follow a
		// wake-up or the end of the wait.
		skip := after >= 0 && timer != nil && s.hub.published(key, after)
		after = -1
		if skip && skipped != nil {
			if err := skipped(); err != nil {
				release()
				return err
			}
		}
		if !skip {
			found, err := check()
			if err != nil || found || timer == nil {
				release()
				return err
			}
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
