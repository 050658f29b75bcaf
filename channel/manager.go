package channel

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spacepanda/spacepanda/internal/keylock"
	"github.com/spacepanda/spacepanda/provider"
	"github.com/spacepanda/spacepanda/store"
)

// Options configure a Manager.
type Options struct {
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Rand makes group and message ids (nil: crypto/rand).
	Rand io.Reader
	// InviteTTL is how long an invite is valid (0: DefaultInviteTTL;
	// negative: invites do not expire).
	InviteTTL time.Duration
	// CommitPoster, when set, receives every commit of this member before
	// it is merged; nil: commits merge at once. It applies to the MLS
	// adapter (NewMLSGroupProvider); other GroupProviders merge at once.
	CommitPoster CommitPoster
	// NoRoles makes CreateChannel create plain RFC 9420 groups: no roles
	// and no GroupContext extensions, so any RFC 9420 client (e.g. ts-mls,
	// which cannot list the roles extension nor carry a device
	// certificate) can be invited, is listed as unverified, and nobody's
	// role is enforced. Channels with roles (the default) refuse such
	// clients at invite time (ErrRolesUnsupported) and admit certified
	// devices only.
	NoRoles bool
}

// DefaultInviteTTL is the validity of an invite.
const DefaultInviteTTL = 7 * 24 * time.Hour

// Manager is one identity's channels. It is safe for concurrent use:
// operations on one channel are serialised by a lock of that channel, and
// different channels proceed in parallel.
type Manager struct {
	gp   GroupProvider
	st   store.Store
	now  func() time.Time
	rand io.Reader
	ttl  time.Duration
	// noRoles is Options.NoRoles.
	noRoles bool
	// tx is gp when its state lives in st: history rows are then written
	// in the transaction that stores the state a message changed.
	tx txGroupProvider

	locks keylock.Set // one per channel
	sends sendQueues  // sends waiting to be combined (sendbatch.go)
}

// NewManager returns the manager of gp's identity, keeping channels and
// history in st (the identity's own store).
func NewManager(gp GroupProvider, st store.Store, o Options) *Manager {
	m := &Manager{gp: gp, st: st, now: o.Now, rand: o.Rand, ttl: o.InviteTTL,
		noRoles: o.NoRoles}
	if a, ok := gp.(*mlsGroupProvider); ok && o.CommitPoster != nil {
		m.gp = &mlsGroupProvider{p: a.p, post: o.CommitPoster}
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.rand == nil {
		m.rand = rand.Reader
	}
	if m.ttl == 0 {
		m.ttl = DefaultInviteTTL
	}
	if tp, ok := gp.(txGroupProvider); ok && sameStore(tp.Store(), st) {
		m.tx = tp
	}
	return m
}

// txGroupProvider is implemented by GroupProviders that keep their state
// in a store.Store (the MLS adapter). When that is the Manager's store,
// what a send or a receive writes to the history goes in the very
// transaction that stores the group state it goes with: a received
// message is in the history exactly when its key is consumed.
type txGroupProvider interface {
	// Store is where the groups' state is kept.
	Store() store.Store
	// EncryptTx is Encrypt where fn runs in a transaction committed
	// before the ciphertext is returned (with the ratchet, when this send
	// must store it). If fn fails, no ciphertext is returned.
	// fn is given the ciphertext.
	EncryptTx(ctx context.Context, groupID, plaintext []byte, fn func(tx store.Tx, ct []byte) error) ([]byte, error)
	// EncryptAllTx is EncryptTx for several messages at once, in order:
	// fn runs for each, all in one transaction; if it fails for any, no
	// ciphertext is returned.
	EncryptAllTx(ctx context.Context, groupID []byte, plaintexts [][]byte, fn func(tx store.Tx, i int, ct []byte) error) ([][]byte, error)
	// ProcessMessageTx is ProcessMessage where fn runs in the transaction
	// that stores the state the message leads to; if fn fails, nothing is
	// stored and the message counts as not processed. fn must not call
	// the GroupProvider.
	ProcessMessageTx(ctx context.Context, groupID, message []byte, fn func(tx store.Tx, p *Processed) error) (*Processed, error)
	// ProcessMessagesTx processes a run of messages in order, in one
	// transaction with what each writes (same rules as fn). It returns how
	// many of the messages it processed and stored, n; when n <
	// len(messages), err is why messages[n] was not processed (it changed
	// nothing), or nil when the run just ended (call again with the rest).
	ProcessMessagesTx(ctx context.Context, groupID []byte, messages [][]byte, each func(tx store.Tx, i int, p *Processed) error) (int, error)
}

// sameStore reports whether a and b are the same store (false when they
// cannot be compared).
func sameStore(a, b store.Store) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

func (m *Manager) lock(channelID string) func() { return m.locks.Lock(channelID) }

// ChannelID is the channel id of a group: the hex of its group id.
func ChannelID(groupID []byte) string { return hex.EncodeToString(groupID) }

// Identity is this member's identity (its credential's): with the MLS
// adapter, the user id.
func (m *Manager) Identity() string { return m.gp.Identity() }

// GenerateKeyPackage makes one key package to hand to an inviter.
func (m *Manager) GenerateKeyPackage(ctx context.Context) ([]byte, error) {
	kps, err := m.gp.GenerateKeyPackages(ctx, 1)
	if err != nil {
		return nil, err
	}
	return kps[0], nil
}

// GenerateKeyPackages makes n key packages.
func (m *Manager) GenerateKeyPackages(ctx context.Context, n int) ([][]byte, error) {
	return m.gp.GenerateKeyPackages(ctx, n)
}

func toStore(d *Descriptor) store.Channel {
	return store.Channel{ID: d.ID, GroupID: d.GroupID, Name: d.Name, Public: d.Public, CreatedAt: d.CreatedAt}
}

func fromStore(c store.Channel) *Descriptor {
	return &Descriptor{ID: c.ID, GroupID: c.GroupID, Name: c.Name, Public: c.Public, CreatedAt: c.CreatedAt}
}

func (m *Manager) randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(m.rand, b); err != nil {
		return nil, fmt.Errorf("channel: randomness: %w", err)
	}
	return b, nil
}

