package node

// The JSON shapes of the HTTP API v1 (CONTRACT "Node HTTP API"). Binary
// MLS objects travel as standard base64 of their RFC 9420 wire encoding,
// framed as MLSMessage where the RFC defines one; a ratchet tree is the
// TLS encoding of the ratchet_tree extension data. Times are RFC 3339 UTC.

type IdentityResponse struct {
	UserID       string `json:"user_id"`
	DisplayName  string `json:"display_name"`
	DeviceID     string `json:"device_id"`
	Fingerprint  string `json:"fingerprint"`
	SignatureKey string `json:"signature_key"`
	Ciphersuite  uint16 `json:"ciphersuite"`
	// Relay is null without a relay.
	Relay *RelayInfo `json:"relay"`
	// Name is DisplayName (kept for older clients).
	Name string `json:"name"`
}

type RelayInfo struct {
	URL       string `json:"url"`
	Reachable bool   `json:"reachable"`
}

type ReadyResponse struct {
	Status string `json:"status"` // ok, degraded
	Relay  string `json:"relay"`  // none, reachable, unreachable
}

type KeyPackagesRequest struct {
	Count int `json:"count"`
}

type KeyPackagesResponse struct {
	KeyPackages []string `json:"key_packages"`
}

type KeyPackageCountResponse struct {
	Available int `json:"available"`
	// Valid is Available (kept for older clients).
	Valid int `json:"valid"`
}

type CreateChannelRequest struct {
	Name     string `json:"name"`
	IsPublic bool   `json:"is_public"`
	// Roles (default true): false makes a plain RFC 9420 channel.
	Roles *bool `json:"roles,omitempty"`
}

type ChannelResponse struct {
	ChannelID   string `json:"channel_id"`
	Name        string `json:"name"`
	GroupID     string `json:"group_id"`
	Epoch       uint64 `json:"epoch"`
	State       string `json:"state"` // active, removed, left
	Roles       bool   `json:"roles"`
	MemberCount int    `json:"member_count"`
	IsPublic    bool   `json:"is_public"`
	Unread      int    `json:"unread"`
	RemovedBy   string `json:"removed_by,omitempty"`
	// RecoveryCausedBy is the member whose commit this node could not
	// process, forcing its last rejoin by external commit.
	RecoveryCausedBy string `json:"recovery_caused_by,omitempty"`
}

type ChannelsResponse struct {
	Channels []ChannelResponse `json:"channels"`
}

// InviteRequest invites by user id (relay: every device's key package is
// claimed from its directory) or by key package (no relay).
type InviteRequest struct {
	UserID     string `json:"user_id,omitempty"`
	KeyPackage string `json:"key_package,omitempty"`
	// Role the invitee gets (admin, member, read_only), set in the same
	// commit as its Add; empty: member.
	Role string `json:"role,omitempty"`
}

type InviteResponse struct {
	Status string `json:"status"`       // sent or queued (relay), merged (no relay)
	ID     string `json:"id,omitempty"` // the change (relay), see CommitResponse
	Epoch  uint64 `json:"epoch"`
	// Without a relay: what the caller carries.
	Welcome     string `json:"welcome,omitempty"`
	RatchetTree string `json:"ratchet_tree,omitempty"`
	Commit      string `json:"commit,omitempty"`
	// Invite is the whole InviteToken (channel descriptor, Welcome, tree,
	// times), base64, for clients that pass invites around as one value.
	Invite     string   `json:"invite,omitempty"`
	UserIDs    []string `json:"user_ids,omitempty"`
	LastResort bool     `json:"last_resort,omitempty"`
}

type JoinRequest struct {
	Welcome     string `json:"welcome,omitempty"`
	RatchetTree string `json:"ratchet_tree,omitempty"`
	// Invite is an InviteToken as returned by the invites endpoint; it
	// carries the channel's name and id.
	Invite string `json:"invite,omitempty"`
}

type SendRequest struct {
	Text    string `json:"text"`
	ReplyTo string `json:"reply_to,omitempty"`
}

type SendResponse struct {
	MessageID string `json:"message_id"`
	Status    string `json:"status"` // queued, sent
	SentAt    string `json:"sent_at"`
	Epoch     uint64 `json:"epoch"`
	// Ciphertext (no relay) is the MLSMessage for the other members.
	Ciphertext string `json:"ciphertext,omitempty"`
}

type InboxRequest struct {
	Message string `json:"message"`
}

