package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/relay/api"
)

// The relay verifies what it orders (issue 13.3, RFC 9750 §5): each
// group's public state (mls.PublicGroup, no secrets) is kept with its log.
// A group is registered from a GroupInfo the relay verifies; a commit or
// proposal must be a PublicMessage, and is verified against the state and
// applied to it in the transaction that orders it. Who may read the log
// follows from the tree: the relay derives the users a commit adds and
// removes itself.
//
// What it cannot verify (mls.PublicGroup): the membership tag, the
// confirmation tag, that members can decrypt the path secrets, the PSKs
// and the application's rules (roles, in channel): an insider can still
// order a validly signed commit that honest members refuse (issue 13.6
// is how they recover). It verifies everything else a member verifies.

// verifyRetries bounds how often a handshake is verified again when another
// was ordered between reading the state and ordering it.
const verifyRetries = 8

// leafValidator is the Authentication Service the relay applies to every
// leaf that enters a group: certified devices only (identity.Validator).
// Revocations the relay knows are checked on top (checkRevoked).
func (s *Server) mlsConfig() mls.Config {
	return mls.Config{Now: s.o.Now, Credentials: &identity.Validator{Now: s.o.Now}, MaxLeafLifetime: mls.DefaultMaxLifetime}
}

func (s *Server) publicStore() (PublicStateStore, error) {
	ps, ok := s.st.(PublicStateStore)
	if !ok {
		return nil, errors.New("relay: the store keeps no public state")
	}
	return ps, nil
}

// parseGroupInfo decodes an MLSMessage(GroupInfo) within its size limit.
func parseGroupInfo(data []byte, code string) (*mls.GroupInfo, error) {
	if len(data) > api.MaxGroupInfoSize {
		return nil, errf(http.StatusRequestEntityTooLarge, "group_info_too_large", "a GroupInfo is at most %d bytes", api.MaxGroupInfoSize)
	}
	m, err := mls.UnmarshalMessage(data)
	if err != nil || m.WireFormat != mls.WireFormatGroupInfo {
		return nil, errf(http.StatusBadRequest, code, "not an MLSMessage(GroupInfo)")
	}
	return m.GroupInfo, nil
}

// leafUser is the user id a leaf of a relay group presents (its basic
// credential's identity; the validator bound it to the leaf's device
// certificate when the leaf entered).
func leafUser(ln *tree.LeafNode) string { return string(ln.Credential.Identity) }

// users returns the set of users with a leaf in pg.
func users(pg *mls.PublicGroup) map[string]bool {
	out := map[string]bool{}
	for _, m := range pg.Members() {
		out[string(m.Credential.Identity)] = true
	}
	return out
}

// checkDevice: ln is the device of the session (user, device id).
func checkDevice(ln *tree.LeafNode, sess Session, code, what string) error {
	if ln == nil {
		return errf(http.StatusBadRequest, code, "%s: no such leaf", what)
	}
	cert, err := identity.LeafCertificate(ln)
	if err != nil || leafUser(ln) != sess.UserID || cert.Device.ID.String() != sess.DeviceID {
		return errf(http.StatusBadRequest, code, "%s is not the caller's device", what)
	}
	return nil
}

// checkRevoked refuses leaves of devices the relay knows to be revoked.
func (s *Server) checkRevoked(ctx context.Context, code string, leaves ...*tree.LeafNode) error {
	for _, ln := range leaves {
		cert, err := identity.LeafCertificate(ln)
		if err != nil {
			return errf(http.StatusBadRequest, code, "a leaf without a device certificate")
		}
		revoked, err := s.st.Revoked(ctx, string(cert.UserID()), cert.Device.ID.String())
		if err != nil {
			return err
		}
		if revoked {
			return errf(http.StatusBadRequest, code, "device %s of %s is revoked", cert.Device.ID, cert.UserID().Short())
		}
	}
	return nil
}