// CreateChannel creates a channel whose only member is us.
func (m *Manager) CreateChannel(ctx context.Context, name string, public bool) (*Descriptor, error) {
	return m.CreateChannelWith(ctx, CreateOptions{Name: name, Public: public, NoRoles: m.noRoles})
}

// CreateOptions say what channel CreateChannelWith makes.
type CreateOptions struct {
	Name   string
	Public bool
	// NoRoles makes this channel a plain RFC 9420 group (see
	// Options.NoRoles), whatever the Manager's default.
	NoRoles bool
	// Tx (when not nil) runs in the transaction that stores the channel:
	// what it writes (the channel's registration in an outbox, say) is
	// stored with the channel or not at all. If it fails, the channel is
	// not created. It must only use tx.
	Tx func(tx store.Tx, d *Descriptor) error
}

// CreateChannelWith creates a channel whose only member is us, with or
// without roles.
func (m *Manager) CreateChannelWith(ctx context.Context, o CreateOptions) (*Descriptor, error) {
	name, public := o.Name, o.Public
	if len(name) > MaxNameLen {
		return nil, fmt.Errorf("%w: channel name longer than %d bytes", ErrInvalidEncoding, MaxNameLen)
	}
	gid, err := m.randomBytes(16)
	if err != nil {
		return nil, err
	}
	d := &Descriptor{ID: ChannelID(gid), GroupID: gid, Name: name, Public: public, CreatedAt: m.now().UTC().Truncate(time.Millisecond)}
	defer m.lock(d.ID)()
	create := m.gp.CreateGroup
	if pc, ok := m.gp.(plainGroupCreator); ok && o.NoRoles {
		create = pc.CreatePlainGroup
	}
	if err := create(ctx, gid); err != nil {
		return nil, fmt.Errorf("channel: create: %w", err)
	}
	if err := m.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutChannel(ctx, toStore(d)); err != nil || o.Tx == nil {
			return err
		}
		return o.Tx(tx, d)
	}); err != nil {
		return nil, errors.Join(fmt.Errorf("channel: create: %w", err), m.gp.ForgetGroup(ctx, gid))
	}
	return d, nil
}

// Channel returns a channel's descriptor.
func (m *Manager) Channel(ctx context.Context, channelID string) (*Descriptor, error) {
	c, err := m.st.Channel(ctx, channelID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrChannelNotFound, channelID)
	}
	if err != nil {
		return nil, err
	}
	return fromStore(c), nil
}

// Channels lists our channels ordered by id.
func (m *Manager) Channels(ctx context.Context) ([]*Descriptor, error) {
	cs, err := m.st.Channels(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*Descriptor, len(cs))
	for i, c := range cs {
		out[i] = fromStore(c)
	}
	return out, nil
}

// CreateInvite adds the owner of keyPackage to the channel by a commit. It
// returns the InviteToken for the new member and the commit, which every
// other existing member must Receive.
func (m *Manager) CreateInvite(ctx context.Context, channelID string, keyPackage []byte) (*InviteToken, []byte, error) {
	return m.CreateInvites(ctx, channelID, [][]byte{keyPackage})
}

