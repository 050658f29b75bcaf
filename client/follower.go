package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/mls/schedule"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
)

// follower reads one group's log in order and processes it.
type follower struct {
	c    *Client
	d    *channel.Descriptor
	ctx  context.Context // ends when the follower is stopped
	stop context.CancelFunc

	mu     sync.Mutex // serialises processing; never held while waiting
	cursor uint64     // last processed (or held) seq
	saved  uint64     // cursor last saved at the relay
	local  uint64     // read position last stored locally (recCursor)
	// localAt is when local was stored; noted: a history note was written
	// for an entry after it (storeCursor stores at once).
	localAt time.Time
	noted   bool
	// midPage: stopped with a page not all processed (f.cursor may be
	// past entries left unprocessed): no position is stored as we stop.
	midPage bool
	// hasLocal: a stored read position was found when following began.
	hasLocal bool
	// start is the epoch we were in when following began: entries of
	// older epochs predate us and are skipped without a report.
	start     uint64
	savedAt   time.Time
	held      []relayclient.Entry
	heldBytes int
	done      bool
	// stuck is why the log cannot be followed (a recovery is due);
	// stuckBy posted the commit we could not process ("" when a commit is
	// missing or is our own).
	stuck   error
	stuckBy string
	// causedBy is the author of the unprocessable commit that started the
	// recovery under way: a failed rejoin (another member rejoined first)
	// leaves us behind a commit that is not that author's.
	causedBy   string
	cause      error
	recoveries int
	// synced: the log has been read to its end once (outbox messages of
	// the channel wait for it).
	synced atomic.Bool
	// doneFlag mirrors done for readers without f.mu.
	doneFlag atomic.Bool
}

// Progress is how far a channel's log has been read.
type Progress struct {
	ChannelID string
	Cursor    uint64
	Held      int
	Done      bool
}

// Progress lists the followed channels.
func (c *Client) Progress() []Progress {
	// Not f.mu under c.mu: a follower takes c.mu under f.mu (stats,
	// follow), and /v1/relay hung for good in TestChaos.
	c.mu.Lock()
	fs := make(map[string]*follower, len(c.followers))
	for id, f := range c.followers {
		fs[id] = f
	}
	c.mu.Unlock()
	var out []Progress
	for id, f := range fs {
		f.mu.Lock()
		out = append(out, Progress{ChannelID: id, Cursor: f.cursor, Held: len(f.held), Done: f.done})
		f.mu.Unlock()
	}
	return out
}

// follow starts following d's log (once while it runs).
func (c *Client) follow(d *channel.Descriptor) *follower { return c.followFrom(d, false) }

// followFrom is follow; joined: we just joined, and entries of epochs
// before the current one predate us (a follower restarted with the
// engine must read them: a late message of an older epoch may follow the
// commit we processed before a crash).
func (c *Client) followFrom(d *channel.Descriptor, joined bool) *follower {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.followers[d.ID]; ok && !f.doneFlag.Load() && !joined {
		return f
	} else if ok {
		// Finished (we were removed), or following the group we held
		// before this join: the joined group needs its own follower.
		f.stop()
	}
	ctx, cancel := context.WithCancel(c.ctx)
	f := &follower{c: c, d: d, ctx: ctx, stop: cancel}
	if joined {
		f.start, _ = c.mgr.Epoch(ctx, d.ID)
	}
	// Our stored read position is known at once: a pull (a commit of ours
	// reads the log first) may come before run has asked the relay, and
	// read from the log's start.
	if cur, ok := c.localCursor(ctx, d.ID); ok {
		f.cursor, f.local, f.hasLocal = cur, cur, true
	}
	c.followers[d.ID] = f
	c.wg.Add(1)
	go f.run(ctx)
	return f
}

// unfollow forgets a finished follower (a later join starts a new one).
func (c *Client) unfollow(f *follower) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.followers[f.d.ID] == f {
		delete(c.followers, f.d.ID)
	}
}

