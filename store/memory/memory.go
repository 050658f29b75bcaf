// Package memory is an in-memory store.Store for tests. It keeps the same
// rules as store/sqlite (the shared suite in store/storetest checks both) but
// nothing is sealed and nothing survives the process.
//
// Readers see an immutable snapshot; Update works on a copy and publishes it
// on success, so a failed Update leaves no trace and readers never see a
// transaction in progress (the same isolation as SQLite in WAL mode).
package memory

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spacepanda/spacepanda/store"
	"github.com/spacepanda/spacepanda/store/internal/codec"
)

// Store is an in-memory store.Store.
type Store struct {
	view
	writeMu sync.Mutex // serialises Update
	cur     atomic.Pointer[state]
	closed  atomic.Bool
	now     func() time.Time
}

var _ store.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	s := &Store{now: time.Now}
	s.cur.Store(newState())
	s.view = view{load: s.cur.Load, check: s.check}
	return s
}

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return ctx.Err()
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	t := &tx{st: s.cur.Load().clone(), owned: map[string]bool{}, now: s.now}
	t.view = view{load: func() *state { return t.st }, check: t.checkCtx}
	defer func() { t.done = true }()
	if err := fn(t); err != nil {
		return err
	}
	if err := s.check(ctx); err != nil {
		return err
	}
	s.cur.Store(t.st)
	return nil
}

// state is one snapshot. Published snapshots are never modified: a tx
// copies each map, top-level or nested, before its first change to it, so an
// Update costs the size of the maps it touches. Message slices are only ever appended to by the single writer, and
// a snapshot never reads past its own length, so they are shared.
type state struct {
	identity     *store.Identity
	revocations  map[string]store.Revocation // identity key ‖ device id
	kps          map[string]store.KeyPackage
	groups       map[string]store.Group
	blobs        map[string]map[string][]byte // group → key → value
	epochSecrets map[string]map[uint64][]byte
	extPSKs      map[string][]byte
	resPSKs      map[string]map[uint64][]byte
	channels     map[string]store.Channel
	messages     map[string][]store.Message // channel → history, Seq = index+1
}

func newState() *state {
	return &state{
		revocations:  map[string]store.Revocation{},
		kps:          map[string]store.KeyPackage{},
		groups:       map[string]store.Group{},
		blobs:        map[string]map[string][]byte{},
		epochSecrets: map[string]map[uint64][]byte{},
		extPSKs:      map[string][]byte{},
		resPSKs:      map[string]map[uint64][]byte{},
		channels:     map[string]store.Channel{},
		messages:     map[string][]store.Message{},
	}
}

// clone returns a state sharing every map with s; a tx copies a map before
// its first change to it (see ownMap and own).
func (s *state) clone() *state {
	c := *s
	return &c
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// view implements store.Reader over a snapshot.
type view struct {
	load  func() *state
	check func(context.Context) error
}

func (v view) get(ctx context.Context) (*state, error) {
	if err := v.check(ctx); err != nil {
		return nil, err
	}
	return v.load(), nil
}

func (v view) Identity(ctx context.Context) (store.Identity, error) {
	st, err := v.get(ctx)
	if err != nil {
		return store.Identity{}, err
	}
	if st.identity == nil {
		return store.Identity{}, store.ErrIdentityNotFound
	}
	return copyIdentity(*st.identity), nil
}

func copyIdentity(id store.Identity) store.Identity {
	id.SignaturePrivateKey = bytes.Clone(id.SignaturePrivateKey)
	id.SignaturePublicKey = bytes.Clone(id.SignaturePublicKey)
	id.Credential = clone(id.Credential)
	id.DeviceID = clone(id.DeviceID)
	id.Certificate = clone(id.Certificate)
	id.PrivateIdentity = bytes.Clone(id.PrivateIdentity)
	return id
}

func (v view) Revocations(ctx context.Context) ([]store.Revocation, error) {
	st, err := v.get(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(st.revocations))
	for k := range st.revocations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]store.Revocation, 0, len(keys))
	for _, k := range keys {
		r := st.revocations[k]
		r.IdentityKey, r.DeviceID, r.Revocation = clone(r.IdentityKey), clone(r.DeviceID), clone(r.Revocation)
		out = append(out, r)
	}
	return out, nil
}