// createVerifiedGroup registers the group a GroupInfo describes (with its
// ratchet_tree extension): verified as a joiner verifies it, the caller's
// device in its tree, no revoked device. Its users are the first readers.
func (s *Server) createVerifiedGroup(ctx context.Context, sess Session, data []byte) (*mls.PublicGroup, error) {
	gi, err := parseGroupInfo(data, "invalid_group_info")
	if err != nil {
		return nil, err
	}
	if err := checkGroupID(gi.GroupContext.GroupID); err != nil {
		return nil, err
	}
	pg, err := mls.NewPublicGroup(gi, nil, s.mlsConfig())
	if err != nil {
		return nil, errf(http.StatusBadRequest, "invalid_group_info", "%v", err)
	}
	var mine bool
	var leaves []*tree.LeafNode
	for _, m := range pg.Members() {
		ln := pg.Leaf(m.LeafIndex)
		leaves = append(leaves, ln)
		mine = mine || checkDevice(ln, sess, "", "") == nil
	}
	if !mine {
		return nil, errf(http.StatusBadRequest, "invalid_group_info", "the caller's device is not in the group's tree")
	}
	if err := s.checkRevoked(ctx, "invalid_group_info", leaves...); err != nil {
		return nil, err
	}
	st, err := stateOf(pg, 0)
	if err != nil {
		return nil, err
	}
	ps, err := s.publicStore()
	if err != nil {
		return nil, err
	}
	var members []string
	for u := range users(pg) {
		members = append(members, u)
	}
	g := VerifiedGroup{GroupID: pg.GroupID(), Creator: sess.UserID, Members: members, State: st, GroupInfo: data}
	if err := ps.CreateVerifiedGroup(ctx, g, s.o.Now()); err != nil {
		return nil, err
	}
	return pg, nil
}

func stateOf(pg *mls.PublicGroup, version int64) (PublicState, error) {
	data, err := pg.MarshalBinary()
	if err != nil {
		return PublicState{}, err
	}
	return PublicState{Epoch: pg.Epoch(), Version: version, Data: data, TreeHash: pg.TreeHash(),
		ConfirmedTranscriptHash: pg.ConfirmedTranscriptHash()}, nil
}

// appendVerified orders m: an application message as it is (it must be a
// PrivateMessage); a commit or proposal once verified against the group's
// public state and applied to it, retried when another handshake was
// ordered meanwhile. For a commit, m's Added and Removed are derived here.
func (s *Server) appendVerified(ctx context.Context, sess Session, m *Message, wf mls.WireFormat, groupInfo []byte) (int64, uint64, error) {
	if m.Kind == api.KindApplication {
		if groupInfo != nil {
			return 0, 0, errf(http.StatusBadRequest, "bad_request", "group_info belongs to commits")
		}
		if wf != mls.WireFormatPrivateMessage {
			return 0, 0, errf(http.StatusBadRequest, "invalid_message", "application messages are PrivateMessages")
		}
		return s.st.Append(ctx, *m)
	}
	if wf != mls.WireFormatPublicMessage {
		return 0, 0, errf(http.StatusBadRequest, "private_handshake", "a %s must be a PublicMessage, for the relay to verify it", m.Kind)
	}
	if m.Kind == api.KindProposal && groupInfo != nil {
		return 0, 0, errf(http.StatusBadRequest, "bad_request", "group_info belongs to commits")
	}
	// Only a current member learns anything from the verification.
	if _, err := s.member(ctx, m.GroupID, sess.UserID); err != nil {
		return 0, 0, err
	}
	ps, err := s.publicStore()
	if err != nil {
		return 0, 0, err
	}
	for attempt := 0; ; attempt++ {
		cur, err := ps.PublicState(ctx, m.GroupID)
		if errors.Is(err, ErrNotFound) {
			code := "invalid_commit"
			if m.Kind == "proposal" {
				code = "invalid_proposal"
			}
			return 0, 0, errf(http.StatusBadRequest, code, "the relay holds no public state of this group: it cannot verify its handshakes")
		} else if err != nil {
			return 0, 0, err
		}
		if m.Epoch != cur.Epoch {
			return s.wrongEpoch(m, cur.Epoch)
		}
		next, gi, err := s.verifyHandshake(ctx, sess, m, cur, groupInfo)
		if err != nil {
			return 0, 0, err
		}
		seq, epoch, err := ps.AppendVerified(ctx, *m, cur.Version, next, gi)
		switch {
		case errors.Is(err, ErrStateChanged) && attempt < verifyRetries:
			continue
		case errors.Is(err, ErrStateChanged):
			return 0, 0, errf(http.StatusConflict, "state_changed", "the group kept changing while the relay verified the %s: post it again", m.Kind)
		}
		return seq, epoch, err
	}
}

