package relayclient

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spacepanda/spacepanda/relay/api"
)

// GroupPath is the path segment of a group id (base64url without padding,
// API.md).
func GroupPath(groupID []byte) string {
	return url.PathEscape(base64.RawURLEncoding.EncodeToString(groupID))
}

// CreateGroup registers the group a signed GroupInfo (MLSMessage, with
// the ratchet_tree extension) describes; our device must be in its tree.
// The relay verifies it and keeps the group's public state; the users of
// the tree are its first readers.
func (c *Client) CreateGroup(ctx context.Context, groupInfo []byte) error {
	return c.do(ctx, "POST", "/v1/groups", map[string]b64{"group_info": groupInfo}, nil, smallAnswer)
}

// PostCommit appends a commit (an MLSMessage with a PublicMessage) with
// the GroupInfo of the epoch it starts, and returns its sequence number.
// The relay verifies both against the group's public state: a refused
// commit is an *Error with code invalid_commit (the epoch stays open); a
// lost race a *CommitConflictError.
func (c *Client) PostCommit(ctx context.Context, groupID, commit, groupInfo []byte) (uint64, error) {
	return c.PostMessage(ctx, groupID, Post{Message: commit, GroupInfo: groupInfo})
}

// EpochState is the relay's verified public state of one epoch.
type EpochState struct {
	Epoch                   uint64
	TreeHash                []byte
	ConfirmedTranscriptHash []byte
}

// EpochState returns the tree hash and confirmed transcript hash the relay
// verified for an epoch of the group: what a joiner compares the
// GroupInfo of its Welcome with. ErrNotFound (code no_epoch) when the
// relay has no verified state of that epoch.
func (c *Client) EpochState(ctx context.Context, groupID []byte, epoch uint64) (*EpochState, error) {
	var out struct {
		Epoch                   uint64 `json:"epoch"`
		TreeHash                b64    `json:"tree_hash"`
		ConfirmedTranscriptHash b64    `json:"confirmed_transcript_hash"`
	}
	path := "/v1/groups/" + GroupPath(groupID) + "/epochs/" + strconv.FormatUint(epoch, 10)
	if err := c.do(ctx, "GET", path, nil, &out, smallAnswer); err != nil {
		return nil, err
	}
	return &EpochState{Epoch: out.Epoch, TreeHash: out.TreeHash, ConfirmedTranscriptHash: out.ConfirmedTranscriptHash}, nil
}

// Post is a message to append to a group's log.
type Post struct {
	Message []byte // MLSMessage: at most api.MaxMessageSize(kind)
	// Kind and Epoch, when Kind is set, are checked by the relay against
	// the message's framing; left out, the framing says them.
	Kind  string
	Epoch uint64
	// GroupInfo (commits, required) is the signed GroupInfo of the epoch
	// the commit starts; the relay derives who is added and removed from
	// the commit itself.
	GroupInfo []byte
}

// PostMessage appends to the group's log and returns the entry's sequence
// number. A refused commit is a *CommitConflictError; a message for an
// epoch the relay has not reached an *EpochError.
func (c *Client) PostMessage(ctx context.Context, groupID []byte, p Post) (uint64, error) {
	req := struct {
		Message   b64     `json:"message"`
		Kind      string  `json:"kind,omitempty"`
		Epoch     *uint64 `json:"epoch,omitempty"`
		GroupInfo b64     `json:"group_info,omitempty"`
	}{Message: p.Message, Kind: p.Kind, GroupInfo: p.GroupInfo}
	if p.Kind != "" {
		req.Epoch = &p.Epoch
	}
	var out struct {
		Seq uint64 `json:"seq"`
	}
	err := c.do(ctx, "POST", "/v1/groups/"+GroupPath(groupID)+"/messages", req, &out, smallAnswer)
	return out.Seq, err
}

// PostResult is one message's outcome of PostMessages: its seq, or the
// error a PostMessage of it alone would have returned (an *EpochError
// for a future epoch).
type PostResult struct {
	Seq uint64
	Err error
}

// PostMessages appends application messages of the group in order, in one
// request (at most api.MaxBatchMessages; relay/API.md). The error is the
// request's; each message's outcome is in its result.
func (c *Client) PostMessages(ctx context.Context, groupID []byte, msgs [][]byte) ([]PostResult, error) {
	req := struct {
		Messages []b64 `json:"messages"`
	}{Messages: make([]b64, len(msgs))}
	for i, m := range msgs {
		req.Messages[i] = m
	}
	var out struct {
		Results []struct {
			Seq   uint64 `json:"seq"`
			Error *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
			CurrentEpoch *uint64 `json:"current_epoch"`
		} `json:"results"`
	}
	if err := c.do(ctx, "POST", "/v1/groups/"+GroupPath(groupID)+"/messages/batch", req, &out, smallAnswer*int64(len(msgs)+1)); err != nil {
		return nil, err
	}
	if len(out.Results) != len(msgs) {
		return nil, fmt.Errorf("relayclient: batch: %d results for %d messages", len(out.Results), len(msgs))
	}
	rs := make([]PostResult, len(msgs))
	for i, r := range out.Results {
		if r.Error == nil {
			rs[i].Seq = r.Seq
			continue
		}
		e := &Error{Status: batchStatus(r.Error.Code), Code: r.Error.Code, Message: strings.ToValidUTF8(r.Error.Message, "?")}
		if r.Error.Code == "future_epoch" || r.Error.Code == "stale_epoch" {
			var cur uint64
			if r.CurrentEpoch != nil {
				cur = *r.CurrentEpoch
			}
			rs[i].Err = &EpochError{Err: e, CurrentEpoch: cur}
		} else {
			rs[i].Err = e
		}
	}
	return rs, nil
}

// batchStatus is the status a refused batch entry would have had alone.
func batchStatus(code string) int {
	switch code {
	case "forbidden":
		return http.StatusForbidden
	case "not_found":
		return http.StatusNotFound
	case "future_epoch", "stale_epoch", "commit_conflict", "group_full", "limit":
		return http.StatusConflict
	case "internal":
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
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
	// the group (nil for a group registered before the relay verified).
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