func (v view) KeyPackage(ctx context.Context, ref []byte) (store.KeyPackage, error) {
	if err := codec.CheckID("key package ref", ref); err != nil {
		return store.KeyPackage{}, err
	}
	st, err := v.get(ctx)
	if err != nil {
		return store.KeyPackage{}, err
	}
	kp, ok := st.kps[string(ref)]
	if !ok {
		return store.KeyPackage{}, store.ErrKeyPackageNotFound
	}
	return copyKP(kp), nil
}

func copyKP(kp store.KeyPackage) store.KeyPackage {
	kp.Ref = bytes.Clone(kp.Ref)
	kp.KeyPackage = bytes.Clone(kp.KeyPackage)
	kp.InitPrivateKey = bytes.Clone(kp.InitPrivateKey)
	kp.LeafPrivateKey = bytes.Clone(kp.LeafPrivateKey)
	return kp
}

func (v view) CountKeyPackages(ctx context.Context, now time.Time) (store.KeyPackageCount, error) {
	st, err := v.get(ctx)
	if err != nil {
		return store.KeyPackageCount{}, err
	}
	now = norm(now)
	var c store.KeyPackageCount
	for _, kp := range st.kps {
		if kp.NotAfter.Before(now) {
			continue
		}
		if kp.LastResort {
			c.LastResort++
		} else {
			c.OneTime++
		}
	}
	return c, nil
}

func (v view) Group(ctx context.Context, groupID []byte) (store.Group, error) {
	if err := codec.CheckID("group id", groupID); err != nil {
		return store.Group{}, err
	}
	st, err := v.get(ctx)
	if err != nil {
		return store.Group{}, err
	}
	g, ok := st.groups[string(groupID)]
	if !ok {
		return store.Group{}, store.ErrGroupNotFound
	}
	g.ID = bytes.Clone(g.ID)
	g.State = bytes.Clone(g.State)
	return g, nil
}

func (v view) Groups(ctx context.Context) ([]store.GroupSummary, error) {
	st, err := v.get(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]store.GroupSummary, 0, len(st.groups))
	for _, g := range st.groups {
		out = append(out, store.GroupSummary{ID: bytes.Clone(g.ID), Epoch: g.Epoch, UpdatedAt: g.UpdatedAt})
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].ID, out[j].ID) < 0 })
	return out, nil
}

func (v view) GroupBlob(ctx context.Context, groupID, key []byte) ([]byte, error) {
	if err := codec.CheckIDs(groupID, key); err != nil {
		return nil, err
	}
	st, err := v.get(ctx)
	if err != nil {
		return nil, err
	}
	b, ok := st.blobs[string(groupID)][string(key)]
	if !ok {
		return nil, store.ErrGroupBlobNotFound
	}
	return clone(b), nil
}

func (v view) GroupBlobs(ctx context.Context, groupID []byte) ([]store.Blob, error) {
	if err := codec.CheckID("group id", groupID); err != nil {
		return nil, err
	}
	st, err := v.get(ctx)
	if err != nil {
		return nil, err
	}
	m := st.blobs[string(groupID)]
	out := make([]store.Blob, 0, len(m))
	for k, b := range m {
		out = append(out, store.Blob{Key: []byte(k), Value: clone(b)})
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].Key, out[j].Key) < 0 })
	return out, nil
}

func (v view) EpochSecret(ctx context.Context, groupID []byte, epoch uint64) ([]byte, error) {
	if err := codec.CheckID("group id", groupID); err != nil {
		return nil, err
	}
	st, err := v.get(ctx)
	if err != nil {
		return nil, err
	}
	b, ok := st.epochSecrets[string(groupID)][epoch]
	if !ok {
		return nil, store.ErrEpochSecretNotFound
	}
	return clone(b), nil
}

