package relayclient

import (
	"context"
	"encoding/base64"
	"net/url"
	"strconv"
	"time"

	"github.com/spacepanda/spacepanda/relay/api"
)

// GroupPath is the path segment of a group id (base64url without padding,
// API.md).
func GroupPath(groupID []byte) string {
	return url.PathEscape(base64.RawURLEncoding.EncodeToString(groupID))
}

// CreateGroup registers a new group with us as its only reader.
func (c *Client) CreateGroup(ctx context.Context, groupID []byte) error {
	return c.do(ctx, "POST", "/v1/groups", map[string]b64{"group_id": groupID}, nil, smallAnswer)
}

// Post is a message to append to a group's log.
type Post struct {
	Message []byte // MLSMessage: at most api.MaxMessageSize(kind)
	// Kind and Epoch, when Kind is set, are checked by the relay against
	// the message's framing; left out, the framing says them.
	Kind  string
	Epoch uint64
	// Added and Removed (commits) are the committer's statement of the
	// user ids it adds and removes; they go away when the relay verifies
	// commits itself.
	Added   []string
	Removed []string
}

// PostMessage appends to the group's log and returns the entry's sequence
// number. A refused commit is a *CommitConflictError; a message for an
// epoch the relay has not reached an *EpochError.
func (c *Client) PostMessage(ctx context.Context, groupID []byte, p Post) (uint64, error) {
	req := struct {
		Message b64      `json:"message"`
		Kind    string   `json:"kind,omitempty"`
		Epoch   *uint64  `json:"epoch,omitempty"`
		Added   []string `json:"added,omitempty"`
		Removed []string `json:"removed,omitempty"`
	}{Message: p.Message, Kind: p.Kind, Added: p.Added, Removed: p.Removed}
	if p.Kind != "" {
		req.Epoch = &p.Epoch
	}
	var out struct {
		Seq uint64 `json:"seq"`
	}
	err := c.do(ctx, "POST", "/v1/groups/"+GroupPath(groupID)+"/messages", req, &out, smallAnswer)
	return out.Seq, err
}

// Entry is one entry of a group's log.
type Entry struct {
	Seq          uint64    `json:"seq"`
	Message      b64       `json:"message"`
	Kind         string    `json:"kind"`
	Epoch        uint64    `json:"epoch"`
	Sender       string    `json:"sender"`
	SenderDevice string    `json:"sender_device"`
	ReceivedAt   time.Time `json:"received_at"`
}

// Page selects a page of a group's log.
type Page struct {
	After uint64        // entries with a greater seq
	Wait  time.Duration // long-poll when there are none (at most 60 s at the relay)
	Limit int           // entries (0: the relay's default, api.DefaultPageEntries)
	// MaxBytes caps the page's message data (0: the relay's default and
	// maximum, api.MaxPageBytes); an entry larger than it comes alone.
	MaxBytes int
}

// Messages reads a page of the group's log. next is the seq to read after
// next time.
func (c *Client) Messages(ctx context.Context, groupID []byte, p Page) (entries []Entry, next uint64, err error) {
	q := url.Values{"after": {strconv.FormatUint(p.After, 10)}}
	if p.Wait > 0 {
		q.Set("wait", strconv.FormatFloat(p.Wait.Seconds(), 'f', 3, 64))
	}
	limit := api.DefaultPageEntries
	if p.Limit > 0 {
		limit = min(p.Limit, api.MaxPageEntries)
		q.Set("limit", strconv.Itoa(limit))
	}
	if p.MaxBytes > 0 {
		q.Set("max_bytes", strconv.Itoa(min(p.MaxBytes, api.MaxPageBytes)))
	}
	var out struct {
		Messages []Entry `json:"messages"`
		Next     uint64  `json:"next"`
	}
	err = c.do(ctx, "GET", "/v1/groups/"+GroupPath(groupID)+"/messages?"+q.Encode(), nil, &out, pageBound(limit, 0))
	if err == nil && out.Next < p.After {
		out.Next = p.After
	}
	return out.Messages, out.Next, err
}

// Cursor is this device's saved read position in the group's log.
func (c *Client) Cursor(ctx context.Context, groupID []byte) (uint64, error) {
	var out struct {
		After uint64 `json:"after"`
	}
	err := c.do(ctx, "GET", "/v1/groups/"+GroupPath(groupID)+"/cursor", nil, &out, smallAnswer)
	return out.After, err
}

// SetCursor saves this device's read position.
func (c *Client) SetCursor(ctx context.Context, groupID []byte, after uint64) error {
	return c.do(ctx, "PUT", "/v1/groups/"+GroupPath(groupID)+"/cursor", map[string]uint64{"after": after}, nil, smallAnswer)
}

// PutGroupInfo stores the group's GroupInfo (MLSMessage) of epoch.
func (c *Client) PutGroupInfo(ctx context.Context, groupID, groupInfo []byte, epoch uint64) error {
	req := struct {
		GroupInfo b64    `json:"group_info"`
		Epoch     uint64 `json:"epoch"`
	}{groupInfo, epoch}
	return c.do(ctx, "PUT", "/v1/groups/"+GroupPath(groupID)+"/group-info", req, nil, smallAnswer)
}

// GroupInfo returns the group's latest GroupInfo and its epoch.
func (c *Client) GroupInfo(ctx context.Context, groupID []byte) ([]byte, uint64, error) {
	var out struct {
		GroupInfo b64    `json:"group_info"`
		Epoch     uint64 `json:"epoch"`
	}
	err := c.do(ctx, "GET", "/v1/groups/"+GroupPath(groupID)+"/group-info", nil, &out, groupInfoBound)
	return out.GroupInfo, out.Epoch, err
}

// GroupState is what the relay knows of a group.
type GroupState struct {
	GroupID []byte
	Epoch   uint64
	// TreeHash is the tree hash of the relay's verified public state of
	// the group; nil until the relay verifies commits.
	TreeHash []byte
	Members  []string
	LastSeq  uint64
}

// Group returns the relay's view of the group.
func (c *Client) Group(ctx context.Context, groupID []byte) (*GroupState, error) {
	var out struct {
		GroupID  b64      `json:"group_id"`
		Epoch    uint64   `json:"epoch"`
		TreeHash b64      `json:"tree_hash"`
		Members  []string `json:"members"`
		LastSeq  uint64   `json:"last_seq"`
	}
	if err := c.do(ctx, "GET", "/v1/groups/"+GroupPath(groupID), nil, &out, groupBound); err != nil {
		return nil, err
	}
	return &GroupState{GroupID: out.GroupID, Epoch: out.Epoch, TreeHash: out.TreeHash, Members: out.Members, LastSeq: out.LastSeq}, nil
}