func (f *follower) run(ctx context.Context) {
	c := f.c
	defer c.wg.Done()
	defer f.stop()
	defer c.unfollow(f)
	defer func() { // the read position as we stop (the store closes after us)
		f.mu.Lock()
		if !f.midPage {
			f.storeCursor(context.WithoutCancel(ctx), true)
		}
		f.mu.Unlock()
	}()
	for ctx.Err() == nil {
		cur, err := c.relay.Cursor(ctx, f.d.GroupID)
		c.noteRelay(ctx, err)
		if err == nil {
			f.mu.Lock()
			f.saved = cur
			if !f.hasLocal {
				// Ours (f.cursor already), when stored, is the position
				// our durable state is at: the relay's lags (saved at
				// most once a second), or is ahead of a store restored
				// from a backup.
				f.cursor = max(f.cursor, cur)
			}
			f.mu.Unlock()
			break
		}
		if errors.Is(err, relayclient.ErrForbidden) {
			if f.forbidden(ctx) {
				return
			}
			continue
		}
		if errors.Is(err, relayclient.ErrNotFound) {
			c.log.Warn("channel unknown to the relay", "channel", f.d.ID)
			return
		}
		if !sleepCtx(ctx, time.Second) {
			return
		}
	}
	for ctx.Err() == nil {
		f.mu.Lock()
		after, done := f.cursor, f.done
		f.mu.Unlock()
		if done {
			return
		}
		es, next, err := c.relay.Messages(ctx, f.d.GroupID, relayclient.Page{After: after, Wait: c.cfg.Wait})
		c.noteRelay(ctx, err)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, relayclient.ErrForbidden) {
				if f.forbidden(ctx) {
					return
				}
				continue
			}
			// The group may move on while we cannot read: our messages
			// wait until the log has been read again (and are encrypted
			// again in the epoch it is in), or they would go out in an
			// epoch the others may no longer keep.
			f.synced.Store(false)
			c.log.Warn("reading the log failed", "channel", f.d.ID, "err", err)
			sleepCtx(ctx, time.Second)
			continue
		}
		f.mu.Lock()
		f.process(ctx, es)
		if ctx.Err() != nil {
			// Stopped (Close, or a join replaced us) with the page read
			// but not all processed: f.cursor may be past entries left
			// unprocessed. No position is kept or saved at the relay —
			// not trusting the adapter to refuse a cancelled context (the
			// fake relay does not): the next follower reads them.
			f.midPage = true
			f.mu.Unlock()
			return
		}
		if !f.done {
			f.cursor = max(f.cursor, next)
		}
		f.storeCursor(ctx, !onlyApplication(es))
		stuck, by := f.stuck, f.stuckBy
		f.stuck, f.stuckBy = nil, ""
		f.mu.Unlock()
		if stuck != nil {
			// A message of ours encrypted now would be in an epoch the
			// group has left: the outbox waits for the rejoin, then
			// encrypts it again in the new epoch (refresh).
			f.synced.Store(false)
		} else if len(es) < 50 && !f.synced.Load() {
			f.synced.Store(true)
			c.kickOutbox()
		}
		if stuck != nil {
			f.recover(ctx, stuck, by)
		}
		if len(es) == 0 || time.Since(f.savedAt) > time.Second {
			f.saveCursor(ctx)
			f.savedAt = time.Now()
		}
	}
}

// forbidden handles a 403 on the group's log; true: access is lost and
// the follower stops. A 403 is not yet a removal: our own registration of
// the group may still be queued (a channel created while the engine was
// starting, which started a follower for every channel it found before
// the channel's group reached the relay), and then the follower waits for
// it; or it may have landed just after the refused read, which a second
// read tells. Without this a new channel was marked removed at once.
func (f *follower) forbidden(ctx context.Context) bool {
	c := f.c
	if c.registrationQueued(ctx, f.d.ID) {
		sleepCtx(ctx, 100*time.Millisecond)
		return false
	}
	if _, err := c.relay.Cursor(ctx, f.d.GroupID); !errors.Is(err, relayclient.ErrForbidden) {
		return false // readable after all, or another failure: retried as such
	}
	f.lostAccess(ctx)
	return true
}

// lostAccess handles a 403 on the log: the relay no longer counts us a
// member. The channel is removed; a new Welcome starts a new follower.
//
// It is serialised with joins (joinMu, then the channel's state lock, the
// joins' order): a Welcome joined meanwhile replaced this follower, and
// its group must not be forgotten, nor the channel marked removed — that
// left a node holding a group in a channel marked removed, refusing every
// later Welcome as a duplicate (TestChaos: n4 never came back).
func (f *follower) lostAccess(ctx context.Context) {
	c := f.c
	c.joinMu.Lock()
	defer c.joinMu.Unlock()
	defer c.stateLock(f.d.ID)()
	c.mu.Lock()
	replaced := c.followers[f.d.ID] != f
	c.mu.Unlock()
	if replaced || ctx.Err() != nil {
		return
	}
	c.log.Info("no longer a reader of the channel's log", "channel", f.d.ID)
	if st, err := c.channelState(ctx, f.d.ID); err == nil && st.State == StateActive {
		_ = c.p.ForgetGroup(ctx, f.d.GroupID)
		_ = c.setState(ctx, f.d.ID, ChannelState{State: StateRemoved})
	}
}