func (v view) ExternalPSK(ctx context.Context, pskID []byte) ([]byte, error) {
	if err := codec.CheckID("psk id", pskID); err != nil {
		return nil, err
	}
	st, err := v.get(ctx)
	if err != nil {
		return nil, err
	}
	b, ok := st.extPSKs[string(pskID)]
	if !ok {
		return nil, store.ErrPSKNotFound
	}
	return clone(b), nil
}

func (v view) ResumptionPSK(ctx context.Context, groupID []byte, epoch uint64) ([]byte, error) {
	if err := codec.CheckID("group id", groupID); err != nil {
		return nil, err
	}
	st, err := v.get(ctx)
	if err != nil {
		return nil, err
	}
	b, ok := st.resPSKs[string(groupID)][epoch]
	if !ok {
		return nil, store.ErrPSKNotFound
	}
	return clone(b), nil
}

func (v view) Channel(ctx context.Context, channelID string) (store.Channel, error) {
	if err := codec.CheckString("channel id", channelID); err != nil {
		return store.Channel{}, err
	}
	st, err := v.get(ctx)
	if err != nil {
		return store.Channel{}, err
	}
	c, ok := st.channels[channelID]
	if !ok {
		return store.Channel{}, store.ErrChannelNotFound
	}
	return copyChannel(c), nil
}

func copyChannel(c store.Channel) store.Channel {
	c.GroupID = bytes.Clone(c.GroupID)
	c.Extra = bytes.Clone(c.Extra)
	return c
}

func (v view) Channels(ctx context.Context) ([]store.Channel, error) {
	st, err := v.get(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]store.Channel, 0, len(st.channels))
	for _, c := range st.channels {
		out = append(out, copyChannel(c))
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(out[i].ID, out[j].ID) < 0 })
	return out, nil
}

func (v view) Messages(ctx context.Context, channelID string, after uint64, limit int) ([]store.Message, error) {
	if err := codec.CheckLimit(limit); err != nil {
		return nil, err
	}
	st, err := v.get(ctx)
	if err != nil {
		return nil, err
	}
	h := st.messages[channelID]
	if after >= uint64(len(h)) {
		return []store.Message{}, nil
	}
	h = h[after:]
	if len(h) > limit {
		h = h[:limit]
	}
	return copyMessages(h), nil
}

func (v view) MessagesBefore(ctx context.Context, channelID string, before uint64, limit int) ([]store.Message, error) {
	if err := codec.CheckLimit(limit); err != nil {
		return nil, err
	}
	st, err := v.get(ctx)
	if err != nil {
		return nil, err
	}
	h := st.messages[channelID]
	if before != 0 && before-1 < uint64(len(h)) {
		h = h[:before-1]
	}
	if len(h) > limit {
		h = h[len(h)-limit:]
	}
	return copyMessages(h), nil
}

func copyMessages(h []store.Message) []store.Message {
	out := make([]store.Message, len(h))
	for i, m := range h {
		m.Body = bytes.Clone(m.Body)
		out[i] = m
	}
	return out
}

// tx implements store.Tx over a private copy of the state.
type tx struct {
	view
	st    *state
	owned map[string]bool // nested maps already cloned in this tx
	done  bool
	now   func() time.Time
}

func (t *tx) checkCtx(ctx context.Context) error {
	if t.done {
		return store.ErrTxDone
	}
	return ctx.Err()
}

// ownMap returns the top-level map *m, copied first if this tx has not yet
// copied it.
func ownMap[K comparable, V any](t *tx, kind string, m *map[K]V) map[K]V {
	if !t.owned[kind] {
		*m = cloneMap(*m)
		t.owned[kind] = true
	}
	return *m
}