// CreateInvites adds several members in one commit; the one InviteToken
// (one Welcome) serves them all.
func (m *Manager) CreateInvites(ctx context.Context, channelID string, keyPackages [][]byte) (*InviteToken, []byte, error) {
	return m.createInvites(ctx, channelID, keyPackages, RoleMember)
}

func (m *Manager) createInvites(ctx context.Context, channelID string, keyPackages [][]byte, role Role) (*InviteToken, []byte, error) {
	return m.addLeaves(ctx, channelID, keyPackages, role, nil)
}

// addLeaves adds the owners of keyPackages by one commit. check (nil:
// the inviter's role, checkInvite) decides, with the channel locked,
// whether we may and which key packages to add.
func (m *Manager) addLeaves(ctx context.Context, channelID string, keyPackages [][]byte, role Role,
	check func(d *Descriptor, kps [][]byte) ([][]byte, error)) (*InviteToken, []byte, error) {
	defer m.lock(channelID)()
	d, err := m.Channel(ctx, channelID)
	if err != nil {
		return nil, nil, err
	}
	if check == nil {
		err = m.checkInvite(ctx, d, role)
		if err == nil {
			err = m.checkNotMembers(ctx, d, keyPackages)
		}
	} else {
		keyPackages, err = check(d, keyPackages)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("channel %s: invite: %w", channelID, err)
	}
	now := m.now().UTC().Truncate(time.Millisecond)
	tok := &InviteToken{Channel: *d, CreatedAt: now}
	if m.ttl > 0 {
		tok.ExpiresAt = now.Add(m.ttl)
	}
	info, err := MarshalChannelInfo(&ChannelInfo{Channel: *d, InviteExpiresAt: tok.ExpiresAt})
	if err != nil {
		return nil, nil, err
	}
	var res *AddResult
	if rp, ok := m.gp.(RoleProvider); ok {
		res, err = rp.AddMembersWithRole(ctx, d.GroupID, keyPackages, info, role)
	} else {
		res, err = m.gp.AddMembers(ctx, d.GroupID, keyPackages, info)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("channel %s: invite: %w", channelID, err)
	}
	tok.Welcome, tok.RatchetTree = res.Welcome, res.RatchetTree
	return tok, res.Commit, nil
}

// checkNotMembers refuses a key package of a device already in the
// channel (the same signature key), before any commit is made (RFC 9420 §12.2 would refuse
// the Add; this says so in the channel's words).
func (m *Manager) checkNotMembers(ctx context.Context, d *Descriptor, kps [][]byte) error {
	ip, err := m.identities()
	if err != nil {
		return nil // a provider without identities: the engine's check stands
	}
	leaves, err := m.gp.Members(ctx, d.GroupID)
	if err != nil {
		return m.mapErr(err)
	}
	for i, kp := range kps {
		dev, err := ip.KeyPackageMember(kp)
		if err != nil {
			return fmt.Errorf("key package %d: %w", i, err)
		}
		for _, l := range leaves {
			// The same device key: another key package of a device in the
			// channel. (The same device id under another key is an attack,
			// refused by the provider as ErrDuplicateDevice.)
			if bytes.Equal(l.SignatureKey, dev.SignatureKey) {
				return fmt.Errorf("%w: key package %d is of %s, in the channel", ErrAlreadyMember, i, dev.Identity)
			}
		}
	}
	return nil
}

// JoinChannel joins the channel of an invite. An expired invite is refused:
// first by the token's expiry, then by the authenticated one the Welcome
// carries (a joined group is then forgotten again).
func (m *Manager) JoinChannel(ctx context.Context, inv *InviteToken) (*Descriptor, error) {
	now := m.now()
	if !inv.ExpiresAt.IsZero() && now.After(inv.ExpiresAt) {
		return nil, fmt.Errorf("%w: expired %s", ErrInviteExpired, inv.ExpiresAt.Format(time.RFC3339))
	}
	return m.join(ctx, inv.Welcome, inv.RatchetTree, &inv.Channel)
}

// JoinWelcome joins from a bare Welcome (MLSMessage), e.g. one made by a
// plain RFC 9420 peer; ratchetTree nil: the tree is in the Welcome.
func (m *Manager) JoinWelcome(ctx context.Context, welcome, ratchetTree []byte) (*Descriptor, error) {
	return m.join(ctx, welcome, ratchetTree, nil)
}