// recover rejoins by external commit (bounded per follower).
func (f *follower) recover(ctx context.Context, why error, by string) {
	if f.recoveries >= maxRecoveries {
		f.c.log.Error("channel cannot be followed and recoveries are exhausted", "channel", f.d.ID, "why", why)
		return
	}
	f.recoveries++
	if by != "" {
		f.causedBy, f.cause = by, why
	}
	if f.cause != nil {
		why = f.cause
	}
	if err := f.c.recover(ctx, f.d, why, f.causedBy); err != nil {
		f.c.log.Warn("recovery failed", "channel", f.d.ID, "err", err)
		return
	}
	// The messages of the epochs we rejoined past — held ones, and those
	// still ahead in the log up to our external commit, some sent after it
	// in an older epoch — cannot be read by the new leaf. They are not
	// "before we joined" (we were a member all along): each goes through
	// receive, which fails and reports it (history note, event). Held
	// entries of the new epoch or later stay held.
	f.causedBy, f.cause = "", nil
	f.mu.Lock()
	f.release(ctx)
	f.mu.Unlock()
}

// pull reads and processes what is in the log now (no waiting).
func (f *follower) pull(ctx context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	es, _, err := f.c.relay.Messages(ctx, f.d.GroupID, relayclient.Page{After: f.cursor})
	if err != nil {
		return 0, err
	}
	// Entries read are processed to the end in the follower's context, not
	// the caller's: a request given up halfway must not leave entries
	// behind the cursor unprocessed.
	f.process(f.ctx, es)
	f.storeCursor(f.ctx, !onlyApplication(es))
	return len(es), nil
}

// process handles entries in log order (f.mu held). An application
// message or proposal for an epoch we have not reached is held, within
// the bounds, until the commit that starts it has been processed.
func (f *follower) process(ctx context.Context, es []relayclient.Entry) {
	c := f.c
	f.release(ctx) // our own commits move the epoch outside the log too
	var batch []relayclient.Entry
	for _, e := range es {
		if e.Seq <= f.cursor || f.done {
			continue
		}
		f.cursor = e.Seq
		if f.c.ownEntry(e) && e.Kind != relayclient.KindCommit {
			c.log.Debug("log entry: ours", "channel", f.d.ID, "seq", e.Seq, "kind", e.Kind, "epoch", e.Epoch)
			continue // our own message, already in our history
		}
		ep, err := c.mgr.Epoch(ctx, f.d.ID)
		if err != nil {
			f.receive(ctx, batch)
			c.log.Warn("channel state unavailable", "channel", f.d.ID, "err", err)
			f.done = true
			f.doneFlag.Store(true)
			return
		}
		if e.Epoch < f.start {
			c.log.Debug("log entry: before we joined", "channel", f.d.ID, "seq", e.Seq, "kind", e.Kind, "epoch", e.Epoch, "start", f.start)
			continue // before we joined
		}
		if e.Kind != relayclient.KindCommit && e.Epoch > ep {
			c.log.Debug("log entry: held", "channel", f.d.ID, "seq", e.Seq, "kind", e.Kind, "epoch", e.Epoch, "ours", ep)
			f.hold(e)
			continue
		}
		if e.Kind == relayclient.KindCommit && e.Epoch != ep {
			if e.Epoch > ep && f.stuck != nil {
				// A commit after the one we could not process, in the
				// same page (another member's rejoin from it, say): not a
				// missing commit. The rejoin due passes it, as it passes
				// it when it comes in a later page; reporting it skipped
				// also put its "commit is missing" in place of the cause
				// of the rejoin (who posted the commit we could not
				// process), depending on where the page ended.
				c.log.Debug("log entry: commit after the one we could not process", "channel", f.d.ID, "seq", e.Seq, "epoch", e.Epoch, "ours", ep)
			} else if e.Epoch > ep {
				c.log.Warn("commit for a future epoch: a commit is missing", "channel", f.d.ID, "seq", e.Seq, "epoch", e.Epoch, "ours", ep)
				err := errf(ErrUnprocessable, "commit for epoch %d, we are in %d", e.Epoch, ep)
				f.skipped(ctx, e, err)
				f.stuck, f.stuckBy = err, ""
			} else {
				c.log.Debug("log entry: commit of a past epoch", "channel", f.d.ID, "seq", e.Seq, "epoch", e.Epoch, "ours", ep)
			}
			continue
		}
		batch = append(batch, e)
		if e.Kind == relayclient.KindCommit {
			f.receive(ctx, batch)
			batch = nil
			f.release(ctx)
		}
	}
	f.receive(ctx, batch)
}