// own returns the nested map (*outer)[key], copied first (with *outer) if
// this tx has not yet copied it.
func own[K comparable, V any](t *tx, kind string, outer *map[string]map[K]V, key string) map[K]V {
	o := ownMap(t, kind, outer)
	tag := kind + "\x00" + key
	if !t.owned[tag] {
		o[key] = cloneMap(o[key])
		t.owned[tag] = true
	}
	return o[key]
}

func (t *tx) stamp(tm time.Time) time.Time {
	if tm.IsZero() {
		return norm(t.now())
	}
	return norm(tm)
}

func (t *tx) PutIdentity(ctx context.Context, id store.Identity) error {
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	if err := id.Validate(); err != nil {
		return err
	}
	if t.st.identity != nil {
		return fmt.Errorf("identity: %w", store.ErrExists)
	}
	id = copyIdentity(id)
	id.CreatedAt = t.stamp(id.CreatedAt)
	t.st.identity = &id
	return nil
}

func (t *tx) UpdateIdentity(ctx context.Context, id store.Identity) error {
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	if err := id.Validate(); err != nil {
		return err
	}
	cur := t.st.identity
	if cur == nil {
		return store.ErrIdentityNotFound
	}
	if !bytes.Equal(cur.SignaturePublicKey, id.SignaturePublicKey) || cur.CipherSuite != id.CipherSuite || !bytes.Equal(cur.DeviceID, id.DeviceID) {
		return fmt.Errorf("%w: identity: the signature key, cipher suite and device id never change", store.ErrInvalid)
	}
	next := copyIdentity(*cur)
	next.UserID, next.Credential, next.Certificate = id.UserID, clone(id.Credential), clone(id.Certificate)
	next.PrivateIdentity, next.DisplayName = bytes.Clone(id.PrivateIdentity), id.DisplayName
	t.st.identity = &next
	return nil
}

func (t *tx) PutRevocation(ctx context.Context, r store.Revocation) error {
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	if err := r.Validate(); err != nil {
		return err
	}
	k := string(r.IdentityKey) + string(r.DeviceID)
	if _, ok := t.st.revocations[k]; ok {
		return nil
	}
	r.IdentityKey, r.DeviceID, r.Revocation = clone(r.IdentityKey), clone(r.DeviceID), clone(r.Revocation)
	r.CreatedAt = t.stamp(r.CreatedAt)
	ownMap(t, "revocations", &t.st.revocations)[k] = r
	return nil
}

func (t *tx) PutKeyPackages(ctx context.Context, kps ...store.KeyPackage) error {
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	for _, kp := range kps {
		if err := kp.Validate(); err != nil {
			return err
		}
	}
	// Check everything before changing anything, so a failed call changes
	// nothing even if the caller ignores its error and commits.
	seen := map[string]bool{}
	for _, kp := range kps {
		if _, ok := t.st.kps[string(kp.Ref)]; ok || seen[string(kp.Ref)] {
			return fmt.Errorf("key package: %w", store.ErrExists)
		}
		seen[string(kp.Ref)] = true
	}
	for _, kp := range kps {
		kp = copyKP(kp)
		kp.NotAfter = norm(kp.NotAfter)
		kp.CreatedAt = t.stamp(kp.CreatedAt)
		ownMap(t, "kps", &t.st.kps)[string(kp.Ref)] = kp
	}
	return nil
}

func (t *tx) ConsumeKeyPackage(ctx context.Context, ref []byte) error {
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	if err := codec.CheckID("key package ref", ref); err != nil {
		return err
	}
	kp, ok := t.st.kps[string(ref)]
	if !ok {
		return store.ErrKeyPackageNotFound
	}
	if !kp.LastResort {
		delete(ownMap(t, "kps", &t.st.kps), string(ref))
	}
	return nil
}

