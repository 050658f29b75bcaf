package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/client"
	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
)

// fakeRelay is an in-memory relay shared by the clients of a test: it
// orders commits per epoch, keeps members (from the committer's
// statement, like today's relay), queues Welcomes and long-polls.
type fakeRelay struct {
	mu      sync.Mutex
	changed chan struct{}
	down    bool
	// holdGroups: group registrations fail as if the relay were down;
	// forbids counts the 403s answered.
	holdGroups bool
	forbids    int
	groups     map[string]*fakeGroup
	welcomes   map[string][]relayclient.Welcome
	nextWID    uint64
	cursors    map[string]uint64
	// loseAnswer: the next commit is ordered, then the relay goes down
	// before it answers (the committer cannot tell).
	loseAnswer bool
	// downAfterCommit: the relay goes down after answering the next commit.
	downAfterCommit bool
	// epochState answers EpochState (nil: errors.ErrUnsupported).
	epochState func(gid []byte, epoch uint64) (*client.EpochState, error)
	// paused: readers whose long-polled log pages stay empty (as if
	// nothing came yet); reads that do not wait are answered.
	paused map[string]bool
	// cut: users for whom the relay is down.
	cut map[string]bool
	// dropCommit: users whose next commit is lost on its way (not stored,
	// answered with a connection error).
	dropCommit map[string]bool
	// welcomesPosted counts the Welcomes posted, by recipient.
	welcomesPosted map[string]int
	// loseCommitAnswer: users whose next accepted commit is answered with
	// a connection error (the relay took it and died before answering).
	loseCommitAnswer map[string]bool
	// cursorGate: users whose cursor reads wait until the channel closes.
	cursorGate map[string]chan struct{}
	// onGroupInfo runs (without the lock) after a GroupInfo is read,
	// before it is answered.
	onGroupInfo func(user string)
}

type fakeGroup struct {
	epoch   uint64
	log     []relayclient.Entry
	members map[string]bool
	until   map[string]uint64 // removed reader -> last seq it may read
	gi      []byte            // latest GroupInfo
	gis     map[uint64][]byte // GroupInfo by epoch
	// corrupt: reader -> seq of an entry that reader gets damaged.
	corrupt map[string]uint64
}

func newFakeRelay() *fakeRelay {
	return &fakeRelay{changed: make(chan struct{}), groups: map[string]*fakeGroup{},
		welcomes: map[string][]relayclient.Welcome{}, cursors: map[string]uint64{}, paused: map[string]bool{}, cut: map[string]bool{},
		cursorGate: map[string]chan struct{}{}, loseCommitAnswer: map[string]bool{},
		dropCommit: map[string]bool{}, welcomesPosted: map[string]int{}}
}

// pause holds back reader's long-polled log pages (its follower's).
func (f *fakeRelay) pause(reader string, paused bool) {
	f.mu.Lock()
	f.paused[reader] = paused
	f.bumpLocked()
	f.mu.Unlock()
}

// logLen is the length of the group's log.
func (f *fakeRelay) logLen(gid []byte) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.groups[string(gid)].log)
}

var errDown = errors.New("fake relay: connection refused")

// conn is one user's view of the relay.
func (f *fakeRelay) conn(user string) client.Relay { return &fakeConn{f: f, user: user} }

func (f *fakeRelay) setHoldGroups(hold bool) {
	f.mu.Lock()
	f.holdGroups = hold
	f.mu.Unlock()
}

func (f *fakeRelay) forbidden403s() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.forbids
}

func (f *fakeRelay) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.bumpLocked()
	f.mu.Unlock()
}

func (f *fakeRelay) bumpLocked() { close(f.changed); f.changed = make(chan struct{}) }

// inject appends an entry as sender (a hostile member's).
func (f *fakeRelay) inject(gid []byte, sender, kind string, epoch uint64, msg []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.groups[string(gid)]
	g.log = append(g.log, relayclient.Entry{Seq: uint64(len(g.log) + 1), Message: msg, Kind: kind, Epoch: epoch, Sender: sender, ReceivedAt: time.Now()})
	f.bumpLocked()
}

type fakeConn struct {
	f    *fakeRelay
	user string
}

// wait blocks until the relay changes, d passes or ctx ends.
func (c *fakeConn) wait(ctx context.Context, ch chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
	}
}

// holdCursor makes user's cursor reads wait until the returned release.
func (f *fakeRelay) holdCursor(user string) (release func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	f.cursorGate[user] = ch
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		delete(f.cursorGate, user)
		f.mu.Unlock()
		close(ch)
	}
}

// setCut makes the relay unreachable for user alone (or reachable again).
func (f *fakeRelay) setCut(user string, cut bool) {
	f.mu.Lock()
	f.cut[user] = cut
	f.bumpLocked()
	f.mu.Unlock()
}