func (m *Manager) join(ctx context.Context, welcome, ratchetTree []byte, hint *Descriptor) (*Descriptor, error) {
	if hint != nil && len(hint.GroupID) > 0 {
		defer m.lock(ChannelID(hint.GroupID))()
		if _, err := m.st.Channel(ctx, ChannelID(hint.GroupID)); err == nil {
			return nil, fmt.Errorf("%w: %s", ErrChannelExists, ChannelID(hint.GroupID))
		}
	}
	jr, err := m.gp.JoinFromWelcome(ctx, welcome, ratchetTree)
	if err != nil {
		if errors.Is(err, provider.ErrGroupExists) {
			err = errors.Join(ErrChannelExists, err)
		}
		return nil, fmt.Errorf("channel: join: %w", err)
	}
	undo := func(err error) (*Descriptor, error) {
		return nil, errors.Join(err, m.gp.ForgetGroup(ctx, jr.GroupID))
	}
	id := ChannelID(jr.GroupID)
	if hint != nil && hint.ID != "" && hint.ID != id {
		return undo(fmt.Errorf("%w: token names channel %s, the Welcome group %s", ErrInvalidInvite, hint.ID, id))
	}
	if hint == nil || len(hint.GroupID) == 0 {
		defer m.lock(id)()
	}
	d := &Descriptor{ID: id, GroupID: jr.GroupID, Name: id, CreatedAt: m.now().UTC().Truncate(time.Millisecond)}
	if hint != nil && hint.ID == id {
		d.Name, d.Public, d.CreatedAt = hint.Name, hint.Public, hint.CreatedAt
	}
	if jr.Info != nil {
		// Authenticated: it wins over the token.
		if ci, err := UnmarshalChannelInfo(jr.Info); err == nil && ChannelID(ci.Channel.GroupID) == id {
			if !ci.InviteExpiresAt.IsZero() && m.now().After(ci.InviteExpiresAt) {
				return undo(fmt.Errorf("%w: expired %s", ErrInviteExpired, ci.InviteExpiresAt.Format(time.RFC3339)))
			}
			d.Name, d.Public, d.CreatedAt = ci.Channel.Name, ci.Channel.Public, ci.Channel.CreatedAt
		}
	}
	if err := m.st.Update(ctx, func(tx store.Tx) error { return tx.PutChannel(ctx, toStore(d)) }); err != nil {
		return undo(fmt.Errorf("channel: join: %w", err))
	}
	return d, nil
}

// SendMessage encrypts a chat message for the channel, records it in the
// history, and returns its id and the ciphertext (an MLSMessage) to deliver
// to the other members.
func (m *Manager) SendMessage(ctx context.Context, channelID, body, replyTo string) (string, []byte, error) {
	cm, ct, err := m.SendChat(ctx, channelID, body, replyTo)
	if err != nil {
		return "", nil, err
	}
	return cm.ID, ct, nil
}

// SendChat is SendMessage returning the chat message as encoded (to
// encrypt it again later with EncryptChat).
func (m *Manager) SendChat(ctx context.Context, channelID, body, replyTo string) (*ChatMessage, []byte, error) {
	return m.SendChatWith(ctx, channelID, body, replyTo, nil)
}

// SendChatWith is SendChat where fn (if not nil) runs in the transaction
// that appends the message to the history (with the ratchet, when this
// send stores it), given the message and its ciphertext: what must be
// durable with the message before the ciphertext leaves (the sync
// engine's outbox entry). If fn fails, nothing is recorded and no
// ciphertext is returned.
func (m *Manager) SendChatWith(ctx context.Context, channelID, body, replyTo string, fn func(tx store.Tx, cm *ChatMessage, ct []byte) error) (*ChatMessage, []byte, error) {
	id, ct, err := m.sendMessage(ctx, channelID, body, replyTo, fn)
	if err != nil {
		return nil, nil, err
	}
	return id, ct, nil
}

// EncryptChat encrypts an already recorded chat message again, in the
// channel's current epoch, without touching the history: a sender whose
// message waited while the group moved on re-sends it under the same id
// (receivers keep one copy of an id).
func (m *Manager) EncryptChat(ctx context.Context, channelID string, cm *ChatMessage) ([]byte, error) {
	pt, err := MarshalChat(cm)
	if err != nil {
		return nil, err
	}
	defer m.lock(channelID)()
	d, err := m.Channel(ctx, channelID)
	if err != nil {
		return nil, err
	}
	if rp, ok := m.gp.(RoleProvider); ok {
		if rs, err := rp.Roles(ctx, d.GroupID); err == nil && rs.Of(m.Identity()) == RoleReadOnly {
			return nil, fmt.Errorf("channel %s: send: %w: we are read-only", channelID, ErrPermission)
		}
	}
	var ct []byte
	if m.tx != nil {
		ct, err = m.tx.EncryptTx(ctx, d.GroupID, pt, func(store.Tx, []byte) error { return nil })
	} else {
		ct, err = m.gp.Encrypt(ctx, d.GroupID, pt)
	}
	if err != nil {
		return nil, fmt.Errorf("channel %s: send: %w", channelID, m.mapErr(err))
	}
	return ct, nil
}