func (t *tx) PruneKeyPackages(ctx context.Context, now time.Time) (int, error) {
	if err := t.checkCtx(ctx); err != nil {
		return 0, err
	}
	now = norm(now)
	n := 0
	for ref, kp := range t.st.kps {
		if kp.NotAfter.Before(now) {
			delete(ownMap(t, "kps", &t.st.kps), ref)
			n++
		}
	}
	return n, nil
}

func (t *tx) TrimKeyPackages(ctx context.Context, keepOneTime, keepLastResort int) (int, error) {
	if err := t.checkCtx(ctx); err != nil {
		return 0, err
	}
	n := 0
	for _, lr := range []bool{false, true} {
		keep := max(keepOneTime, 0)
		if lr {
			keep = max(keepLastResort, 0)
		}
		var kps []store.KeyPackage
		for _, kp := range t.st.kps {
			if kp.LastResort == lr {
				kps = append(kps, kp)
			}
		}
		// Newest first, as store/sqlite orders them.
		slices.SortFunc(kps, func(a, b store.KeyPackage) int {
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			return bytes.Compare(b.Ref, a.Ref)
		})
		for _, kp := range kps[min(keep, len(kps)):] {
			delete(ownMap(t, "kps", &t.st.kps), string(kp.Ref))
			n++
		}
	}
	return n, nil
}

func (t *tx) PutGroup(ctx context.Context, g store.Group) error {
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	if err := g.Validate(); err != nil {
		return err
	}
	if old, ok := t.st.groups[string(g.ID)]; ok && g.Epoch < old.Epoch {
		return store.ErrEpochRegression
	}
	g.ID = bytes.Clone(g.ID)
	g.State = bytes.Clone(g.State)
	g.UpdatedAt = t.stamp(g.UpdatedAt)
	ownMap(t, "groups", &t.st.groups)[string(g.ID)] = g
	return nil
}

func (t *tx) DeleteGroup(ctx context.Context, groupID []byte) error {
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	if err := codec.CheckID("group id", groupID); err != nil {
		return err
	}
	if _, ok := t.st.groups[string(groupID)]; !ok {
		return store.ErrGroupNotFound
	}
	delete(ownMap(t, "groups", &t.st.groups), string(groupID))
	delete(ownMap(t, "blobs", &t.st.blobs), string(groupID))
	delete(ownMap(t, "epoch", &t.st.epochSecrets), string(groupID))
	delete(t.owned, "blobs\x00"+string(groupID))
	delete(t.owned, "epoch\x00"+string(groupID))
	return nil
}

func (t *tx) PutGroupBlob(ctx context.Context, groupID, key, value []byte) error {
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	if err := codec.CheckIDs(groupID, key); err != nil {
		return err
	}
	if _, ok := t.st.groups[string(groupID)]; !ok {
		return store.ErrGroupNotFound
	}
	own(t, "blobs", &t.st.blobs, string(groupID))[string(key)] = clone(value)
	return nil
}

func (t *tx) DeleteGroupBlob(ctx context.Context, groupID, key []byte) error {
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	if err := codec.CheckIDs(groupID, key); err != nil {
		return err
	}
	if _, ok := t.st.blobs[string(groupID)][string(key)]; !ok {
		return store.ErrGroupBlobNotFound
	}
	delete(own(t, "blobs", &t.st.blobs, string(groupID)), string(key))
	return nil
}

func (t *tx) PutEpochSecret(ctx context.Context, groupID []byte, epoch uint64, secret []byte) error {
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	if err := codec.CheckID("group id", groupID); err != nil {
		return err
	}
	if err := codec.CheckEpoch(epoch); err != nil {
		return err
	}
	if _, ok := t.st.groups[string(groupID)]; !ok {
		return store.ErrGroupNotFound
	}
	own(t, "epoch", &t.st.epochSecrets, string(groupID))[epoch] = clone(secret)
	return nil
}

func (t *tx) PruneEpochSecrets(ctx context.Context, groupID []byte, before uint64) (int, error) {
	return prune(t, ctx, "epoch", &t.st.epochSecrets, groupID, before)
}

