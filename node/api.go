package node

// The JSON shapes of the HTTP API v1. Binary MLS objects travel as standard
// base64 of their RFC 9420 wire encoding, framed as MLSMessage where the RFC
// defines one; a ratchet tree is the TLS encoding of the ratchet_tree
// extension data.

type IdentityResponse struct {
	UserID       string `json:"user_id"`
	Name         string `json:"name"`
	SignatureKey string `json:"signature_key"`
	Ciphersuite  uint16 `json:"ciphersuite"`
}

type KeyPackagesRequest struct {
	Count int `json:"count"`
}

type KeyPackagesResponse struct {
	KeyPackages []string `json:"key_packages"`
}

type KeyPackageCountResponse struct {
	Valid int `json:"valid"`
}

type CreateChannelRequest struct {
	Name     string `json:"name"`
	IsPublic bool   `json:"is_public"`
}

type ChannelResponse struct {
	ChannelID   string `json:"channel_id"`
	Name        string `json:"name"`
	GroupID     string `json:"group_id"`
	Epoch       uint64 `json:"epoch"`
	MemberCount int    `json:"member_count,omitempty"`
	IsPublic    bool   `json:"is_public"`
}

type ChannelsResponse struct {
	Channels []ChannelResponse `json:"channels"`
}

type InviteRequest struct {
	KeyPackage string `json:"key_package"`
	// Role the invitee gets (admin, member, read-only), set in the same
	// commit as its Add; empty: member.
	Role string `json:"role,omitempty"`
}

type InviteResponse struct {
	Welcome     string `json:"welcome"`
	RatchetTree string `json:"ratchet_tree"`
	Commit      string `json:"commit"`
	Epoch       uint64 `json:"epoch"`
	// Invite is the whole InviteToken (channel descriptor, Welcome, tree,
	// times), base64, for clients that pass invites around as one value.
	Invite string `json:"invite,omitempty"`
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
	MessageID  string `json:"message_id"`
	Ciphertext string `json:"ciphertext"`
}

type InboxRequest struct {
	Message string `json:"message"`
}

type ChatMessage struct {
	MessageID string `json:"message_id"`
	Sender    string `json:"sender"`
	Text      string `json:"text"`
	Timestamp string `json:"timestamp"`
	ReplyTo   string `json:"reply_to,omitempty"`
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
}

type MemberResponse struct {
	UserID    string `json:"user_id"`
	LeafIndex uint32 `json:"leaf_index"`
	// Role is admin, member or read-only (omitted: the channel has no roles).
	Role string `json:"role,omitempty"`
}

// SetRoleRequest is the body of PUT /v1/channels/{id}/members/{user_id}/role.
type SetRoleRequest struct {
	Role string `json:"role"`
}

type MembersResponse struct {
	Members []MemberResponse `json:"members"`
}

type CommitResponse struct {
	Commit string `json:"commit"`
	Epoch  uint64 `json:"epoch"`
}
