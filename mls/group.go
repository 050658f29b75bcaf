package mls

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// The group state machine (RFC 9420 §8, §11, §12).
//
// A *Group is one member's view of one group in one epoch. Operations that
// change the group do not modify the receiver: they return the new state
// (Processed.State, CommitResult.State, ...), which the caller persists and
// then adopts. The one exception is the sender ratchets of the secret tree:
// encrypting a message and consuming a received message's key advance them
// in place, because a key must never be handed out twice (§9.2); the caller
// persists the group after each such call before the output leaves.

// Errors of the group state machine. Every rejection wraps one of these (and
// often a more specific error from mls/tree, mls/schedule or mls/suite).
var (
	ErrWrongEpoch           = errors.New("mls: message for another epoch")
	ErrWrongGroup           = errors.New("mls: message for another group")
	ErrUnknownProposal      = errors.New("mls: commit references an unknown proposal")
	ErrInvalidProposal      = errors.New("mls: invalid proposal")
	ErrInvalidCommit        = errors.New("mls: invalid commit")
	ErrPathRequired         = errors.New("mls: commit requires an update path")
	ErrMissingPSK           = errors.New("mls: pre-shared key not available")
	ErrPendingProposals     = errors.New("mls: proposals pending: commit them before sending application data")
	ErrNotMember            = errors.New("mls: not a member of the group")
	ErrOwnCommit            = errors.New("mls: own commit must be merged from its CommitResult, not processed")
	ErrUnknownSender        = errors.New("mls: unknown sender")
	ErrReInitPending        = errors.New("mls: group is being reinitialized and cannot be used to send")
	ErrInvalidWelcome       = errors.New("mls: invalid welcome")
	ErrInvalidGroupInfo     = errors.New("mls: invalid group info")
	ErrGroupExists          = errors.New("mls: a group with this id already exists")
	ErrUnsupportedExtension = errors.New("mls: unsupported group context extension")
)

// PSKLookup returns the secret of an external PSK, or of a resumption PSK
// of another group (reinit/branch). It returns an error wrapping
// ErrMissingPSK when the key is unknown.
type PSKLookup func(id *schedule.PreSharedKeyID) ([]byte, error)

// Config holds the policy knobs of a group. The zero value is usable.
type Config struct {
	// Rand is the randomness source (nil: crypto/rand). The identity's
	// provider supplies it.
	Rand io.Reader
	// Now is the clock for lifetime checks (nil: time.Now).
	Now func() time.Time
	// PSKs finds external and cross-group resumption PSKs (nil: none).
	PSKs PSKLookup
	// Credentials validates members' credentials (nil: BasicCredential with
	// a non-empty identity is accepted).
	Credentials CredentialValidator
	// HandshakeAsPublic sends proposals and commits as PublicMessage instead
	// of PrivateMessage (visible to the Delivery Service, RFC 9420 §6).
	HandshakeAsPublic bool
	// PaddingBlock pads PrivateMessage content to a multiple of this many
	// bytes (0: no padding).
	PaddingBlock int
	// MaxPastEpochs is how many past epochs are kept to open late
	// application messages (§14; 0: DefaultMaxPastEpochs; negative: none).
	MaxPastEpochs int
	// SecretTree bounds the out-of-order window of every ratchet.
	SecretTree schedule.Options
	// RatchetTreeInWelcome puts the ratchet_tree extension in the GroupInfo
	// of Welcomes (§12.4.3.3); otherwise the tree travels out of band.
	RatchetTreeInWelcome bool
	// Policy, when set, is the application's rules over its groups:
	// proposals, commits and application messages it refuses are rejected
	// (received) or not sent, with an error wrapping ErrPolicy.
	Policy Policy
	// MaxLeafLifetime bounds not_after - not_before of the key_package
	// leaves this member accepts (RFC 9420 §7.2: applications MUST define
	// one; 0: no bound — the official vectors use unbounded lifetimes).
	MaxLeafLifetime time.Duration
	// SendReservation, when above 1, lets Encrypt hand out that many
	// application generations per durable write: the saved ratchet state
	// stands that far ahead (see SendNeedsSave). It must stay below the
	// receivers' SecretTree.MaxForward, since a crash skips the unused ones.
	SendReservation uint32
}

// DefaultMaxPastEpochs is the default number of past epochs kept.
const DefaultMaxPastEpochs = 3

func (c *Config) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Config) maxPast() int {
	switch {
	case c.MaxPastEpochs < 0:
		return 0
	case c.MaxPastEpochs == 0:
		return DefaultMaxPastEpochs
	}
	return c.MaxPastEpochs
}