// ownEntry reports whether this device posted the entry (another device
// of our user posts under the same user id; a relay that does not say
// the device: our user's entries are ours).
func (c *Client) ownEntry(e relayclient.Entry) bool {
	return e.Sender == string(c.p.UserID()) && (e.SenderDevice == "" || e.SenderDevice == c.p.DeviceID().String())
}

// ErrUnprocessable is a log entry that could not be processed (reported
// and skipped).
var ErrUnprocessable = errors.New("client: log entry not processable")

// ErrHeldOverflow is a future-epoch message dropped over the bounds.
var ErrHeldOverflow = errors.New("client: too many messages held for a future epoch")

// hold keeps a future-epoch entry, dropping the oldest held ones beyond
// the count and byte bounds (reported).
func (f *follower) hold(e relayclient.Entry) {
	lim := f.c.cfg.Limits
	f.held = append(f.held, e)
	f.heldBytes += len(e.Message)
	for len(f.held) > 0 && (len(f.held) > lim.HeldCount || f.heldBytes > lim.HeldBytes) {
		old := f.held[0]
		f.held = f.held[1:]
		f.heldBytes -= len(old.Message)
		f.c.mu.Lock()
		f.c.stats.HeldDropped++
		f.c.mu.Unlock()
		f.skipped(context.Background(), old, errf(ErrHeldOverflow, "epoch %d", old.Epoch))
	}
}

// skipped reports an entry that will not be processed.
func (f *follower) skipped(ctx context.Context, e relayclient.Entry, err error) {
	c := f.c
	c.mu.Lock()
	c.stats.EntriesSkipped++
	c.mu.Unlock()
	c.log.Log(ctx, slog.LevelWarn, "skipping a log entry", "channel", f.d.ID, "seq", e.Seq, "kind", e.Kind, "sender", e.Sender, "err", err)
	c.emit(EventDelivery, f.d.ID, map[string]any{"status": "skipped", "seq": e.Seq, "kind": e.Kind, "sender": e.Sender, "error": err.Error()})
	if e.Kind == relayclient.KindApplication && !errors.Is(err, ErrHeldOverflow) {
		// (Not for held entries dropped over the bounds: a flood for a far
		// epoch must not flood the history; the event and log report it.)
		// The history says a message is missing, and whose.
		c.note(ctx, f.d.ID, fmt.Sprintf("%s %s (log seq %d, epoch %d) could not be read: %s", unreadPrefix, e.Sender, e.Seq, e.Epoch, oneLine(err)))
		f.noted = true
	}
}

// unreadPrefix starts the history note of a message that could not be read.
const unreadPrefix = "a message from"

// release processes the held messages whose epoch has come.
func (f *follower) release(ctx context.Context) {
	for len(f.held) > 0 && !f.done {
		ep, err := f.c.mgr.Epoch(ctx, f.d.ID)
		if err != nil {
			return
		}
		var keep, ready []relayclient.Entry
		f.heldBytes = 0
		for _, e := range f.held {
			if e.Epoch <= ep {
				ready = append(ready, e)
			} else {
				keep = append(keep, e)
				f.heldBytes += len(e.Message)
			}
		}
		f.held = keep
		if len(ready) == 0 {
			return
		}
		f.receive(ctx, ready)
	}
}

// receive receives entries in order, in one batch.
func (f *follower) receive(ctx context.Context, es []relayclient.Entry) {
	if len(es) == 0 || f.done || ctx.Err() != nil {
		return // (stopped: a newer follower reads them)
	}
	c := f.c
	msgs := make([][]byte, len(es))
	for i, e := range es {
		msgs[i] = e.Message
	}
	// Up to the first refused entry at a time: the note that an entry
	// could not be read goes to the history before the entries after it.
	for len(msgs) > 0 {
		rs := c.mgr.ReceiveUntilRefused(ctx, f.d.ID, msgs)
		if !f.settleReceived(ctx, es[:len(rs)], rs) {
			return
		}
		es, msgs = es[len(rs):], msgs[len(rs):]
	}
}