type SenderInfo struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"display_name"`
	Verified    bool   `json:"verified"`
}

type ChatMessage struct {
	Seq        uint64     `json:"seq"`
	MessageID  string     `json:"message_id"`
	Sender     SenderInfo `json:"sender"`
	Text       string     `json:"text"`
	ReplyTo    string     `json:"reply_to,omitempty"`
	SentAt     string     `json:"sent_at"`
	ReceivedAt string     `json:"received_at"`
	Status     string     `json:"status,omitempty"` // own messages: queued, sent
}

type InboxResponse struct {
	Kind    string       `json:"kind"` // application, commit, proposal
	Epoch   uint64       `json:"epoch"`
	Message *ChatMessage `json:"message"`
	// Removed is true when the processed commit removed this node.
	Removed bool `json:"removed,omitempty"`
}

type MessagesResponse struct {
	Messages []ChatMessage `json:"messages"`
	// Next is the seq to pass as after (or before) for the next page; null: none.
	Next *uint64 `json:"next"`
}

type DeviceResponse struct {
	DeviceID  string `json:"device_id"`
	LeafIndex uint32 `json:"leaf_index"`
}

type MemberResponse struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"display_name"`
	// Role is admin, member or read_only (omitted: the channel has no roles).
	Role        string           `json:"role,omitempty"`
	Fingerprint string           `json:"fingerprint"`
	Verified    bool             `json:"verified"`
	Unverified  bool             `json:"unverified"`
	Devices     []DeviceResponse `json:"devices"`
	// LeafIndex is the first device's leaf.
	LeafIndex uint32 `json:"leaf_index"`
}

// SetRoleRequest is the body of PUT /v1/channels/{id}/members/{user_id}/role.
type SetRoleRequest struct {
	Role string `json:"role"`
}

type MembersResponse struct {
	Members []MemberResponse `json:"members"`
}

type CommitResponse struct {
	Status string `json:"status"` // sent, queued, merged
	// ID names a state change made through the outbox (relay): queued,
	// its status is in GET .../changes and in delivery events.
	ID    string `json:"id,omitempty"`
	Epoch uint64 `json:"epoch"` // 0 while queued
	// Commit (no relay) is the MLSMessage for the other members.
	Commit string `json:"commit,omitempty"`
}

// ChangeResponse is one state change of GET /v1/channels/{id}/changes.
type ChangeResponse struct {
	ID       string `json:"id"`
	Op       string `json:"op"` // invite, remove, role, update
	UserID   string `json:"user_id,omitempty"`
	Role     string `json:"role,omitempty"`
	Status   string `json:"status"` // queued, sent, failed
	Error    string `json:"error,omitempty"`
	Epoch    uint64 `json:"epoch,omitempty"`
	QueuedAt string `json:"queued_at"`
	DoneAt   string `json:"done_at,omitempty"`
}

type ChangesResponse struct {
	Changes []ChangeResponse `json:"changes"`
}

type InvitationResponse struct {
	InvitationID string     `json:"invitation_id"`
	ChannelName  string     `json:"channel_name"`
	Inviter      SenderInfo `json:"inviter"`
	ReceivedAt   string     `json:"received_at"`
}

type InvitationsResponse struct {
	Invitations []InvitationResponse `json:"invitations"`
}

type ContactRequest struct {
	Verified *bool `json:"verified,omitempty"`
}

type ContactResponse struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"display_name"`
	Fingerprint string `json:"fingerprint"`
	Verified    bool   `json:"verified"`
	KeyChanged  bool   `json:"key_changed"`
}

type ContactsResponse struct {
	Contacts []ContactResponse `json:"contacts"`
}

type SafetyNumberResponse struct {
	UserID       string `json:"user_id"`
	SafetyNumber string `json:"safety_number"`
	Verified     bool   `json:"verified"`
}

// RelayStatus is GET /v1/relay: the relay and the followed channels.
type RelayStatus struct {
	URL         string                 `json:"url"`
	UserID      string                 `json:"user_id"`
	Reachable   bool                   `json:"reachable"`
	OutboxDepth int                    `json:"outbox_depth"`
	RateLimited int64                  `json:"rate_limited"`
	Channels    []RelayChannelProgress `json:"channels"`
}

// RelayChannelProgress is how far the node has read a channel's log.
type RelayChannelProgress struct {
	ChannelID string `json:"channel_id"`
	Cursor    uint64 `json:"cursor"`
	Held      int    `json:"held"`
	Done      bool   `json:"done"`
}

// Older names of the relay-mode shapes (one shape per route now).
type (
	RelayInviteResponse   = InviteResponse
	RelaySendResponse     = SendResponse
	RelayChatMessage      = ChatMessage
	RelayMessagesResponse = MessagesResponse
)