func (t *tx) PruneResumptionPSKs(ctx context.Context, groupID []byte, before uint64) (int, error) {
	return prune(t, ctx, "resumption", &t.st.resPSKs, groupID, before)
}

func prune(t *tx, ctx context.Context, kind string, outer *map[string]map[uint64][]byte, groupID []byte, before uint64) (int, error) {
	if err := t.checkCtx(ctx); err != nil {
		return 0, err
	}
	if err := codec.CheckID("group id", groupID); err != nil {
		return 0, err
	}
	n := 0
	for e := range (*outer)[string(groupID)] {
		if e < before {
			delete(own(t, kind, outer, string(groupID)), e)
			n++
		}
	}
	return n, nil
}

func (t *tx) PutExternalPSK(ctx context.Context, pskID, secret []byte) error {
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	if err := codec.CheckID("psk id", pskID); err != nil {
		return err
	}
	ownMap(t, "extPSKs", &t.st.extPSKs)[string(pskID)] = clone(secret)
	return nil
}

func (t *tx) DeleteExternalPSK(ctx context.Context, pskID []byte) error {
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	if err := codec.CheckID("psk id", pskID); err != nil {
		return err
	}
	if _, ok := t.st.extPSKs[string(pskID)]; !ok {
		return store.ErrPSKNotFound
	}
	delete(ownMap(t, "extPSKs", &t.st.extPSKs), string(pskID))
	return nil
}

func (t *tx) PutResumptionPSK(ctx context.Context, groupID []byte, epoch uint64, secret []byte) error {
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	if err := codec.CheckID("group id", groupID); err != nil {
		return err
	}
	if err := codec.CheckEpoch(epoch); err != nil {
		return err
	}
	own(t, "resumption", &t.st.resPSKs, string(groupID))[epoch] = clone(secret)
	return nil
}

func (t *tx) PutChannel(ctx context.Context, c store.Channel) error {
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	c = copyChannel(c)
	if len(c.Extra) == 0 {
		c.Extra = nil
	}
	c.CreatedAt = t.stamp(c.CreatedAt)
	ownMap(t, "channels", &t.st.channels)[c.ID] = c
	return nil
}

func (t *tx) DeleteChannel(ctx context.Context, channelID string) error {
	if err := t.checkCtx(ctx); err != nil {
		return err
	}
	if err := codec.CheckString("channel id", channelID); err != nil {
		return err
	}
	if _, ok := t.st.channels[channelID]; !ok {
		return store.ErrChannelNotFound
	}
	delete(ownMap(t, "channels", &t.st.channels), channelID)
	delete(ownMap(t, "messages", &t.st.messages), channelID)
	return nil
}

func (t *tx) AppendMessage(ctx context.Context, m store.Message) (uint64, error) {
	if err := t.checkCtx(ctx); err != nil {
		return 0, err
	}
	if err := m.Validate(); err != nil {
		return 0, err
	}
	if _, ok := t.st.channels[m.ChannelID]; !ok {
		return 0, store.ErrChannelNotFound
	}
	h := t.st.messages[m.ChannelID]
	for _, old := range h {
		if old.ID == m.ID {
			return 0, fmt.Errorf("message: %w", store.ErrExists)
		}
	}
	m.Seq = uint64(len(h)) + 1
	m.Body = clone(m.Body)
	m.Timestamp = norm(m.Timestamp)
	m.ReceivedAt = t.stamp(m.ReceivedAt)
	ownMap(t, "messages", &t.st.messages)[m.ChannelID] = append(h, m)
	return m.Seq, nil
}

// clone copies b, returning a non-nil slice (stored values are never nil).
func clone(b []byte) []byte { return append([]byte{}, b...) }

// norm gives times the precision, range and location the SQLite backend
// returns.
func norm(t time.Time) time.Time { return codec.Norm(t) }
