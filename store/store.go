// Package store defines the durable Store behind one identity's Provider.
//
// The MLS engine knows nothing of storage: it hands its caller opaque state
// blobs, and the caller persists them here. A Store therefore holds bytes,
// with typed tables only where a query needs them (key package expiry, epoch
// numbers, message sequence numbers).
//
// There is one Store per identity, opened once at start-up from the identity's
// data directory and passed explicitly: every key a member will need later is
// written here by the operation that creates it and read from here by the
// operation that needs it (see shared/DESIGN.md, "The one invariant").
//
// Reads are methods of Store. Writes happen only inside Update, which runs a
// function in one transaction and commits it only if the function returns
// nil:
//
//	err := s.Update(ctx, func(tx store.Tx) error {
//		if err := tx.PutGroup(ctx, g); err != nil {
//			return err
//		}
//		return tx.ConsumeKeyPackage(ctx, ref) // join succeeded: both or neither
//	})
//
// Backends: store/memory (tests) and store/sqlite (the embedded default,
// which seals every private value with AES-256-GCM before it reaches disk).
// store/storetest holds the conformance suite both backends pass.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Errors. Every error a Store returns wraps one of these; test with errors.Is.
// Each not-found error also wraps ErrNotFound.
var (
	ErrNotFound            = errors.New("store: not found")
	ErrIdentityNotFound    = fmt.Errorf("store: identity %w", ErrNotFound)
	ErrKeyPackageNotFound  = fmt.Errorf("store: key package %w", ErrNotFound)
	ErrGroupNotFound       = fmt.Errorf("store: group %w", ErrNotFound)
	ErrGroupBlobNotFound   = fmt.Errorf("store: group blob %w", ErrNotFound)
	ErrEpochSecretNotFound = fmt.Errorf("store: epoch secret %w", ErrNotFound)
	ErrPSKNotFound         = fmt.Errorf("store: psk %w", ErrNotFound)
	ErrChannelNotFound     = fmt.Errorf("store: channel %w", ErrNotFound)

	// ErrExists: a write that must not overwrite found an existing row
	// (a second identity, a key package ref already stored, a message id
	// already in the channel).
	ErrExists = errors.New("store: already exists")
	// ErrInvalid: an argument is malformed (empty id, zero expiry, bad JSON…).
	ErrInvalid = errors.New("store: invalid argument")
	// ErrEpochRegression: PutGroup with an epoch lower than the stored one.
	ErrEpochRegression = errors.New("store: group epoch would go backwards")
	// ErrWrongKey: the passphrase or key file does not open this database.
	ErrWrongKey = errors.New("store: wrong key for this database")
	// ErrInsecureKeyFile: the key file is readable by group or others.
	ErrInsecureKeyFile = errors.New("store: key file permissions too open")
	// ErrCorrupt: a sealed value failed authentication under the right key
	// (tampered with, truncated, or moved to another row).
	ErrCorrupt = errors.New("store: corrupt sealed value")
	// ErrSchemaTooNew: the database was written by a newer version.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this program")
	// ErrLocked: another open Store (in this process or another) holds the
	// database. Two Stores over one identity could reuse ratchet keys.
	ErrLocked = errors.New("store: database is in use by another Store")
	// ErrClosed: the Store has been closed.
	ErrClosed = errors.New("store: closed")
	// ErrTxDone: a Tx was used after its Update returned.
	ErrTxDone = errors.New("store: transaction already finished")
)

// Store is the durable state of one identity. It is safe for concurrent
// use. Read methods see the last committed state; they never see a
// transaction in progress.
type Store interface {
	Reader

	// Update runs fn in one transaction. If fn returns nil the transaction
	// is committed (durably, for persistent backends) before Update
	// returns; otherwise nothing fn wrote is kept and Update returns fn's
	// error. Updates are serialised: one runs at a time.
	//
	// The Tx is valid only inside fn and only on fn's goroutine. Inside fn,
	// use tx for reads that must see fn's own writes; never call s.Update
	// from inside fn (it would wait for itself).
	Update(ctx context.Context, fn func(tx Tx) error) error

	// Close releases the Store. Calls after Close return ErrClosed.
	Close() error
}

// Tx is a transaction: the reads and the writes.
type Tx interface {
	Reader
	Writer
}

