package relay

import (
	"context"
	"errors"
	"time"
)

// Store errors. Backends wrap them with context; the server maps them to
// HTTP status codes.
var (
	// ErrNotFound: no such group, challenge, token, key package, welcome
	// or link mailbox.
	ErrNotFound = errors.New("relay: not found")
	// ErrExists: the group, key package or link mailbox is already there.
	ErrExists = errors.New("relay: already exists")
	// ErrCommitConflict: a commit for an epoch that is not the group's
	// current epoch at the relay (another commit won it).
	ErrCommitConflict = errors.New("relay: commit conflict")
	// ErrFutureEpoch: an application message or proposal for an epoch the
	// group has not reached at the relay.
	ErrFutureEpoch = errors.New("relay: epoch not reached")
	// ErrStaleEpoch: an application message for an epoch so far behind
	// the group's that its members no longer keep its keys
	// (api.MaxStaleEpochs).
	ErrStaleEpoch = errors.New("relay: epoch too old for the members to read")
	// ErrForbidden: the caller is not (or no longer) a reader of the group,
	// or does not own the link mailbox.
	ErrForbidden = errors.New("relay: forbidden")
	// ErrNotMember: a Welcome's recipient is not a current member of its
	// group at the relay.
	ErrNotMember = errors.New("relay: recipient is not a member of the group")
	// ErrRevoked: the device is revoked by its identity key.
	ErrRevoked = errors.New("relay: device revoked")
	// ErrLimit: a quota (key packages, devices, revocations, link
	// mailboxes or messages) would be exceeded.
	ErrLimit = errors.New("relay: limit exceeded")
	// ErrStale: a GroupInfo older than the stored one, or for an epoch the
	// relay has not reached.
	ErrStale = errors.New("relay: stale or future epoch")
	// ErrQuota: a rate or size quota shared by the relay's processes
	// (claims, identities, event streams, Welcome queues) is used up.
	ErrQuota = errors.New("relay: quota exceeded")
	// ErrUnknownUser: a Welcome for a user the directory does not know.
	ErrUnknownUser = errors.New("relay: unknown user")
	// ErrLocked: another relay process holds the SQLite data directory.
	ErrLocked = errors.New("relay: data directory in use by another process")
	// ErrSchemaTooNew: the database was written by a newer relay.
	ErrSchemaTooNew = errors.New("relay: database schema is newer than this program")
)

