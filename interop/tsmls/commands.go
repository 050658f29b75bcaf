package tsmls

// Typed wrappers for the peer's commands. []byte fields travel as standard
// base64, which is how encoding/json encodes []byte.

// Init makes the peer's signature key pair and BasicCredential(identity) in
// cipher suite suiteID (RFC 9420 §17.1 numbering; ts-mls handles 1..7 with
// the dependencies in package.json). It must be the first command.
func (p *Peer) Init(identity string, suiteID uint16) error {
	return p.Call(map[string]any{"cmd": "init", "identity": identity, "suite": suiteID}, nil)
}

// InitWithLifetime is Init with key packages whose lifetime runs from an
// hour ago to lifetimeSeconds from now, instead of ts-mls's default
// [0, 2^63-1].
func (p *Peer) InitWithLifetime(identity string, suiteID uint16, lifetimeSeconds int) error {
	return p.Call(map[string]any{"cmd": "init", "identity": identity, "suite": suiteID, "lifetime_seconds": lifetimeSeconds}, nil)
}

// KeyPackage returns a fresh KeyPackage as an MLSMessage (RFC 9420 §10) and
// the peer's KeyPackageRef for it (§5.2). The peer keeps the private keys
// for Join.
func (p *Peer) KeyPackage() (keyPackage, ref []byte, err error) {
	var r struct {
		KeyPackage []byte `json:"key_package"`
		Ref        []byte `json:"ref"`
	}
	if err := p.Call(map[string]any{"cmd": "key_package"}, &r); err != nil {
		return nil, nil, err
	}
	return r.KeyPackage, r.Ref, nil
}

// CreateGroup creates a one-member group at epoch 0 with no extensions.
func (p *Peer) CreateGroup(groupID []byte) error {
	return p.Call(map[string]any{"cmd": "create_group", "group_id": groupID}, nil)
}

// CommitResult is what the peer returns for a commit it made and merged.
type CommitResult struct {
	// Commit is an MLSMessage holding a PublicMessage or PrivateMessage
	// (see SetHandshake).
	Commit []byte `json:"commit"`
	// Welcome (an MLSMessage) and RatchetTree (ratchet_tree extension data)
	// are set when the commit added members.
	Welcome     []byte `json:"welcome"`
	RatchetTree []byte `json:"ratchet_tree"`
	// Epoch is the peer's epoch after merging the commit.
	Epoch uint64 `json:"epoch"`
}

func (p *Peer) handshake(m map[string]any) map[string]any {
	p.mu.Lock()
	o := p.wire
	p.mu.Unlock()
	if o.PublicMessage {
		m["wire_format"] = "public"
	} else {
		m["wire_format"] = "private"
	}
	m["ratchet_tree_extension"] = o.RatchetTreeExtension
	return m
}