// Reader holds the read methods, on both Store and Tx. Every returned slice
// is the caller's to keep and modify.
type Reader interface {
	// Identity returns the identity, or ErrIdentityNotFound.
	Identity(ctx context.Context) (Identity, error)
	// Revocations returns the device revocations this identity knows of,
	// ordered by identity key and device id.
	Revocations(ctx context.Context) ([]Revocation, error)

	// KeyPackage returns the key package with this ref, expired or not, or
	// ErrKeyPackageNotFound.
	KeyPackage(ctx context.Context, ref []byte) (KeyPackage, error)
	// CountKeyPackages counts the key packages still valid at now
	// (NotAfter >= now), one-time and last-resort separately.
	CountKeyPackages(ctx context.Context, now time.Time) (KeyPackageCount, error)

	// Group returns the group, or ErrGroupNotFound.
	Group(ctx context.Context, groupID []byte) (Group, error)
	// Groups lists every group (without state), ordered by group id.
	Groups(ctx context.Context) ([]GroupSummary, error)
	// GroupBlob returns one per-group blob, or ErrGroupBlobNotFound.
	GroupBlob(ctx context.Context, groupID, key []byte) ([]byte, error)
	// GroupBlobs returns all the group's blobs ordered by key (empty if the
	// group has none or does not exist).
	GroupBlobs(ctx context.Context, groupID []byte) ([]Blob, error)
	// EpochSecret returns the retained secret blob of a past epoch, or
	// ErrEpochSecretNotFound.
	EpochSecret(ctx context.Context, groupID []byte, epoch uint64) ([]byte, error)

	// ExternalPSK returns the external PSK with this id, or ErrPSKNotFound.
	ExternalPSK(ctx context.Context, pskID []byte) ([]byte, error)
	// ResumptionPSK returns the resumption PSK of (group, epoch), or
	// ErrPSKNotFound.
	ResumptionPSK(ctx context.Context, groupID []byte, epoch uint64) ([]byte, error)

	// Channel returns the channel, or ErrChannelNotFound.
	Channel(ctx context.Context, channelID string) (Channel, error)
	// Channels lists every channel ordered by id.
	Channels(ctx context.Context) ([]Channel, error)
	// Messages returns up to limit messages of the channel with Seq > after,
	// oldest first (empty if there are none, or no such channel). Use the
	// last Seq returned as the next after.
	Messages(ctx context.Context, channelID string, after uint64, limit int) ([]Message, error)
	// MessagesBefore returns the limit newest messages with Seq < before
	// (before == 0: no bound, i.e. the latest messages), oldest first.
	MessagesBefore(ctx context.Context, channelID string, before uint64, limit int) ([]Message, error)
}

// Writer holds the write methods, only on Tx. A zero CreatedAt, UpdatedAt or
// ReceivedAt is set to the time of the write. Times come back in UTC with
// nanosecond precision.
type Writer interface {
	// PutIdentity stores the identity; ErrExists if there already is one
	// (an identity's signature key is never silently replaced).
	PutIdentity(ctx context.Context, id Identity) error
	// UpdateIdentity replaces the stored identity's user id, credential,
	// certificate, private identity and display name (a certificate
	// installed by device linking or renewed, a new display name).
	// ErrIdentityNotFound if there is none; ErrInvalid if id's signature
	// key, cipher suite or device id are not the stored ones, which never
	// change.
	UpdateIdentity(ctx context.Context, id Identity) error
	// PutRevocation stores a device revocation. A second one for the same
	// (identity key, device id) is ignored: a revocation is permanent.
	PutRevocation(ctx context.Context, r Revocation) error

	// PutKeyPackages stores key packages; ErrExists if a ref is already
	// stored (the whole call then stores none, like any failed Update).
	PutKeyPackages(ctx context.Context, kps ...KeyPackage) error
	// ConsumeKeyPackage marks the key package used by a join: it is
	// deleted, unless it is a last-resort one, which stays.
	// ErrKeyPackageNotFound if there is none.
	ConsumeKeyPackage(ctx context.Context, ref []byte) error
	// PruneKeyPackages deletes the key packages expired at now
	// (NotAfter < now), last-resort ones included, and returns how many.
	PruneKeyPackages(ctx context.Context, now time.Time) (int, error)
	// TrimKeyPackages keeps the newest keepOneTime one-time and the newest
	// keepLastResort last-resort key packages (by CreatedAt) and deletes
	// the others, returning how many: packages handed out by a relay and
	// never used must not pile up.
	TrimKeyPackages(ctx context.Context, keepOneTime, keepLastResort int) (int, error)

	// PutGroup creates or replaces the group's epoch state.
	// ErrEpochRegression if g.Epoch is lower than the stored epoch.
	PutGroup(ctx context.Context, g Group) error
	// DeleteGroup deletes the group with its blobs and epoch secrets
	// (resumption PSKs stay). ErrGroupNotFound if there is none.
	DeleteGroup(ctx context.Context, groupID []byte) error
	// PutGroupBlob creates or replaces one per-group blob (a ratchet or
	// secret-tree delta). ErrGroupNotFound if the group does not exist.
	PutGroupBlob(ctx context.Context, groupID, key, value []byte) error
	// DeleteGroupBlob deletes one blob, or returns ErrGroupBlobNotFound.
	DeleteGroupBlob(ctx context.Context, groupID, key []byte) error
	// PutEpochSecret creates or replaces a retained past-epoch secret blob.
	// ErrGroupNotFound if the group does not exist.
	PutEpochSecret(ctx context.Context, groupID []byte, epoch uint64, secret []byte) error
	// PruneEpochSecrets deletes the group's epoch secrets with epoch <
	// before and returns how many.
	PruneEpochSecrets(ctx context.Context, groupID []byte, before uint64) (int, error)

	// PutExternalPSK creates or replaces an external PSK.
	PutExternalPSK(ctx context.Context, pskID, secret []byte) error
	// DeleteExternalPSK deletes an external PSK, or returns ErrPSKNotFound.
	DeleteExternalPSK(ctx context.Context, pskID []byte) error
	// PutResumptionPSK creates or replaces the resumption PSK of (group,
	// epoch). The group need not exist (resumption outlives the group).
	PutResumptionPSK(ctx context.Context, groupID []byte, epoch uint64, secret []byte) error
	// PruneResumptionPSKs deletes the group's resumption PSKs with epoch <
	// before and returns how many.
	PruneResumptionPSKs(ctx context.Context, groupID []byte, before uint64) (int, error)

	// PutChannel creates or replaces a channel descriptor.
	PutChannel(ctx context.Context, c Channel) error
	// DeleteChannel deletes the channel and its history, or returns
	// ErrChannelNotFound.
	DeleteChannel(ctx context.Context, channelID string) error
	// AppendMessage adds m to its channel's history and returns the
	// sequence number it was given (1, 2, 3… per channel; m.Seq is
	// ignored). ErrChannelNotFound if the channel does not exist; ErrExists
	// if the channel already has a message with m.ID.
	AppendMessage(ctx context.Context, m Message) (uint64, error)
}