// Store is the relay's durable state. Every method is one transaction; a
// method that returns nil has made its change durable. Implementations are
// safe for concurrent use, and several processes may share one PostgreSQL
// Store: all ordering decisions (commit per epoch, sequence numbers,
// one-time key package claims, revocation against login) are taken inside
// the database.
//
// User ids and device ids are their canonical text (identity.UserID,
// identity.DeviceID.String). The server verifies certificates, revocations
// and key packages before it stores them; the Store trusts its caller.
type Store interface {
	// PutChallenge records a login challenge (single use, until expires).
	PutChallenge(ctx context.Context, c Challenge) error
	// TakeChallenge removes and returns the challenge; ErrNotFound if it
	// is unknown, already used, or expired at now.
	TakeChallenge(ctx context.Context, challenge []byte, now time.Time) (Challenge, error)
	// Revoked reports whether the device is revoked.
	Revoked(ctx context.Context, userID, deviceID string) (bool, error)
	// Login registers d in the directory (its user and device on first
	// login; the certificate replaces the stored one unless that one is
	// newer) and stores the session token s, in one transaction:
	// ErrRevoked if the device is revoked, ErrLimit if the user would have
	// more than maxDevices unrevoked devices.
	Login(ctx context.Context, d Device, tokenHash []byte, s Session, maxDevices int, now time.Time) error
	// Session returns the session of an unexpired token (ErrNotFound).
	Session(ctx context.Context, tokenHash []byte, now time.Time) (Session, error)
	// Devices returns the user's unrevoked devices (ordered by device id)
	// and its revocations (encoded, verified when stored).
	Devices(ctx context.Context, userID string) ([]Device, [][]byte, error)
	// Revoke records the revocation of a device, and drops the device's
	// tokens, key packages and link mailboxes, in one transaction. A
	// device revoked already keeps its first revocation (nil error).
	// ErrLimit if the user would have more than maxRevocations.
	Revoke(ctx context.Context, r Revocation, maxRevocations int, now time.Time) error

	// AddKeyPackages stores a device's one-time key packages and
	// optionally replaces its last-resort one, all or nothing: ErrExists
	// if one is already stored, ErrLimit if the device would hold more
	// than max one-time ones, ErrRevoked if the device is revoked.
	AddKeyPackages(ctx context.Context, userID, deviceID string, kps []KeyPackage, lastResort *KeyPackage, max int, now time.Time) error
	// CountKeyPackages returns a device's one-time key packages and
	// whether it has a last-resort one.
	CountKeyPackages(ctx context.Context, userID, deviceID string) (available int, lastResort bool, err error)
	// ClaimKeyPackages returns one key package for each of userID's
	// unrevoked devices that has one: its oldest one-time key package
	// (removed), else its last-resort one. ErrNotFound if no device has
	// any. Concurrent claims never return the same one-time package.
	ClaimKeyPackages(ctx context.Context, userID string) ([]ClaimedKeyPackage, error)

	// CreateGroup registers a group at epoch with creator as its only
	// reader (from the start of the log); ErrExists if it exists.
	CreateGroup(ctx context.Context, groupID []byte, creator string, epoch uint64, now time.Time) error
	// Group returns the group's state and current members.
	Group(ctx context.Context, groupID []byte) (GroupState, error)
	// Access returns userID's window on the group's log: ErrNotFound for
	// an unknown group, ErrForbidden if userID never was a reader.
	Access(ctx context.Context, groupID []byte, userID string) (Access, error)
	// Append adds m to the group's log and returns its sequence number
	// (1, 2, ...: gapless, in commit order of the database). The sender
	// must be a current reader (ErrForbidden). A commit is accepted only if
	// m.Epoch is the group's current epoch; otherwise ErrCommitConflict with
	// the current epoch. Another message for an epoch above the current
	// one is ErrFutureEpoch. An accepted commit advances the epoch and
	// applies m.Added/m.Removed to the readers.
	Append(ctx context.Context, m Message) (seq int64, currentEpoch uint64, err error)
	// AppendAll appends application messages of one group in order, each
	// accepted or refused as Append would (results in the order of ms),
	// sharing transactions where the store batches.
	AppendAll(ctx context.Context, ms []Message) []AppendResult
	// Messages returns the entries with seq > after that userID may see,
	// in order: at most limit of them, and at most maxBytes of message
	// data, except that the first entry is returned whatever its size.
	Messages(ctx context.Context, groupID []byte, userID string, after int64, limit, maxBytes int) ([]Message, error)
	// Cursor returns a device's saved read position (0 if none).
	Cursor(ctx context.Context, groupID []byte, userID, deviceID string) (int64, error)
	// SetCursor saves a device's read position.
	SetCursor(ctx context.Context, groupID []byte, userID, deviceID string, after int64) error
	// PutGroupInfo stores the group's latest GroupInfo: ErrStale if epoch
	// is older than the stored one or newer than the group's epoch.
	PutGroupInfo(ctx context.Context, groupID []byte, groupInfo []byte, epoch uint64) error
	// GroupInfo returns the latest GroupInfo (ErrNotFound if none).
	GroupInfo(ctx context.Context, groupID []byte) (groupInfo []byte, epoch uint64, err error)

	// AddWelcome queues w for each recipient and returns the ids. The
	// sender must be a current reader of w.GroupID (ErrForbidden;
	// ErrNotFound for an unknown group) and so must every recipient
	// (ErrNotMember), checked in the same transaction.
	AddWelcome(ctx context.Context, w Welcome, recipients []string) ([]int64, error)
	// Welcomes returns userID's queued welcomes that deviceID has not
	// acknowledged, oldest first: at most limit, and at most maxBytes of
	// Welcome and ratchet tree data except that the first is returned
	// whatever its size.
	Welcomes(ctx context.Context, userID, deviceID string, limit, maxBytes int) ([]Welcome, error)
	// AckWelcome records that deviceID is done with userID's welcome id
	// (ErrNotFound if there is none); the welcome is deleted once every
	// unrevoked device of the user has acknowledged it.
	AckWelcome(ctx context.Context, userID, deviceID string, id int64) error

	// OpenMailbox opens a link mailbox for its owner until m.Expires:
	// ErrExists if another device holds it (unexpired), ErrLimit if the
	// owner's user would hold more than max open mailboxes. The owner
	// opening its own mailbox again changes nothing.
	OpenMailbox(ctx context.Context, m Mailbox, max int, now time.Time) error
	// Mailbox returns an unexpired mailbox (ErrNotFound).
	Mailbox(ctx context.Context, name string, now time.Time) (Mailbox, error)
	// CloseMailbox deletes the owner's mailbox and its messages
	// (ErrNotFound if the device holds no such mailbox).
	CloseMailbox(ctx context.Context, name, userID, deviceID string) error
	// PostLink appends a message from side ("offer" or "join") to an
	// unexpired mailbox and returns its sequence number: ErrNotFound
	// without one, ErrForbidden if owner is set (the offer side) and does
	// not hold it, ErrLimit if side has posted max messages.
	PostLink(ctx context.Context, name, side string, data []byte, owner *DeviceRef, max int, now time.Time) (int64, error)
	// LinkMessages returns side's messages with seq > after, in order
	// (ErrNotFound for no unexpired mailbox).
	LinkMessages(ctx context.Context, name, side string, after int64, now time.Time) ([]LinkMessage, error)

	// Prune removes expired challenges, tokens, link mailboxes and stream
	// leases.
	Prune(ctx context.Context, now time.Time) error

	// Take counts one use of key in the current window of length window
	// (aligned to multiples of it) and reports whether it is within limit,
	// and when the window ends. Counters live in the database: every
	// process sharing it counts together.
	Take(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (ok bool, windowEnd time.Time, err error)
	// KnownUser reports whether the directory has userID.
	KnownUser(ctx context.Context, userID string) (bool, error)
	// WelcomeQueue returns the number and bytes (Welcome and ratchet tree)
	// of userID's queued Welcomes.
	WelcomeQueue(ctx context.Context, userID string) (count, bytes int64, err error)
	// OpenStream records an open event stream of a token, leased until
	// until: ErrQuota if the token already holds max unexpired ones,
	// ErrNotFound if the token is unknown.
	OpenStream(ctx context.Context, tokenHash []byte, id string, max int, until, now time.Time) error
	// RenewStream extends a stream's lease; CloseStream drops it.
	RenewStream(ctx context.Context, tokenHash []byte, id string, until time.Time) error
	CloseStream(ctx context.Context, tokenHash []byte, id string) error
	// Retain deletes log entries the policy lets go and returns how many.
	Retain(ctx context.Context, p RetentionPolicy, now time.Time) (int64, error)
	// Close releases the store.
	Close() error
}

// RetentionPolicy bounds the group logs. An entry older than MaxAge is
// deleted (a device away longer must rejoin from a new Welcome); an entry
// not among its group's newest MaxEntries is deleted once every device
// cursor saved for the group is past it. Zero disables a bound.
type RetentionPolicy struct {
	MaxAge     time.Duration
	MaxEntries int64
}

// Notifier is implemented by stores shared between processes: Listen calls
// fn for every event published by any process (including this one) until
// ctx ends, and with a zero Event whenever events may have been lost (a
// reconnect), so that waiters re-check.
type Notifier interface {
	Listen(ctx context.Context, fn func(Event)) error
}

// Event is a wake-up: a new log entry (GroupID set, Seq), a new welcome
// (Recipient set, WelcomeID), a new link message (Mailbox set, Seq), or a
// revoked device (Revoked set), whose cached sessions must go.
type Event struct {
	GroupID   []byte
	Seq       int64
	Recipient string
	WelcomeID int64
	Mailbox   string
	Revoked   *DeviceRef
}

// DeviceRef names one device of one user.
type DeviceRef struct {
	UserID, DeviceID string
}

// Challenge is an issued login challenge, for the device certificate it
// was issued to.
type Challenge struct {
	Challenge   []byte
	Certificate []byte
	Expires     time.Time
}

// Device is a device in the directory: the certificate it last logged in
// with (identity.Certificate encoding), verified by the server.
type Device struct {
	UserID       string
	DeviceID     string
	IdentityKey  []byte
	Certificate  []byte
	SignatureKey []byte
	NotBefore    uint64 // the certificate's, to keep the newest one
}

// Session is what a token stands for: one device of one user, with the
// signature key it proved at login.
type Session struct {
	UserID       string
	DeviceID     string
	SignatureKey []byte
	Expires      time.Time
}

// Revocation is a verified device revocation (identity.Revocation
// encoding in Data).
type Revocation struct {
	UserID      string
	DeviceID    string
	IdentityKey []byte
	Data        []byte
}

// KeyPackage is a published key package: its KeyPackageRef and its
// MLSMessage encoding.
type KeyPackage struct {
	Ref  []byte
	Data []byte
}

// ClaimedKeyPackage is one device's key package handed out by a claim.
type ClaimedKeyPackage struct {
	DeviceID   string
	Data       []byte
	LastResort bool
}

// Message is one entry of a group's log.
type Message struct {
	GroupID      []byte
	Seq          int64
	Kind         string // "commit", "proposal" or "application"
	Epoch        uint64
	Sender       string
	SenderDevice string
	Data         []byte // the MLSMessage
	ReceivedAt   time.Time
	// Added and Removed (commits only) are the users the relay derived
	// from the verified commit (verify.go); not returned by Messages.
	Added, Removed []string
}

// GroupState is what the relay knows of a group.
type GroupState struct {
	GroupID []byte
	Epoch   uint64
	LastSeq int64
	Members []string
}

// Access is a reader's window on a log: entries with FromSeq <= seq, and
// seq <= ToSeq when Removed.
type Access struct {
	FromSeq int64
	ToSeq   int64
	Removed bool
}

// Welcome is a queued Welcome.
type Welcome struct {
	ID           int64
	Recipient    string
	Sender       string
	SenderDevice string
	GroupID      []byte
	Welcome      []byte
	RatchetTree  []byte
	CreatedAt    time.Time
}

// Mailbox is an open device-linking mailbox.
type Mailbox struct {
	Name     string
	UserID   string
	DeviceID string
	Expires  time.Time
}

// LinkMessage is one message in a link mailbox.
type LinkMessage struct {
	Seq  int64
	Side string
	Data []byte
}

// AppendResult is one entry's outcome of Store.AppendAll.
type AppendResult struct {
	Seq          int64
	CurrentEpoch uint64
	Err          error
}