// Group is one member's state of a group in one epoch.
type Group struct {
	cfg    Config
	suite  *suite.Suite
	signer *suite.Signer

	ctx      GroupContext
	ctxBytes []byte // encoded ctx, cached
	tree     *tree.Tree
	myLeaf   tree.LeafIndex
	keys     tree.PrivateKeys // HPKE private keys held: own leaf and path nodes

	secrets         *schedule.EpochSecrets
	secretTree      *schedule.SecretTree
	interim         []byte // interim transcript hash
	confirmationTag []byte // of the commit that started this epoch

	// pending are the proposals received (or sent) in this epoch.
	pending []*pendingProposal
	// ownUpdates maps the ref of an Update this member proposed to the
	// private key of its new leaf, for when another member commits it.
	ownUpdates map[string][]byte
	// resumption holds this group's resumption PSKs of recent epochs (§8.6).
	resumption map[uint64][]byte
	// past are recent epochs kept to open late application messages.
	past []*pastEpoch
	// reinit is set when a commit with a ReInit proposal was merged (§11.2).
	reinit *ReInit
	// successor is the reinit/branch PSK the first commit of a group made
	// by ReInitGroup or Branch injects (group_reinit.go); nil otherwise.
	successor *successorPSK
	// removed is set when a commit removed this member.
	removed bool
	// sendMark is the first application generation of our own leaf that
	// the saved ratchet state does not cover (Config.SendReservation);
	// sendNeedsSave is set when Encrypt handed out a generation at or past
	// it. Both start at zero in a new epoch: the first send saves.
	sendMark      uint32
	sendNeedsSave bool
	// public is set only in the secret-less Group inside a PublicGroup
	// (publicgroup.go): no membership tag, PSK or key schedule.
	public bool
}

// pendingProposal is a proposal cached by reference (§12.1).
type pendingProposal struct {
	ref      []byte
	proposal *Proposal
	sender   Sender
}

// pastEpoch is what is kept of an earlier epoch to open its late messages.
type pastEpoch struct {
	ctx        GroupContext
	ctxBytes   []byte
	tree       *tree.Tree // immutable snapshot
	secretTree *schedule.SecretTree
	senderData []byte
}

// Suite returns the group's cipher suite.
func (g *Group) Suite() *suite.Suite { return g.suite }

// GroupID returns the group id.
func (g *Group) GroupID() []byte { return slices.Clone(g.ctx.GroupID) }

// Epoch returns the current epoch.
func (g *Group) Epoch() uint64 { return g.ctx.Epoch }

// Context returns a copy of the current GroupContext.
func (g *Group) Context() GroupContext {
	c := g.ctx
	c.Extensions = slices.Clone(g.ctx.Extensions)
	return c
}

// OwnLeafIndex returns this member's leaf index.
func (g *Group) OwnLeafIndex() tree.LeafIndex { return g.myLeaf }

// Removed reports whether a merged commit removed this member.
func (g *Group) Removed() bool { return g.removed }

// ReInitPending returns the ReInit proposal committed in this group, if any.
func (g *Group) ReInitPending() *ReInit { return g.reinit }

// EpochAuthenticator returns the epoch_authenticator (§8.7).
func (g *Group) EpochAuthenticator() []byte { return slices.Clone(g.secrets.EpochAuthenticator) }

// Export is the MLS exporter (§8.5).
func (g *Group) Export(label string, context []byte, length int) ([]byte, error) {
	return g.secrets.Export(label, context, length)
}

// RatchetTree returns the public ratchet tree, as carried by the
// ratchet_tree extension (§12.4.3.3).
func (g *Group) RatchetTree() tree.RatchetTreeNodes { return g.tree.Nodes() }

// Member is one leaf of the group.
type Member struct {
	LeafIndex    tree.LeafIndex
	Credential   tree.Credential
	SignatureKey []byte
}

// Members lists the non-blank leaves in leaf order.
func (g *Group) Members() []Member {
	var out []Member
	for i := tree.LeafIndex(0); uint32(i) < g.tree.NumLeaves(); i++ {
		if l := g.tree.Leaf(i); l != nil {
			out = append(out, Member{LeafIndex: i, Credential: l.Credential, SignatureKey: l.SignatureKey})
		}
	}
	return out
}

// Member returns the member at leaf i.
func (g *Group) Member(i tree.LeafIndex) (Member, bool) {
	if uint32(i) >= g.tree.NumLeaves() {
		return Member{}, false
	}
	l := g.tree.Leaf(i)
	if l == nil {
		return Member{}, false
	}
	return Member{LeafIndex: i, Credential: l.Credential, SignatureKey: l.SignatureKey}, true
}

// MemberCount is the number of non-blank leaves.
func (g *Group) MemberCount() int { return g.tree.MemberCount() }

// PendingProposals returns the number of proposals cached in this epoch.
func (g *Group) PendingProposals() int { return len(g.pending) }