func (p *Peer) commit(m map[string]any) (*CommitResult, error) {
	var r CommitResult
	if err := p.Call(p.handshake(m), &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Add commits Add proposals for the key packages (MLSMessages) and merges
// the commit. ts-mls sends add-only commits without an UpdatePath.
func (p *Peer) Add(groupID []byte, keyPackages ...[]byte) (*CommitResult, error) {
	return p.commit(map[string]any{"cmd": "add", "group_id": groupID, "key_packages": keyPackages})
}

// Update commits an empty proposal list, which carries an UpdatePath (a
// self-update, RFC 9420 §12.4). It fails when proposals are pending; use
// Commit then.
func (p *Peer) Update(groupID []byte) (*CommitResult, error) {
	return p.commit(map[string]any{"cmd": "update", "group_id": groupID})
}

// Commit commits the pending proposals (by reference) and merges it.
func (p *Peer) Commit(groupID []byte) (*CommitResult, error) {
	return p.commit(map[string]any{"cmd": "commit", "group_id": groupID})
}

// Remove commits a Remove proposal for the member whose BasicCredential
// identity is identity.
func (p *Peer) Remove(groupID []byte, identity string) (*CommitResult, error) {
	return p.commit(map[string]any{"cmd": "remove", "group_id": groupID, "identity": identity})
}

// ProposeAdd sends an Add proposal (an MLSMessage) without committing it.
func (p *Peer) ProposeAdd(groupID, keyPackage []byte) ([]byte, error) {
	var r struct {
		Message []byte `json:"message"`
	}
	err := p.Call(p.handshake(map[string]any{"cmd": "propose_add", "group_id": groupID, "key_package": keyPackage}), &r)
	return r.Message, err
}

// ProposeRemove sends a Remove proposal (an MLSMessage) without committing
// it.
func (p *Peer) ProposeRemove(groupID []byte, identity string) ([]byte, error) {
	var r struct {
		Message []byte `json:"message"`
	}
	err := p.Call(p.handshake(map[string]any{"cmd": "propose_remove", "group_id": groupID, "identity": identity}), &r)
	return r.Message, err
}

// JoinResult is the group a Welcome put the peer into.
type JoinResult struct {
	GroupID []byte `json:"group_id"`
	Epoch   uint64 `json:"epoch"`
}

// Join processes a Welcome (an MLSMessage) for one of the peer's key
// packages. ratchetTree is the ratchet_tree extension data, or nil when the
// Welcome's GroupInfo carries the ratchet_tree extension.
func (p *Peer) Join(welcome, ratchetTree []byte) (*JoinResult, error) {
	var r JoinResult
	if err := p.Call(map[string]any{"cmd": "join", "welcome": welcome, "ratchet_tree": ratchetTree}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Send encrypts application data as a PrivateMessage (an MLSMessage).
func (p *Peer) Send(groupID, data []byte) ([]byte, error) {
	var r struct {
		Message []byte `json:"message"`
	}
	if err := p.Call(map[string]any{"cmd": "send", "group_id": groupID, "data": data}, &r); err != nil {
		return nil, err
	}
	return r.Message, nil
}

// Message kinds reported by Process.
const (
	KindApplication = "application"
	KindCommit      = "commit"
	KindProposal    = "proposal"
)

// Processed is the result of Process.
type Processed struct {
	Kind string `json:"kind"`
	// Data is the application data (nil unless Kind is application).
	Data []byte `json:"data"`
	// Epoch is the peer's epoch after processing.
	Epoch uint64 `json:"epoch"`
	// Sender is the sender's BasicCredential identity ("" if not a member).
	Sender string `json:"sender"`
	// SenderLeaf is the sender's leaf index, nil if not a member.
	SenderLeaf *uint32 `json:"sender_leaf"`
	// Removed is true when a commit removed the peer from the group.
	Removed bool `json:"removed"`
}

// Process handles an MLSMessage holding a PublicMessage or PrivateMessage
// (application message, proposal or commit) and accepts every proposal.
func (p *Peer) Process(groupID, message []byte) (*Processed, error) {
	var r Processed
	if err := p.Call(map[string]any{"cmd": "process", "group_id": groupID, "message": message}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Member is one leaf of the peer's ratchet tree.
type Member struct {
	Identity  string `json:"identity"`
	LeafIndex uint32 `json:"leaf_index"`
}

// Members lists the group's members in leaf order.
func (p *Peer) Members(groupID []byte) ([]Member, error) {
	var r struct {
		Members []Member `json:"members"`
	}
	if err := p.Call(map[string]any{"cmd": "members", "group_id": groupID}, &r); err != nil {
		return nil, err
	}
	return r.Members, nil
}

// Epoch returns the peer's current epoch.
func (p *Peer) Epoch(groupID []byte) (uint64, error) {
	var r struct {
		Epoch uint64 `json:"epoch"`
	}
	err := p.Call(map[string]any{"cmd": "epoch", "group_id": groupID}, &r)
	return r.Epoch, err
}

// EpochAuthenticator returns the current epoch_authenticator (RFC 9420
// §8.7).
func (p *Peer) EpochAuthenticator(groupID []byte) ([]byte, error) {
	var r struct {
		EpochAuthenticator []byte `json:"epoch_authenticator"`
	}
	if err := p.Call(map[string]any{"cmd": "epoch_authenticator", "group_id": groupID}, &r); err != nil {
		return nil, err
	}
	return r.EpochAuthenticator, nil
}

// Export returns MLS-Exporter(label, context, length) of the current epoch
// (RFC 9420 §8.5).
func (p *Peer) Export(groupID []byte, label string, context []byte, length int) ([]byte, error) {
	if context == nil {
		context = []byte{}
	}
	var r struct {
		Secret []byte `json:"secret"`
	}
	if err := p.Call(map[string]any{"cmd": "export", "group_id": groupID, "label": label, "context": context, "length": length}, &r); err != nil {
		return nil, err
	}
	return r.Secret, nil
}

// RatchetTree returns the peer's ratchet tree as ratchet_tree extension data
// (trailing blank nodes stripped).
func (p *Peer) RatchetTree(groupID []byte) ([]byte, error) {
	var r struct {
		RatchetTree []byte `json:"ratchet_tree"`
	}
	if err := p.Call(map[string]any{"cmd": "ratchet_tree", "group_id": groupID}, &r); err != nil {
		return nil, err
	}
	return r.RatchetTree, nil
}

// GroupInfo returns a signed GroupInfo (an MLSMessage) for the current epoch
// with the external_pub and ratchet_tree extensions.
func (p *Peer) GroupInfo(groupID []byte) ([]byte, error) {
	var r struct {
		GroupInfo []byte `json:"group_info"`
	}
	if err := p.Call(map[string]any{"cmd": "group_info", "group_id": groupID}, &r); err != nil {
		return nil, err
	}
	return r.GroupInfo, nil
}