// wrongEpoch answers a handshake for an epoch other than the state's: a
// commit conflict or future epoch (as the log orders them), or, for a
// proposal of a past epoch, a refusal (it can no longer be committed).
func (s *Server) wrongEpoch(m *Message, cur uint64) (int64, uint64, error) {
	switch {
	case m.Kind == api.KindCommit:
		return 0, cur, fmt.Errorf("%w: commit for epoch %d, the group is at epoch %d", ErrCommitConflict, m.Epoch, cur)
	case m.Epoch > cur:
		return 0, cur, fmt.Errorf("%w: %s for epoch %d, the group is at epoch %d", ErrFutureEpoch, m.Kind, m.Epoch, cur)
	}
	return 0, 0, errf(http.StatusBadRequest, "invalid_proposal", "a proposal for epoch %d, which is over (the group is at %d)", m.Epoch, cur)
}

// verifyHandshake verifies m against cur and returns the state after it,
// and the GroupInfo to store (commits).
func (s *Server) verifyHandshake(ctx context.Context, sess Session, m *Message, cur PublicState, groupInfo []byte) (PublicState, []byte, error) {
	pg, err := mls.LoadPublicGroup(cur.Data, s.mlsConfig())
	if err != nil {
		return PublicState{}, nil, err
	}
	msg, err := mls.UnmarshalMessage(m.Data)
	if err != nil {
		return PublicState{}, nil, errf(http.StatusBadRequest, "invalid_message", "not an MLSMessage")
	}
	if m.Kind == api.KindProposal {
		next, err := s.verifyProposal(sess, pg, msg)
		if err != nil {
			return PublicState{}, nil, err
		}
		st, err := stateOf(next, cur.Version)
		return st, nil, err
	}
	next, err := s.verifyCommit(ctx, sess, pg, msg, m, groupInfo)
	if err != nil {
		return PublicState{}, nil, err
	}
	st, err := stateOf(next, cur.Version)
	return st, groupInfo, err
}

// verifyProposal: a valid proposal; a member's is the caller's own device.
func (s *Server) verifyProposal(sess Session, pg *mls.PublicGroup, msg *mls.Message) (*mls.PublicGroup, error) {
	next, _, err := pg.ProcessProposal(msg)
	if err != nil {
		return nil, errf(http.StatusBadRequest, "invalid_proposal", "%v", err)
	}
	if sender := msg.PublicMessage.Content.Sender; sender.SenderType == mls.SenderTypeMember {
		if err := checkDevice(pg.Leaf(sender.LeafIndex), sess, "invalid_proposal", "the proposal's sender"); err != nil {
			return nil, err
		}
	}
	return next, nil
}

// verifyCommit: a valid commit by the caller's own device (a member's
// leaf, or an external joiner's new leaf), bringing no leaf of a revoked
// device (added, updated or the committer's new one), with
// the GroupInfo of the epoch it starts. m.Added and m.Removed become the
// users that gain their first leaf and lose their last one.
func (s *Server) verifyCommit(ctx context.Context, sess Session, pg *mls.PublicGroup, msg *mls.Message, m *Message, groupInfo []byte) (*mls.PublicGroup, error) {
	if groupInfo == nil {
		return nil, errf(http.StatusBadRequest, "invalid_commit", "a commit needs the GroupInfo of the epoch it starts (group_info)")
	}
	gi, err := parseGroupInfo(groupInfo, "invalid_commit")
	if err != nil {
		return nil, err
	}
	if gi.Extensions.Find(tree.ExtensionTypeRatchetTree) == nil {
		// It becomes the group's GroupInfo: an external joiner needs the tree.
		return nil, errf(http.StatusBadRequest, "invalid_commit", "the commit's GroupInfo must carry the ratchet_tree extension")
	}
	pc, err := pg.ProcessCommit(msg)
	if err != nil {
		return nil, errf(http.StatusBadRequest, "invalid_commit", "%v", err)
	}
	next := pc.State
	if sender := msg.PublicMessage.Content.Sender; sender.SenderType == mls.SenderTypeMember {
		err = checkDevice(pg.Leaf(sender.LeafIndex), sess, "invalid_commit", "the commit's sender")
	} else {
		err = checkDevice(next.Leaf(pc.Committer), sess, "invalid_commit", "the external joiner")
	}
	if err != nil {
		return nil, err
	}
	if err := s.checkRevoked(ctx, "invalid_commit", newLeaves(pg, next)...); err != nil {
		return nil, err
	}
	if err := next.VerifyGroupInfo(gi); err != nil {
		return nil, errf(http.StatusBadRequest, "invalid_commit", "group_info: %v", err)
	}
	before, after := users(pg), users(next)
	m.Added, m.Removed = nil, nil
	for u := range after {
		if !before[u] {
			m.Added = append(m.Added, u)
		}
	}
	for u := range before {
		if !after[u] {
			m.Removed = append(m.Removed, u)
		}
	}
	return next, nil
}

