package relay

import (
	"context"
	"errors"
	"time"
)

// Store errors. Backends wrap them with context; the server maps them to
// HTTP status codes.
var (
	// ErrNotFound: no such group, challenge, token, key package or welcome.
	ErrNotFound = errors.New("relay: not found")
	// ErrExists: the group or key package is already there.
	ErrExists = errors.New("relay: already exists")
	// ErrCommitConflict: a commit for an epoch that is not the group's
	// current epoch at the relay (another commit won it).
	ErrCommitConflict = errors.New("relay: commit conflict")
	// ErrForbidden: the caller is not (or no longer) a reader of the group.
	ErrForbidden = errors.New("relay: forbidden")
	// ErrKeyMismatch: the user id is bound to another signature key.
	ErrKeyMismatch = errors.New("relay: user id bound to another signature key")
	// ErrLimit: a per-user quota (key packages) would be exceeded.
	ErrLimit = errors.New("relay: limit exceeded")
	// ErrStale: a GroupInfo older than the stored one, or for an epoch the
	// relay has not reached.
	ErrStale = errors.New("relay: stale or future epoch")
	// ErrLocked: another relay process holds the SQLite data directory.
	ErrLocked = errors.New("relay: data directory in use by another process")
	// ErrSchemaTooNew: the database was written by a newer relay.
	ErrSchemaTooNew = errors.New("relay: database schema is newer than this program")
)

// Store is the relay's durable state. Every method is one transaction; a
// method that returns nil has made its change durable. Implementations are
// safe for concurrent use, and several processes may share one PostgreSQL
// Store: all ordering decisions (commit per epoch, sequence numbers,
// one-time key package claims) are taken inside the database.
type Store interface {
	// PutChallenge records a login challenge (single use, until expires).
	PutChallenge(ctx context.Context, c Challenge) error
	// TakeChallenge removes and returns the challenge; ErrNotFound if it
	// is unknown, already used, or expired at now.
	TakeChallenge(ctx context.Context, challenge []byte, now time.Time) (Challenge, error)
	// IdentityKey returns the signature key bound to userID (ErrNotFound).
	IdentityKey(ctx context.Context, userID string) ([]byte, error)
	// BindIdentity binds userID to key on first use; ErrKeyMismatch if it
	// is bound to another key.
	BindIdentity(ctx context.Context, userID string, key []byte, suite uint16, now time.Time) error
	// PutToken stores a session token (by its hash).
	PutToken(ctx context.Context, tokenHash []byte, userID string, expires time.Time) error
	// TokenUser returns the user of an unexpired token (ErrNotFound).
	TokenUser(ctx context.Context, tokenHash []byte, now time.Time) (userID string, expires time.Time, err error)

	// AddKeyPackages stores one-time key packages and optionally replaces
	// the last-resort one, all or nothing: ErrExists if one is already
	// stored, ErrLimit if userID would hold more than max one-time ones.
	AddKeyPackages(ctx context.Context, userID string, kps []KeyPackage, lastResort *KeyPackage, max int, now time.Time) error
	// CountKeyPackages returns userID's one-time key packages and whether
	// it has a last-resort one.
	CountKeyPackages(ctx context.Context, userID string) (available int, lastResort bool, err error)
	// ClaimKeyPackage removes and returns userID's oldest one-time key
	// package, or returns its last-resort one (lastResort true) when none
	// is left; ErrNotFound if neither exists. Concurrent claims never
	// return the same one-time package.
	ClaimKeyPackage(ctx context.Context, userID string) (data []byte, lastResort bool, err error)

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
	// the current epoch. An accepted commit advances the epoch and applies
	// m.Added/m.Removed to the readers.
	Append(ctx context.Context, m Message) (seq int64, currentEpoch uint64, err error)
	// Messages returns up to limit entries with seq > after that userID
	// may see, in order.
	Messages(ctx context.Context, groupID []byte, userID string, after int64, limit int) ([]Message, error)
	// Cursor returns userID's saved read position (0 if none).
	Cursor(ctx context.Context, groupID []byte, userID string) (int64, error)
	// SetCursor saves userID's read position.
	SetCursor(ctx context.Context, groupID []byte, userID string, after int64) error
	// PutGroupInfo stores the group's latest GroupInfo: ErrStale if epoch
	// is older than the stored one or newer than the group's epoch.
	PutGroupInfo(ctx context.Context, groupID []byte, groupInfo []byte, epoch uint64) error
	// GroupInfo returns the latest GroupInfo (ErrNotFound if none).
	GroupInfo(ctx context.Context, groupID []byte) (groupInfo []byte, epoch uint64, err error)

	// AddWelcome queues w for each recipient and returns the ids.
	AddWelcome(ctx context.Context, w Welcome, recipients []string) ([]int64, error)
	// Welcomes returns userID's queued welcomes, oldest first.
	Welcomes(ctx context.Context, userID string, limit int) ([]Welcome, error)
	// DeleteWelcome removes userID's welcome id (ErrNotFound).
	DeleteWelcome(ctx context.Context, userID string, id int64) error

	// Prune removes expired challenges and tokens.
	Prune(ctx context.Context, now time.Time) error
	// Close releases the store.
	Close() error
}

// Notifier is implemented by stores shared between processes: Listen calls
// fn for every event published by any process (including this one) until
// ctx ends, and with a zero Event whenever events may have been lost (a
// reconnect), so that waiters re-check.
type Notifier interface {
	Listen(ctx context.Context, fn func(Event)) error
}

// Event is a wake-up: a new log entry (GroupID set, Seq) or a new welcome
// (Recipient set, WelcomeID).
type Event struct {
	GroupID   []byte
	Seq       int64
	Recipient string
	WelcomeID int64
}

// Challenge is an issued login challenge.
type Challenge struct {
	Challenge    []byte
	UserID       string
	SignatureKey []byte
	Suite        uint16
	Expires      time.Time
}

// KeyPackage is a published key package: its KeyPackageRef and its
// MLSMessage encoding.
type KeyPackage struct {
	Ref  []byte
	Data []byte
}

// Message is one entry of a group's log.
type Message struct {
	GroupID    []byte
	Seq        int64
	Kind       string // "commit", "proposal" or "application"
	Epoch      uint64
	Sender     string
	Data       []byte // the MLSMessage
	ReceivedAt time.Time
	// Added and Removed (commits only) are the committer's statement of
	// membership changes; not returned by Messages.
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
	ID          int64
	Recipient   string
	Sender      string
	GroupID     []byte
	Welcome     []byte
	RatchetTree []byte
	Invite      []byte
	CreatedAt   time.Time
}