func (m *Manager) sendMessage(ctx context.Context, channelID, body, replyTo string, fn func(store.Tx, *ChatMessage, []byte) error) (*ChatMessage, []byte, error) {
	if len(body) > MaxBody {
		return nil, nil, ErrBodyTooLarge
	}
	rb, err := m.randomBytes(16)
	if err != nil {
		return nil, nil, err
	}
	cm := &ChatMessage{ID: hex.EncodeToString(rb), Timestamp: m.now().UTC().Truncate(time.Millisecond), Body: []byte(body), ReplyTo: replyTo}
	pt, err := MarshalChat(cm)
	if err != nil {
		return nil, nil, err
	}
	if m.tx != nil {
		return m.combineSend(&sendReq{ctx: ctx, channelID: channelID, cm: cm, pt: pt, fn: fn})
	}
	defer m.lock(channelID)()
	d, err := m.sendable(ctx, channelID)
	if err != nil {
		return nil, nil, err
	}
	msg := store.Message{ChannelID: channelID, ID: cm.ID, Sender: m.Identity(), Timestamp: cm.Timestamp,
		Body: cm.Body, ReplyTo: replyTo, ReceivedAt: cm.Timestamp}
	ct, err := m.gp.Encrypt(ctx, d.GroupID, pt)
	if err != nil {
		return nil, nil, fmt.Errorf("channel %s: send: %w", channelID, m.mapErr(err))
	}
	if err := m.st.Update(ctx, func(tx store.Tx) error {
		if err := appendTx(ctx, tx, &msg); err != nil || fn == nil {
			return err
		}
		return fn(tx, cm, ct)
	}); err != nil {
		return nil, nil, err
	}
	return cm, ct, nil
}

// sendable returns the channel if we may send to it (channel lock held).
func (m *Manager) sendable(ctx context.Context, channelID string) (*Descriptor, error) {
	d, err := m.Channel(ctx, channelID)
	if err != nil {
		return nil, err
	}
	if rp, ok := m.gp.(RoleProvider); ok {
		rs, err := rp.Roles(ctx, d.GroupID)
		if err != nil {
			return nil, fmt.Errorf("channel %s: send: %w", channelID, m.mapErr(err))
		}
		if rs.Of(m.Identity()) == RoleReadOnly {
			return nil, fmt.Errorf("channel %s: send: %w: we are read-only", channelID, ErrPermission)
		}
	}
	return d, nil
}

// appendTx appends msg to its channel's history in tx and sets its Seq.
func appendTx(ctx context.Context, tx store.Tx, msg *store.Message) error {
	seq, err := tx.AppendMessage(ctx, *msg)
	if errors.Is(err, store.ErrExists) {
		return fmt.Errorf("%w: %s", ErrDuplicateMessage, msg.ID)
	}
	msg.Seq = seq
	return err
}

func (m *Manager) mapErr(err error) error {
	if errors.Is(err, provider.ErrGroupNotFound) {
		return errors.Join(ErrNotMember, err)
	}
	return err
}

// EventKind says what a received message did.
type EventKind uint8

// Event kinds. For a commit, Kind is the first that applies of
// EventRemoved, EventMemberRemoved, EventMemberJoined, EventEpochChanged;
// Joined and Removed list everything the commit did.
const (
	EventChatMessage   EventKind = iota + 1 // Message is set
	EventProposal                           // a proposal, now pending (commit it with SelfUpdate)
	EventMemberJoined                       // a commit added members
	EventMemberRemoved                      // a commit removed members
	EventEpochChanged                       // a commit that changed no membership (an update)
	EventRemoved                            // a commit removed us: the channel is over
)