// newLeaves are the leaves of next that are not in pg at the same index:
// the committer's new leaf, Updates committed, Adds, an external joiner.
func newLeaves(pg, next *mls.PublicGroup) []*tree.LeafNode {
	var out []*tree.LeafNode
	for _, m := range next.Members() {
		ln, old := next.Leaf(m.LeafIndex), pg.Leaf(m.LeafIndex)
		if old == nil || !bytes.Equal(old.EncryptionKey, ln.EncryptionKey) || !bytes.Equal(old.SignatureKey, ln.SignatureKey) {
			out = append(out, ln)
		}
	}
	return out
}

// checkGroupInfo verifies a GroupInfo posted on its own against the
// group's public state: it must describe the current epoch exactly.
func (s *Server) checkGroupInfo(ctx context.Context, gid []byte, gi *mls.GroupInfo) error {
	ps, err := s.publicStore()
	if err != nil {
		return err
	}
	cur, err := ps.PublicState(ctx, gid)
	if errors.Is(err, ErrNotFound) {
		return errf(http.StatusBadRequest, "invalid_group_info", "the relay holds no public state of this group")
	} else if err != nil {
		return err
	}
	if gi.GroupContext.Epoch != cur.Epoch {
		return errf(http.StatusConflict, "stale_group_info", "a GroupInfo for epoch %d, the group is at %d", gi.GroupContext.Epoch, cur.Epoch)
	}
	pg, err := mls.LoadPublicGroup(cur.Data, s.mlsConfig())
	if err != nil {
		return err
	}
	if err := pg.VerifyGroupInfo(gi); err != nil {
		return errf(http.StatusBadRequest, "invalid_group_info", "%v", err)
	}
	return nil
}

// handleEpoch answers GET /v1/groups/{gid}/epochs/{epoch}: the epoch's
// tree hash and confirmed transcript hash, for a joiner to compare with
// the GroupInfo of its Welcome.
func (s *Server) handleEpoch(w http.ResponseWriter, r *http.Request, sess Session) error {
	gid, err := pathGroupID(r)
	if err != nil {
		return err
	}
	epoch, err := uintPath(r.PathValue("epoch"))
	if err != nil {
		return err
	}
	if _, err := s.member(r.Context(), gid, sess.UserID); err != nil {
		return err
	}
	ps, err := s.publicStore()
	if err != nil {
		return err
	}
	st, err := ps.EpochHashes(r.Context(), gid, epoch)
	if errors.Is(err, ErrNotFound) {
		return errf(http.StatusNotFound, "no_epoch", "the relay has no verified state of epoch %d", epoch)
	} else if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"epoch": st.Epoch, "tree_hash": st.TreeHash, "confirmed_transcript_hash": st.ConfirmedTranscriptHash})
	return nil
}

// treeHash is the current tree hash of the group's public state, nil
// when it has none.
func (s *Server) treeHash(ctx context.Context, gid []byte) ([]byte, error) {
	ps, err := s.publicStore()
	if err != nil {
		return nil, err
	}
	st, err := ps.PublicState(ctx, gid)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return st.TreeHash, err
}

// uintPath parses a decimal path segment (an epoch).
func uintPath(p string) (uint64, error) {
	n, err := strconv.ParseUint(p, 10, 64)
	if err != nil || (len(p) > 1 && p[0] == '0') {
		return 0, errf(http.StatusBadRequest, "bad_request", "not a decimal number: %q", oneLine(p))
	}
	return n, nil
}