func (c *fakeConn) lock() (func(), error) {
	c.f.mu.Lock()
	if c.f.down || c.f.cut[c.user] {
		c.f.mu.Unlock()
		return nil, errDown
	}
	return c.f.mu.Unlock, nil
}

func (c *fakeConn) URL() string { return "fake://relay" }

func (c *fakeConn) Login(context.Context) error {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	unlock()
	return nil
}

func (c *fakeConn) CreateGroup(_ context.Context, gid, _ []byte) error {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if c.f.holdGroups {
		return errDown
	}
	if _, ok := c.f.groups[string(gid)]; !ok {
		c.f.groups[string(gid)] = &fakeGroup{members: map[string]bool{c.user: true}, until: map[string]uint64{}, corrupt: map[string]uint64{}}
	}
	return nil
}

func forbidden() error {
	return &relayclient.Error{Status: 403, Code: "forbidden", Message: "not a member"}
}

// forbid is forbidden, counted (f.mu held).
func (f *fakeRelay) forbid() error {
	f.forbids++
	return forbidden()
}

func (c *fakeConn) PostCommit(_ context.Context, oc *channel.OutgoingCommit) (uint64, error) {
	unlock, err := c.lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	g := c.f.groups[string(oc.GroupID)]
	if g == nil || !g.members[c.user] {
		return 0, c.f.forbid()
	}
	if c.f.dropCommit[c.user] {
		delete(c.f.dropCommit, c.user)
		return 0, errors.New("fake relay: connection reset before the commit arrived")
	}
	if oc.Epoch != g.epoch {
		return 0, &relayclient.CommitConflictError{Err: &relayclient.Error{Status: 409, Code: "commit_conflict"}, CurrentEpoch: g.epoch}
	}
	g.log = append(g.log, relayclient.Entry{Seq: uint64(len(g.log) + 1), Message: oc.Commit, Kind: relayclient.KindCommit,
		Epoch: oc.Epoch, Sender: c.user, ReceivedAt: time.Now()})
	g.epoch++
	g.gi = oc.GroupInfo
	if g.gis == nil {
		g.gis = map[uint64][]byte{}
	}
	g.gis[g.epoch] = oc.GroupInfo
	for _, m := range oc.Added {
		g.members[m.Identity] = true
		delete(g.until, m.Identity)
	}
	for _, m := range oc.Removed {
		delete(g.members, m.Identity)
		g.until[m.Identity] = uint64(len(g.log))
	}
	c.f.bumpLocked()
	if c.f.loseCommitAnswer[c.user] {
		delete(c.f.loseCommitAnswer, c.user)
		return 0, errors.New("fake relay: connection reset after the commit was stored")
	}
	if c.f.loseAnswer {
		c.f.loseAnswer, c.f.down = false, true
		return 0, errDown
	}
	if c.f.downAfterCommit {
		c.f.downAfterCommit, c.f.down = false, true
	}
	return uint64(len(g.log)), nil
}

func (c *fakeConn) PostMessage(_ context.Context, gid []byte, kind string, epoch uint64, msg []byte) (uint64, error) {
	unlock, err := c.lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	g := c.f.groups[string(gid)]
	if g == nil || !g.members[c.user] {
		return 0, c.f.forbid()
	}
	g.log = append(g.log, relayclient.Entry{Seq: uint64(len(g.log) + 1), Message: msg, Kind: kind, Epoch: epoch, Sender: c.user, ReceivedAt: time.Now()})
	c.f.bumpLocked()
	return uint64(len(g.log)), nil
}

func (c *fakeConn) PostWelcome(_ context.Context, w relayclient.Welcome) error {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	for _, r := range w.Recipients {
		c.f.welcomesPosted[r]++
		c.f.nextWID++
		q := w
		q.ID, q.From = c.f.nextWID, c.user
		c.f.welcomes[r] = append(c.f.welcomes[r], q)
	}
	c.f.bumpLocked()
	return nil
}

func (c *fakeConn) Messages(ctx context.Context, gid []byte, p relayclient.Page) ([]relayclient.Entry, uint64, error) {
	waiting := p.Wait > 0
	for {
		unlock, err := c.lock()
		if err != nil {
			return nil, 0, err
		}
		g := c.f.groups[string(gid)]
		until, removed := uint64(1<<62), false
		if g != nil && !g.members[c.user] {
			until, removed = g.until[c.user]
		}
		if g == nil || (!g.members[c.user] && (!removed || p.After >= until)) {
			unlock()
			return nil, 0, c.f.forbid()
		}
		var out []relayclient.Entry
		for _, e := range g.log {
			if c.f.paused[c.user] && waiting {
				break
			}
			if e.Seq > p.After && e.Seq <= until && len(out) < 100 {
				if g.corrupt[c.user] == e.Seq {
					e.Message = append([]byte(nil), e.Message...)
					e.Message[len(e.Message)-1] ^= 1
				}
				out = append(out, e)
			}
		}
		ch := c.f.changed
		unlock()
		if len(out) > 0 || p.Wait == 0 || ctx.Err() != nil {
			next := p.After
			if len(out) > 0 {
				next = out[len(out)-1].Seq
			}
			return out, next, ctx.Err()
		}
		c.wait(ctx, ch, p.Wait)
		p.Wait = 0
	}
}