func (k EventKind) String() string {
	switch k {
	case EventChatMessage:
		return "chat_message"
	case EventProposal:
		return "proposal"
	case EventMemberJoined:
		return "member_joined"
	case EventMemberRemoved:
		return "member_removed"
	case EventEpochChanged:
		return "epoch_changed"
	case EventRemoved:
		return "removed"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is the outcome of a received message.
type Event struct {
	Kind      EventKind
	ChannelID string
	Epoch     uint64 // the channel's epoch after the message
	// Sender is the authenticated sender (identity from its MLS credential).
	Sender Member
	// Message is the chat message as stored in the history. Raw is true
	// when the application data was not our ChatMessage encoding (a plain
	// RFC 9420 peer): Body is then the data as is.
	Message *store.Message
	Raw     bool
	// Joined and Removed are what a commit changed.
	Joined, Removed []Member
	// ProposedRemovals are the members a Remove proposal targets.
	ProposedRemovals []Member
}

// Receive processes a message (MLSMessage bytes) for whichever of our
// channels its group id names.
func (m *Manager) Receive(ctx context.Context, message []byte) (*Event, error) {
	gid, err := m.gp.MessageGroupID(message)
	if err != nil {
		return nil, err
	}
	return m.receive(ctx, ChannelID(gid), message)
}

// ReceiveFor is Receive for a message expected on channelID.
func (m *Manager) ReceiveFor(ctx context.Context, channelID string, message []byte) (*Event, error) {
	gid, err := m.gp.MessageGroupID(message)
	if err != nil {
		return nil, err
	}
	if ChannelID(gid) != channelID {
		return nil, fmt.Errorf("%w: for %s, not %s", ErrWrongChannel, ChannelID(gid), channelID)
	}
	return m.receive(ctx, channelID, message)
}

func (m *Manager) receive(ctx context.Context, channelID string, message []byte) (*Event, error) {
	defer m.lock(channelID)()
	d, err := m.Channel(ctx, channelID)
	if err != nil {
		return nil, err
	}
	var ev *Event
	record := func(tx store.Tx, p *Processed) (err error) {
		ev, err = m.record(ctx, tx, channelID, message, p)
		return err
	}
	var p *Processed
	if m.tx != nil {
		p, err = m.tx.ProcessMessageTx(ctx, d.GroupID, message, record)
	} else if p, err = m.gp.ProcessMessage(ctx, d.GroupID, message); err == nil {
		// Not atomic: the state is stored already.
		err = m.recordApart(ctx, p, record)
	}
	if err != nil {
		return nil, fmt.Errorf("channel %s: receive: %w", channelID, m.mapErr(err))
	}
	return m.settle(ctx, d, ev, p)
}

// recordApart runs record for a GroupProvider whose state is not in our
// store: in a transaction of its own when the message goes to the history.
func (m *Manager) recordApart(ctx context.Context, p *Processed, record func(tx store.Tx, p *Processed) error) error {
	if p.Kind != KindApplication {
		return record(nil, p)
	}
	return m.st.Update(ctx, func(tx store.Tx) error { return record(tx, p) })
}

// Received is the outcome of one message of ReceiveBatchFor: its event, or
// why it was refused.
type Received struct {
	Event *Event
	Err   error
}

// ReceiveBatchFor is ReceiveFor for several messages, in order, each with
// the outcome one ReceiveFor after another would give it. With the MLS
// adapter, a run of application messages is stored in one transaction —
// the advanced ratchets with all their history rows — so a batch costs one
// synced write rather than one per message. A refused message (or a
// proposal or commit, which is stored on its own) ends a run; the next
// message starts another.
func (m *Manager) ReceiveBatchFor(ctx context.Context, channelID string, messages [][]byte) []Received {
	return m.receiveBatch(ctx, channelID, messages, false)
}

// ReceiveUntilRefused is ReceiveBatchFor up to the first refused message:
// its outcomes are those of messages[:len(result)], the last one refused
// if any was; the messages after it are not looked at. A caller that
// records something for a refused message (a history note) does so
// before the later messages reach the history, and passes them again.
func (m *Manager) ReceiveUntilRefused(ctx context.Context, channelID string, messages [][]byte) []Received {
	return m.receiveBatch(ctx, channelID, messages, true)
}

func (m *Manager) receiveBatch(ctx context.Context, channelID string, messages [][]byte, stop bool) []Received {
	out := make([]Received, len(messages))
	ok := make([]bool, len(messages))
	for i, msg := range messages {
		gid, err := m.gp.MessageGroupID(msg)
		switch {
		case err != nil:
			out[i].Err = err
		case ChannelID(gid) != channelID:
			out[i].Err = fmt.Errorf("%w: for %s, not %s", ErrWrongChannel, ChannelID(gid), channelID)
		default:
			ok[i] = true
		}
		if stop && !ok[i] {
			messages, out, ok = messages[:i+1], out[:i+1], ok[:i+1]
			break
		}
	}
	if m.tx == nil {
		for i, msg := range messages {
			if ok[i] {
				out[i].Event, out[i].Err = m.receive(ctx, channelID, msg)
			}
			if stop && out[i].Err != nil {
				return out[:i+1]
			}
		}
		return out
	}
	defer m.lock(channelID)()
	d, err := m.Channel(ctx, channelID)
	for i := 0; i < len(messages); {
		if !ok[i] {
			i++
			continue
		}
		if err != nil {
			out[i].Err = err
			if stop {
				return out[:i+1]
			}
			i++
			continue
		}
		j := i + 1
		for j < len(messages) && ok[j] {
			j++
		}
		run := messages[i:j]
		evs := make([]*Event, len(run))
		ps := make([]*Processed, len(run))
		n, perr := m.tx.ProcessMessagesTx(ctx, d.GroupID, run, func(tx store.Tx, k int, p *Processed) (err error) {
			ps[k] = p
			evs[k], err = m.record(ctx, tx, channelID, run[k], p)
			return err
		})
		for k := range n {
			out[i+k].Event, out[i+k].Err = m.settle(ctx, d, evs[k], ps[k])
		}
		if n < len(run) && (perr != nil || n == 0) {
			if perr == nil {
				perr = errors.New("no progress") // cannot happen: a run processes or refuses its first message
			}
			out[i+n].Err = fmt.Errorf("channel %s: receive: %w", channelID, m.mapErr(perr))
			n++
		}
		i += n
		if stop && out[i-1].Err != nil {
			return out[:i]
		}
	}
	return out
}

// record makes the event of a processed message and, for a chat message,
// appends it to the history in tx (tx is used for nothing else, and only
// for application messages).
func (m *Manager) record(ctx context.Context, tx store.Tx, channelID string, message []byte, p *Processed) (*Event, error) {
	ev := &Event{ChannelID: channelID, Epoch: p.Epoch, Sender: p.Sender}
	switch p.Kind {
	case KindApplication:
		ev.Kind = EventChatMessage
		msg := store.Message{ChannelID: channelID, Sender: p.Sender.Identity, ReceivedAt: m.now().UTC()}
		if cm, err := UnmarshalChat(p.ApplicationData); err == nil {
			msg.ID, msg.Timestamp, msg.Body, msg.ReplyTo = cm.ID, cm.Timestamp, cm.Body, cm.ReplyTo
		} else {
			// Not ours: shown as raw text, with an id derived from the
			// ciphertext (unique: a ciphertext is accepted once).
			h := sha256.Sum256(message)
			msg.ID, msg.Timestamp, msg.Body, ev.Raw = "raw-"+hex.EncodeToString(h[:12]), msg.ReceivedAt, p.ApplicationData, true
		}
		if err := appendTx(ctx, tx, &msg); err != nil {
			return nil, err
		}
		ev.Message = &msg
	case KindProposal:
		ev.Kind = EventProposal
	case KindCommit:
		ev.Joined, ev.Removed = p.Joined, p.Removed
		switch {
		case p.SelfRemoved:
			ev.Kind = EventRemoved
		case len(p.Removed) > 0:
			ev.Kind = EventMemberRemoved
		case len(p.Joined) > 0:
			ev.Kind = EventMemberJoined
		default:
			ev.Kind = EventEpochChanged
		}
	default:
		return nil, fmt.Errorf("unknown content kind %d", p.Kind)
	}
	return ev, nil
}

// settle completes the event of a stored message with what needs the
// GroupProvider (channel lock held).
func (m *Manager) settle(ctx context.Context, d *Descriptor, ev *Event, p *Processed) (*Event, error) {
	switch ev.Kind {
	case EventProposal:
		if len(p.ProposedRemovals) > 0 {
			if before, err := m.gp.Members(ctx, d.GroupID); err == nil {
				for _, mem := range before {
					for _, l := range p.ProposedRemovals {
						if mem.LeafIndex == l {
							ev.ProposedRemovals = append(ev.ProposedRemovals, mem)
						}
					}
				}
			}
		}
	case EventRemoved:
		// Our keys for this group are useless now; the history stays.
		if err := m.gp.ForgetGroup(ctx, d.GroupID); err != nil {
			return ev, fmt.Errorf("channel %s: forget after removal: %w", d.ID, err)
		}
	}
	if rl, ok := m.gp.(revocationLearner); ok && len(p.Revocations) > 0 {
		// Each is verified (signed by its user's identity key) before it
		// is kept; one that is not is a member's junk and teaches nothing.
		// The commit is merged already: learning is additive, and a crash
		// before it forgets only this copy of the revocation.
		_ = rl.learnRevocations(ctx, p.Revocations)
	}
	return ev, nil
}

// Leaves lists the channel's leaves (devices) in leaf order, with their
// roles.
func (m *Manager) Leaves(ctx context.Context, channelID string) ([]Member, error) {
	d, err := m.Channel(ctx, channelID)
	if err != nil {
		return nil, err
	}
	defer m.lock(channelID)()
	rs, ms, err := m.channelRoles(ctx, d)
	if err != nil {
		return nil, err
	}
	if rs != nil {
		for i := range ms {
			ms[i].Role = rs.Of(ms[i].Identity)
		}
	}
	return ms, nil
}

// Epoch is the channel's current MLS epoch.
func (m *Manager) Epoch(ctx context.Context, channelID string) (uint64, error) {
	d, err := m.Channel(ctx, channelID)
	if err != nil {
		return 0, err
	}
	e, err := m.gp.Epoch(ctx, d.GroupID)
	return e, m.mapErr(err)
}

// RemoveMember removes every leaf whose credential presents identity, by a
// commit that the remaining members must Receive (the removed ones may
// receive it too, to learn they are out).
func (m *Manager) RemoveMember(ctx context.Context, channelID, identity string) ([]byte, error) {
	if identity == m.Identity() {
		return nil, ErrRemoveSelf
	}
	return m.removeLeaves(ctx, channelID, func(l Member) bool { return l.Identity == identity }, fmt.Sprintf("%q", identity), true)
}

// SelfUpdate commits a fresh leaf key for us and every pending proposal
// (e.g. a member's Leave). The commit goes to every other member.
func (m *Manager) SelfUpdate(ctx context.Context, channelID string) ([]byte, error) {
	defer m.lock(channelID)()
	d, err := m.Channel(ctx, channelID)
	if err != nil {
		return nil, err
	}
	c, err := m.gp.SelfUpdate(ctx, d.GroupID)
	if err != nil {
		return nil, fmt.Errorf("channel %s: update: %w", channelID, m.mapErr(err))
	}
	return c, nil
}

// Leave proposes our own removal (RFC 9420 forbids removing oneself by
// commit: another member commits the proposal, e.g. with SelfUpdate), then
// forgets the channel locally: its group state and its history. The
// proposal goes to every other member.
func (m *Manager) Leave(ctx context.Context, channelID string) ([]byte, error) {
	return m.leave(ctx, channelID, false)
}

// Depart is Leave keeping the channel's descriptor and history (the sync
// engine lists the channel as left).
func (m *Manager) Depart(ctx context.Context, channelID string) ([]byte, error) {
	return m.leave(ctx, channelID, true)
}

func (m *Manager) leave(ctx context.Context, channelID string, keep bool) ([]byte, error) {
	defer m.lock(channelID)()
	d, err := m.Channel(ctx, channelID)
	if err != nil {
		return nil, err
	}
	// The last admin hands the role on first (SetRole), unless alone.
	if rs, ms, err := m.channelRoles(ctx, d); err == nil && rs != nil && rs.Of(m.Identity()) == RoleAdmin {
		var others []Member
		for _, mem := range ms {
			if mem.Identity != m.Identity() {
				others = append(others, mem)
			}
		}
		if len(others) > 0 && adminsAmong(rs, others) == 0 {
			return nil, fmt.Errorf("channel %s: leave: %w: promote another member first", channelID, ErrLastAdmin)
		}
	}
	prop, err := m.gp.ProposeLeave(ctx, d.GroupID)
	if err != nil && !errors.Is(err, provider.ErrGroupNotFound) {
		return nil, fmt.Errorf("channel %s: leave: %w", channelID, err)
	}
	if err == nil {
		if err := m.gp.ForgetGroup(ctx, d.GroupID); err != nil {
			return nil, fmt.Errorf("channel %s: leave: %w", channelID, err)
		}
	}
	if keep {
		return prop, nil
	}
	if err := m.st.Update(ctx, func(tx store.Tx) error { return tx.DeleteChannel(ctx, channelID) }); err != nil {
		return nil, fmt.Errorf("channel %s: leave: %w", channelID, err)
	}
	return prop, nil
}

// History returns up to limit messages of the channel with sequence
// number > after, oldest first (limit <= 0: 100).
func (m *Manager) History(ctx context.Context, channelID string, after uint64, limit int) ([]store.Message, error) {
	if limit <= 0 {
		limit = 100
	}
	if _, err := m.Channel(ctx, channelID); err != nil {
		return nil, err
	}
	return m.st.Messages(ctx, channelID, after, limit)
}