// Identity is the one identity of a Store: this device's MLS signature
// key and device id and, once the device belongs to a user, its user id,
// credential and device certificate. SignaturePrivateKey and
// PrivateIdentity are sealed at rest.
type Identity struct {
	SignaturePrivateKey []byte
	SignaturePublicKey  []byte
	CipherSuite         uint16
	// DeviceID is this device's id (16 bytes). A store written before
	// device certificates has none.
	DeviceID []byte
	// UserID is the credential's identity: the user id ("" while a new
	// device waits for its certificate from another device of its user).
	UserID      string
	Credential  []byte // the encoded MLS Credential (empty while waiting)
	Certificate []byte // the encoded device certificate (empty while waiting)
	// PrivateIdentity is the user's encoded identity key pair, on the
	// device that holds it; empty on a linked device.
	PrivateIdentity []byte
	// DisplayName is what this device calls its user, shown to others and
	// never trusted.
	DisplayName string
	CreatedAt   time.Time
}

// Revocation is a device revocation, signed by the user's identity key
// (public, not sealed). The Store does not verify it; the provider does
// before storing it.
type Revocation struct {
	IdentityKey []byte // 32 bytes
	DeviceID    []byte // 16 bytes
	Revocation  []byte // the encoded revocation
	CreatedAt   time.Time
}

// KeyPackage is a generated KeyPackage with its private keys. InitPrivateKey
// and LeafPrivateKey are sealed at rest.
type KeyPackage struct {
	Ref            []byte // KeyPackageRef (RFC 9420 §5.2)
	KeyPackage     []byte // the public, encoded KeyPackage
	InitPrivateKey []byte // HPKE private key of init_key
	LeafPrivateKey []byte // HPKE private key of leaf_node.encryption_key
	NotAfter       time.Time
	LastResort     bool
	CreatedAt      time.Time
}

// KeyPackageCount is the result of CountKeyPackages.
type KeyPackageCount struct {
	OneTime    int // unexpired, consumed by a join
	LastResort int // unexpired, kept after a join
}

// Group is a group's epoch state as the engine hands it out. State is sealed
// at rest.
type Group struct {
	ID        []byte
	Epoch     uint64
	State     []byte
	UpdatedAt time.Time
}

// GroupSummary is a Group without its state, as listed by Groups.
type GroupSummary struct {
	ID        []byte
	Epoch     uint64
	UpdatedAt time.Time
}

// Blob is one per-group key/value blob. Value is sealed at rest.
type Blob struct {
	Key   []byte
	Value []byte
}

// Channel is a channel descriptor.
type Channel struct {
	ID        string
	GroupID   []byte
	Name      string
	Public    bool
	CreatedAt time.Time
	Extra     json.RawMessage // opaque JSON object or nil
}