func (c *fakeConn) Cursor(ctx context.Context, gid []byte) (uint64, error) {
	c.f.mu.Lock()
	gate := c.f.cursorGate[c.user]
	c.f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	unlock, err := c.lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	g := c.f.groups[string(gid)]
	if g == nil {
		return 0, c.f.forbid()
	}
	if _, removed := g.until[c.user]; !g.members[c.user] && !removed {
		return 0, c.f.forbid()
	}
	return c.f.cursors[c.user+string(gid)], nil
}

func (c *fakeConn) SetCursor(_ context.Context, gid []byte, after uint64) error {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	c.f.cursors[c.user+string(gid)] = after
	return nil
}

func (c *fakeConn) Welcomes(ctx context.Context, wait time.Duration) ([]relayclient.Welcome, error) {
	for {
		unlock, err := c.lock()
		if err != nil {
			return nil, err
		}
		ws := append([]relayclient.Welcome(nil), c.f.welcomes[c.user]...)
		ch := c.f.changed
		unlock()
		if len(ws) > 0 || wait == 0 || ctx.Err() != nil {
			return ws, ctx.Err()
		}
		c.wait(ctx, ch, wait)
		wait = 0
	}
}

func (c *fakeConn) AckWelcome(_ context.Context, id uint64) error {
	unlock, err := c.lock()
	if err != nil {
		return err
	}
	defer unlock()
	q := c.f.welcomes[c.user]
	for i, w := range q {
		if w.ID == id {
			c.f.welcomes[c.user] = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	return nil
}

func (c *fakeConn) KeyPackageCount(context.Context) (int, bool, error) {
	unlock, err := c.lock()
	if err != nil {
		return 0, false, err
	}
	unlock()
	return 100, true, nil
}

func (c *fakeConn) PublishKeyPackages(context.Context, [][]byte, []byte) error { return nil }

func (c *fakeConn) ClaimKeyPackages(context.Context, identity.UserID) ([]relayclient.ClaimedKeyPackage, error) {
	return nil, relayclient.ErrNotFound
}

func (c *fakeConn) GroupInfo(_ context.Context, gid []byte) ([]byte, uint64, error) {
	unlock, err := c.lock()
	if err != nil {
		return nil, 0, err
	}
	g := c.f.groups[string(gid)]
	if g == nil || g.gi == nil {
		unlock()
		return nil, 0, relayclient.ErrNotFound
	}
	gi, ep, hook := g.gi, g.epoch, c.f.onGroupInfo
	unlock()
	if hook != nil {
		hook(c.user) // after the answer is read: it may be stale now
	}
	return gi, ep, nil
}

// setOnGroupInfo sets the hook run after a GroupInfo is read.
func (f *fakeRelay) setOnGroupInfo(hook func(user string)) {
	f.mu.Lock()
	f.onGroupInfo = hook
	f.mu.Unlock()
}

// publicEpochs makes EpochState answer from the GroupInfos posted with
// the commits (what the real relay tracks).
func (f *fakeRelay) publicEpochs() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epochState = func(gid []byte, epoch uint64) (*client.EpochState, error) {
		f.mu.Lock()
		g := f.groups[string(gid)]
		var raw []byte
		if g != nil {
			raw = g.gis[epoch]
		}
		f.mu.Unlock()
		if raw == nil {
			return nil, relayclient.ErrNotFound
		}
		m, err := mls.UnmarshalMessage(raw)
		if err != nil || m.GroupInfo == nil {
			return nil, fmt.Errorf("fake relay: group info: %v", err)
		}
		gc := m.GroupInfo.GroupContext
		return &client.EpochState{Epoch: gc.Epoch, TreeHash: gc.TreeHash, ConfirmedTranscriptHash: gc.ConfirmedTranscriptHash}, nil
	}
}

// corruptNext damages, for reader, the next entry of the group's log.
func (f *fakeRelay) corruptNext(gid []byte, reader string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.groups[string(gid)]
	g.corrupt[reader] = uint64(len(g.log) + 1)
}

func (c *fakeConn) EpochState(_ context.Context, gid []byte, epoch uint64) (*client.EpochState, error) {
	c.f.mu.Lock()
	fn := c.f.epochState
	c.f.mu.Unlock()
	if fn == nil {
		return nil, errors.ErrUnsupported
	}
	return fn(gid, epoch)
}
