package relay

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/spacepanda/spacepanda/relay/api"
)

// The store of groups' public state (verify.go): what the relay verifies
// handshakes against, updated in the transaction that orders them.

// ErrStateChanged: the group's public state changed between the relay
// reading it and ordering a handshake verified against it (another
// handshake was ordered meanwhile); the caller verifies again.
var ErrStateChanged = errors.New("relay: the group's public state changed")

// PublicState is a group's verified public state at the relay.
type PublicState struct {
	Epoch uint64
	// Version changes with every verified handshake (compare-and-swap).
	Version int64
	// Data is the mls.PublicGroup encoding (MarshalBinary).
	Data []byte
	// TreeHash and ConfirmedTranscriptHash are the epoch's.
	TreeHash, ConfirmedTranscriptHash []byte
}

// VerifiedGroup is a group registered from a verified GroupInfo.
type VerifiedGroup struct {
	GroupID []byte
	Creator string
	// Members are the user ids of the tree's leaves: the first readers.
	Members   []string
	State     PublicState
	GroupInfo []byte
}

// PublicStateStore keeps groups' public state; both SQL backends implement
// it.
type PublicStateStore interface {
	// CreateVerifiedGroup registers a group with its public state and
	// GroupInfo, its members readers from the start (ErrExists; ErrLimit
	// beyond api.MaxGroupMembers).
	CreateVerifiedGroup(ctx context.Context, g VerifiedGroup, now time.Time) error
	// PublicState returns the group's current public state (ErrNotFound
	// for an unknown group or one without public state).
	PublicState(ctx context.Context, groupID []byte) (PublicState, error)
	// EpochHashes returns the tree hash and confirmed transcript hash of
	// one epoch of the group (ErrNotFound).
	EpochHashes(ctx context.Context, groupID []byte, epoch uint64) (PublicState, error)
	// AppendVerified is Append for a verified handshake: in the same
	// transaction the public state must still be at version base
	// (ErrStateChanged) and becomes next; for a commit the new epoch's
	// hashes are recorded and groupInfo becomes the group's GroupInfo.
	AppendVerified(ctx context.Context, m Message, base int64, next PublicState, groupInfo []byte) (seq int64, current uint64, err error)
}

var _ PublicStateStore = (*sqlStore)(nil)

func (s *sqlStore) CreateVerifiedGroup(ctx context.Context, g VerifiedGroup, now time.Time) error {
	st := g.State
	if st.Epoch > math.MaxInt64 {
		return fmt.Errorf("%w: epoch", ErrStale)
	}
	if len(g.Members) > api.MaxGroupMembers {
		return fmt.Errorf("%w: %d members (at most %d)", ErrLimit, len(g.Members), api.MaxGroupMembers)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO groups (group_id, epoch, last_seq, creator, created_at, group_info, group_info_epoch, public_state, state_version)
			VALUES (?, ?, 0, ?, ?, ?, ?, ?, 0) ON CONFLICT (group_id) DO NOTHING`),
			g.GroupID, int64(st.Epoch), g.Creator, nanos(now), g.GroupInfo, int64(st.Epoch), st.Data)
		if err != nil {
			return s.dbErr("create group", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return s.dbErr("create group", err)
		} else if n == 0 {
			return fmt.Errorf("%w: group", ErrExists)
		}
		if err := s.putEpochHashes(ctx, tx, g.GroupID, st); err != nil {
			return err
		}
		for _, u := range g.Members {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO readers (group_id, user_id, from_seq, to_seq) VALUES (?, ?, 1, NULL)`), g.GroupID, u); err != nil {
				return s.dbErr("create group", err)
			}
		}
		return nil
	})
}

func (s *sqlStore) putEpochHashes(ctx context.Context, tx *sql.Tx, gid []byte, st PublicState) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO group_epochs (group_id, epoch, tree_hash, confirmed_transcript_hash) VALUES (?, ?, ?, ?)`),
		gid, int64(st.Epoch), st.TreeHash, st.ConfirmedTranscriptHash)
	if err != nil {
		return s.dbErr("epoch hashes", err)
	}
	return nil
}

func (s *sqlStore) PublicState(ctx context.Context, groupID []byte) (PublicState, error) {
	var st PublicState
	var epoch int64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT g.epoch, g.state_version, g.public_state, e.tree_hash, e.confirmed_transcript_hash
		FROM groups g JOIN group_epochs e ON e.group_id = g.group_id AND e.epoch = g.epoch
		WHERE g.group_id = ? AND g.public_state IS NOT NULL`), groupID).
		Scan(&epoch, &st.Version, &st.Data, &st.TreeHash, &st.ConfirmedTranscriptHash)
	if errors.Is(err, sql.ErrNoRows) {
		return PublicState{}, fmt.Errorf("%w: public state", ErrNotFound)
	}
	if err != nil {
		return PublicState{}, s.dbErr("public state", err)
	}
	st.Epoch = uint64(epoch)
	return st, nil
}

func (s *sqlStore) EpochHashes(ctx context.Context, groupID []byte, epoch uint64) (PublicState, error) {
	st := PublicState{Epoch: epoch}
	if epoch > math.MaxInt64 {
		return st, fmt.Errorf("%w: epoch", ErrNotFound)
	}
	err := s.r.QueryRowContext(ctx, s.q(`SELECT tree_hash, confirmed_transcript_hash FROM group_epochs WHERE group_id = ? AND epoch = ?`),
		groupID, int64(epoch)).Scan(&st.TreeHash, &st.ConfirmedTranscriptHash)
	if errors.Is(err, sql.ErrNoRows) {
		return st, fmt.Errorf("%w: epoch %d", ErrNotFound, epoch)
	}
	if err != nil {
		return st, s.dbErr("epoch hashes", err)
	}
	return st, nil
}

func (s *sqlStore) AppendVerified(ctx context.Context, m Message, base int64, next PublicState, groupInfo []byte) (int64, uint64, error) {
	return s.appendWith(ctx, m, func(tx *sql.Tx, seq int64) error {
		var ver int64
		// The group row is locked by the append.
		if err := tx.QueryRowContext(ctx, s.q(`SELECT state_version FROM groups WHERE group_id = ?`), m.GroupID).Scan(&ver); err != nil {
			return s.dbErr("public state", err)
		}
		if ver != base {
			return fmt.Errorf("%w: version %d, verified against %d", ErrStateChanged, ver, base)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE groups SET public_state = ?, state_version = ? WHERE group_id = ?`), next.Data, ver+1, m.GroupID); err != nil {
			return s.dbErr("public state", err)
		}
		if m.Kind != api.KindCommit {
			return nil
		}
		if err := s.putEpochHashes(ctx, tx, m.GroupID, next); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE groups SET group_info = ?, group_info_epoch = ? WHERE group_id = ?`),
			groupInfo, int64(next.Epoch), m.GroupID); err != nil {
			return s.dbErr("group info", err)
		}
		return nil
	})
}