// Message is one entry of a channel's history. Body is sealed at rest.
type Message struct {
	ChannelID  string
	Seq        uint64 // assigned by AppendMessage
	ID         string // message id, unique in the channel
	Sender     string
	Timestamp  time.Time // the sender's time
	Body       []byte
	ReplyTo    string // message id, or ""
	ReceivedAt time.Time
}

// MaxEpoch is the largest epoch (and message sequence number) a Store holds.
const MaxEpoch = 1<<63 - 1

// Validate reports whether id can be stored (ErrInvalid otherwise). Backends
// call it; callers need not.
func (id Identity) Validate() error {
	switch {
	case len(id.SignaturePrivateKey) == 0:
		return invalid("identity: empty signature private key")
	case len(id.SignaturePublicKey) == 0:
		return invalid("identity: empty signature public key")
	case id.CipherSuite == 0:
		return invalid("identity: cipher suite 0")
	case len(id.DeviceID) != DeviceIDLen:
		return invalid("identity: device id is not 16 bytes")
	case (id.UserID == "") != (len(id.Credential) == 0) || (id.UserID == "") != (len(id.Certificate) == 0):
		return invalid("identity: user id, credential and certificate go together")
	case len(id.PrivateIdentity) > 0 && id.UserID == "":
		return invalid("identity: a private identity without a user id")
	}
	return nil
}

// DeviceIDLen is the length of a device id.
const DeviceIDLen = 16

// Validate reports whether r can be stored (ErrInvalid otherwise).
func (r Revocation) Validate() error {
	switch {
	case len(r.IdentityKey) != 32:
		return invalid("revocation: identity key is not 32 bytes")
	case len(r.DeviceID) != DeviceIDLen:
		return invalid("revocation: device id is not 16 bytes")
	case len(r.Revocation) == 0:
		return invalid("revocation: empty")
	}
	return nil
}

// Validate reports whether kp can be stored (ErrInvalid otherwise).
func (kp KeyPackage) Validate() error {
	switch {
	case len(kp.Ref) == 0:
		return invalid("key package: empty ref")
	case len(kp.KeyPackage) == 0:
		return invalid("key package: empty key package")
	case len(kp.InitPrivateKey) == 0:
		return invalid("key package: empty init private key")
	case len(kp.LeafPrivateKey) == 0:
		return invalid("key package: empty leaf private key")
	case kp.NotAfter.IsZero():
		return invalid("key package: zero not_after")
	}
	return nil
}

// Validate reports whether g can be stored (ErrInvalid otherwise).
func (g Group) Validate() error {
	switch {
	case len(g.ID) == 0:
		return invalid("group: empty id")
	case len(g.State) == 0:
		return invalid("group: empty state")
	case g.Epoch > MaxEpoch:
		return invalid("group: epoch too large")
	}
	return nil
}

// Validate reports whether c can be stored (ErrInvalid otherwise).
func (c Channel) Validate() error {
	switch {
	case c.ID == "":
		return invalid("channel: empty id")
	case len(c.GroupID) == 0:
		return invalid("channel: empty group id")
	case len(c.Extra) > 0 && !json.Valid(c.Extra):
		return invalid("channel: extra is not valid JSON")
	}
	return nil
}

// Validate reports whether m can be appended (ErrInvalid otherwise).
func (m Message) Validate() error {
	switch {
	case m.ChannelID == "":
		return invalid("message: empty channel id")
	case m.ID == "":
		return invalid("message: empty message id")
	}
	return nil
}

func invalid(what string) error { return fmt.Errorf("%w: %s", ErrInvalid, what) }

// Records is an optional capability of a Store: small records of the sync
// engine (package client) — outbox entries, contacts, pending invitations —
// kept apart from the MLS state, each write durable on return. Kind groups
// records; id is unique within a kind. The SQLite store implements it.
type Records interface {
	// PutRecord stores or replaces the record kind/id.
	PutRecord(ctx context.Context, kind, id string, value []byte) error
	// DeleteRecord deletes it (absent: nil).
	DeleteRecord(ctx context.Context, kind, id string) error
	// Records lists the records of kind in the order first stored.
	Records(ctx context.Context, kind string) ([]Record, error)
}

// RecordsTx is an optional capability of a Tx of a Store that implements
// Records: records written in the transaction, durable with it (the sync
// engine stores a message's outbox entry with its history row and ratchet,
// and deletes the entries of a posted batch in one commit).
type RecordsTx interface {
	PutRecord(ctx context.Context, kind, id string, value []byte) error
	DeleteRecord(ctx context.Context, kind, id string) error
}

// Record is one record of Records.
type Record struct {
	Kind, ID string
	Seq      uint64
	Value    []byte
}