// settleReceived acts on the outcomes rs of the entries es; false: the
// follower stops (closed while processing).
func (f *follower) settleReceived(ctx context.Context, es []relayclient.Entry, rs []channel.Received) bool {
	c := f.c
	for i, res := range rs {
		e := es[i]
		if res.Err != nil && ctx.Err() != nil {
			// Stopped (Close) while processing: not an entry that does
			// not process. Our stored position is before it: read again.
			return false
		}
		if res.Err != nil {
			if c.ownEntry(e) {
				// Our own commit, merged while we read it — unless we
				// crashed between its acceptance and its merge and
				// cannot adopt it now: then we are behind for good.
				if ep, err := c.mgr.Epoch(ctx, f.d.ID); err == nil && ep == e.Epoch && e.Kind == relayclient.KindCommit {
					c.log.Warn("our own accepted commit cannot be merged", "channel", f.d.ID, "seq", e.Seq, "err", res.Err)
					f.stuck, f.stuckBy = errors.Join(ErrUnprocessable, res.Err), ""
				}
				continue
			}
			if errors.Is(res.Err, schedule.ErrKeyConsumed) || errors.Is(res.Err, channel.ErrDuplicateMessage) {
				// A message we have read (the page was read again after
				// a crash, or a waiting message was posted twice, the
				// second time encrypted again with the same id), or a
				// replay: nothing is missing.
				c.log.Debug("log entry: read before", "channel", f.d.ID, "seq", e.Seq, "err", res.Err)
				continue
			}
			err := errors.Join(ErrUnprocessable, res.Err)
			f.skipped(ctx, e, err)
			if e.Kind == relayclient.KindCommit {
				f.stuck, f.stuckBy = err, e.Sender // the group moved on without us
			}
			continue
		}
		c.log.Debug("log entry: processed", "channel", f.d.ID, "seq", e.Seq, "kind", e.Kind, "epoch", e.Epoch, "sender", e.Sender)
		if e.Kind == relayclient.KindCommit {
			c.kickOutbox() // a held Welcome of ours may be due
		}
		if c.handle(ctx, res.Event) {
			f.done = true
			f.doneFlag.Store(true)
		}
	}
	return true
}

// readPosition is the last processed entry, or just before the oldest
// held one (f.mu held).
func (f *follower) readPosition() uint64 {
	cur := f.cursor
	for _, e := range f.held {
		cur = min(cur, e.Seq-1)
	}
	return cur
}

// recCursor is the record kind of the read positions (by channel id).
const recCursor = "cursor"

// storeCursor stores the read position locally (f.mu held): a restarted
// engine reads on from there and does not take the messages it read for
// unreadable ones (their keys are used up). It is stored at most every
// cursorEvery while pages of application messages keep coming (one write,
// and fsync, per page was a fifth of a busy node's transactions), at once
// after a proposal or commit (force) or a history note (f.noted), and when
// the follower stops. A crash re-reads what
// came after the stored position: its messages are replays
// (ErrKeyConsumed, ErrDuplicateMessage) and its commits predate the epoch
// we restart in (f.start), both passed over without a report; a skipped
// entry is re-read only if the crash came before the forced write.
func (f *follower) storeCursor(ctx context.Context, force bool) {
	cur := f.readPosition()
	if cur == f.local || f.done || ctx.Err() != nil {
		return
	}
	if !force && !f.noted && time.Since(f.localAt) < cursorEvery {
		return
	}
	if err := f.c.recs.PutRecord(ctx, recCursor, f.d.ID, strconv.AppendUint(nil, cur, 10)); err != nil {
		f.c.log.Warn("storing the read position", "channel", f.d.ID, "err", err)
		return
	}
	f.local, f.localAt, f.noted = cur, time.Now(), false
}

// cursorEvery is how often a busy follower stores its read position.
const cursorEvery = time.Second

// onlyApplication: es holds no proposal or commit (after one, the read
// position is stored at once, so that a crash does not read a proposal
// twice).
func onlyApplication(es []relayclient.Entry) bool {
	for _, e := range es {
		if e.Kind != relayclient.KindApplication {
			return false
		}
	}
	return true
}

// localCursor is the stored read position of a channel.
func (c *Client) localCursor(ctx context.Context, channelID string) (uint64, bool) {
	recs, err := c.recs.Records(ctx, recCursor)
	if err != nil {
		return 0, false
	}
	for _, r := range recs {
		if r.ID == channelID {
			n, err := strconv.ParseUint(string(r.Value), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// saveCursor stores the read position at the relay.
func (f *follower) saveCursor(ctx context.Context) {
	f.mu.Lock()
	cur := f.readPosition()
	saved := f.saved
	f.mu.Unlock()
	if cur == saved {
		return
	}
	if err := f.c.relay.SetCursor(ctx, f.d.GroupID, cur); err != nil {
		return
	}
	f.mu.Lock()
	f.saved = max(f.saved, cur)
	f.mu.Unlock()
}