// clone returns a shallow copy sharing immutable parts; slices and maps the
// copy may change are copied.
func (g *Group) clone() *Group {
	c := *g
	c.pending = slices.Clone(g.pending)
	c.ownUpdates = cloneMap(g.ownUpdates)
	c.resumption = cloneMap(g.resumption)
	c.past = slices.Clone(g.past)
	return &c
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (g *Group) setContext(ctx GroupContext) error {
	b, err := wire.Marshal(&ctx)
	if err != nil {
		return err
	}
	g.ctx, g.ctxBytes = ctx, b
	return nil
}

// --- creation (§11) ---

// LeafOptions describe this member's leaf node.
type LeafOptions struct {
	Credential   tree.Credential
	Capabilities *tree.Capabilities // nil: DefaultCapabilities(suite)
	Extensions   tree.Extensions
	Lifetime     time.Duration // for key_package-source leaves; 0: DefaultLifetime
}

// CreateGroup creates a one-member group (RFC 9420 §11). signer is the
// creator's signature key; groupID should be random (nil: Nh random bytes).
func CreateGroup(s *suite.Suite, signer *suite.Signer, groupID []byte, leaf LeafOptions, extensions tree.Extensions, cfg Config) (*Group, error) {
	if err := checkNewGroup(s, &leaf, extensions, cfg.Credentials); err != nil {
		return nil, err
	}
	rnd := cfg.rand()
	if groupID == nil {
		groupID = make([]byte, s.HashSize())
		if _, err := io.ReadFull(rnd, groupID); err != nil {
			return nil, err
		}
	}
	// The leaf key comes from cfg.Rand too, so that a caller-supplied
	// source makes the group deterministic (Config.Rand).
	encPriv, encPub, err := newHPKEKeyPair(s, rnd)
	if err != nil {
		return nil, err
	}
	ln, err := newLeafNode(s, signer, encPub, leaf, cfg.now())
	if err != nil {
		return nil, err
	}
	t, err := tree.NewWithLeaf(ln)
	if err != nil {
		return nil, err
	}
	g := &Group{cfg: cfg, suite: s, signer: signer, tree: t, myLeaf: 0,
		keys: tree.PrivateKeys{0: encPriv}}
	ctx := GroupContext{
		Version: tree.ProtocolVersionMLS10, CipherSuite: s.ID(), GroupID: slices.Clone(groupID),
		Epoch: 0, TreeHash: t.TreeHash(s), ConfirmedTranscriptHash: []byte{},
		Extensions: slices.Clone(extensions),
	}
	if err := ValidateLeafNode(s, ln, LeafUseKeyPackage, 0, cfg.now(), ValidateOptions{GroupContext: &ctx, Credentials: cfg.Credentials, MaxLifetime: cfg.MaxLeafLifetime}); err != nil {
		return nil, err
	}
	if err := g.setContext(ctx); err != nil {
		return nil, err
	}
	// "Epoch secret: a fresh random value" — drawn here as a random
	// init_secret run through the schedule, which yields a uniformly random
	// epoch_secret all the same.
	init := make([]byte, s.HashSize())
	defer clear(init)
	if _, err := io.ReadFull(rnd, init); err != nil {
		return nil, err
	}
	if err := g.setUpEpoch(epochInput{initSecret: init}); err != nil {
		return nil, err
	}
	return g, nil
}

// DefaultLifetime is the validity of new key packages and leaf nodes.
const DefaultLifetime = 90 * 24 * time.Hour

// newLeafNode builds and signs a key_package-source leaf node.
func newLeafNode(s *suite.Suite, signer *suite.Signer, encPub []byte, o LeafOptions, now time.Time) (*tree.LeafNode, error) {
	caps := DefaultCapabilities()
	if o.Capabilities != nil {
		caps = *o.Capabilities
	}
	life := o.Lifetime
	if life == 0 {
		life = DefaultLifetime
	}
	ln := &tree.LeafNode{
		EncryptionKey: encPub, SignatureKey: slices.Clone(signer.PublicKey()),
		Credential: o.Credential, Capabilities: caps,
		LeafNodeSource: tree.LeafNodeSourceKeyPackage,
		Lifetime: tree.Lifetime{
			NotBefore: uint64(now.Add(-time.Hour).Unix()),
			NotAfter:  uint64(now.Add(life).Unix()),
		},
		Extensions: slices.Clone(o.Extensions),
	}
	if err := ln.Sign(s, signer, nil, 0); err != nil {
		return nil, err
	}
	return ln, nil
}

// --- application messages (§15) ---

// Encrypt protects application data as a PrivateMessage (§6.3, §15). It
// advances this member's application ratchet in place: persist the group
// before the returned message leaves the process.
func (g *Group) Encrypt(data, authenticatedData []byte) (*Message, error) {
	if err := g.canSend(); err != nil {
		return nil, err
	}
	if len(g.pending) > 0 {
		return nil, fmt.Errorf("%w (%d)", ErrPendingProposals, len(g.pending))
	}
	if err := g.policyCheckApplication(&g.ctx, g.tree, MemberSender(g.myLeaf)); err != nil {
		return nil, err
	}
	fc := &FramedContent{
		GroupID: g.ctx.GroupID, Epoch: g.ctx.Epoch, Sender: MemberSender(g.myLeaf),
		AuthenticatedData: authenticatedData, ContentType: ContentTypeApplication,
		ApplicationData: data,
	}
	gen, err := g.secretTree.NextGeneration(g.myLeaf, schedule.ApplicationRatchet)
	if err != nil {
		return nil, err
	}
	m, err := g.protect(fc, WireFormatPrivateMessage)
	if err != nil {
		return nil, err
	}
	switch {
	case g.cfg.SendReservation <= 1:
		g.sendNeedsSave = true
	case gen >= g.sendMark:
		g.sendMark = gen + g.cfg.SendReservation
		g.sendNeedsSave = true
	}
	return m, nil
}

// SendNeedsSave reports whether the ratchet state must be saved
// (MarshalRatchetState) before the message of the last Encrypt may leave:
// always without Config.SendReservation, else only when that message used
// the last generation the saved state reserved. Saving clears it.
func (g *Group) SendNeedsSave() bool { return g.sendNeedsSave }

func (g *Group) canSend() error {
	switch {
	case g.removed:
		return ErrNotMember
	case g.reinit != nil:
		return ErrReInitPending
	}
	return nil
}

// protect signs fc and wraps it in wf with the current epoch's keys.
func (g *Group) protect(fc *FramedContent, wf WireFormat) (*Message, error) {
	ac, err := SignContent(g.signer, wf, fc, &g.ctx)
	if err != nil {
		return nil, err
	}
	return g.protectSigned(ac)
}

func (g *Group) protectSigned(ac *AuthenticatedContent) (*Message, error) {
	switch ac.WireFormat {
	case WireFormatPublicMessage:
		pm, err := ProtectPublic(g.suite, ac, &g.ctx, g.secrets.MembershipKey)
		if err != nil {
			return nil, err
		}
		return NewMessage(pm)
	default:
		pm, err := protectPrivate(g.suite, ac, PrivateKeys{SecretTree: g.secretTree, SenderDataSecret: g.secrets.SenderDataSecret},
			g.padding(ac), g.cfg.rand())
		if err != nil {
			return nil, err
		}
		return NewMessage(pm)
	}
}

// padding returns how many zero bytes bring the content to a multiple of
// PaddingBlock (§6.3.1).
func (g *Group) padding(ac *AuthenticatedContent) int {
	if g.cfg.PaddingBlock <= 1 {
		return 0
	}
	// The exact encoded PrivateMessageContent, whatever the content type.
	fc := &ac.Content
	pt, err := wire.Marshal(&privateMessageContent{ContentType: fc.ContentType, ApplicationData: fc.ApplicationData,
		Proposal: fc.Proposal, Commit: fc.Commit, Auth: ac.Auth})
	if err != nil {
		return 0 // ProtectPrivate reports the encoding error
	}
	if r := len(pt) % g.cfg.PaddingBlock; r != 0 {
		return g.cfg.PaddingBlock - r
	}
	return 0
}

func (g *Group) handshakeWireFormat() WireFormat {
	if g.cfg.HandshakeAsPublic {
		return WireFormatPublicMessage
	}
	return WireFormatPrivateMessage
}

// leafSignatureKey returns the signature key of the member at leaf i in t.
func leafSignatureKey(t *tree.Tree, i tree.LeafIndex) ([]byte, error) {
	if uint32(i) >= t.NumLeaves() {
		return nil, fmt.Errorf("%w: leaf %d outside the tree", ErrUnknownSender, i)
	}
	l := t.Leaf(i)
	if l == nil {
		return nil, fmt.Errorf("%w: leaf %d is blank", ErrUnknownSender, i)
	}
	return l.SignatureKey, nil
}

// findLeaf returns the index of a leaf equal to ln.
func findLeaf(t *tree.Tree, ln *tree.LeafNode) (tree.LeafIndex, bool) {
	want, err := wire.Marshal(ln)
	if err != nil {
		return 0, false
	}
	i, ok := t.FindSignatureKey(ln.SignatureKey)
	if !ok {
		return 0, false
	}
	got, err := wire.Marshal(t.Leaf(i))
	if err != nil || !bytes.Equal(got, want) {
		return 0, false
	}
	return i, true
}
