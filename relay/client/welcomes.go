package relayclient

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// Welcome is a Welcome to queue or a queued one. It carries no plaintext
// about the group: what a joiner needs to know travels inside the
// encrypted GroupInfo.
type Welcome struct {
	ID          uint64 // queued ones
	From        string // queued ones: the sender's user id
	FromDevice  string // queued ones: the sender's device id
	CreatedAt   time.Time
	Recipients  []string // to queue: user ids, members of GroupID at the relay
	Welcome     []byte   // MLSMessage(Welcome), at most api.MaxWelcomeSize
	RatchetTree []byte   // optional, at most api.MaxRatchetTreeSize
	GroupID     []byte
}

// PostWelcome queues w for its recipients, who must be members of the
// group at the relay already (ErrNotMember otherwise): post it after the
// commit that adds them is accepted.
func (c *Client) PostWelcome(ctx context.Context, w Welcome) ([]uint64, error) {
	req := struct {
		Recipients  []string `json:"recipients"`
		Welcome     b64      `json:"welcome"`
		RatchetTree b64      `json:"ratchet_tree,omitempty"`
		GroupID     b64      `json:"group_id"`
	}{w.Recipients, w.Welcome, w.RatchetTree, w.GroupID}
	var out struct {
		IDs []uint64 `json:"ids"`
	}
	err := c.do(ctx, "POST", "/v1/welcomes", req, &out, smallAnswer)
	return out.IDs, err
}

// Welcomes returns the Welcomes queued for us that this device has not
// acknowledged, waiting up to wait when there are none (long-poll). A page
// holds at most api.MaxPageBytes of Welcomes (one larger comes alone).
func (c *Client) Welcomes(ctx context.Context, wait time.Duration) ([]Welcome, error) {
	path := "/v1/welcomes"
	if wait > 0 {
		path += "?" + url.Values{"wait": {strconv.FormatFloat(wait.Seconds(), 'f', 3, 64)}}.Encode()
	}
	var out struct {
		Welcomes []struct {
			ID          uint64    `json:"id"`
			Welcome     b64       `json:"welcome"`
			RatchetTree b64       `json:"ratchet_tree"`
			GroupID     b64       `json:"group_id"`
			From        string    `json:"from"`
			FromDevice  string    `json:"from_device"`
			CreatedAt   time.Time `json:"created_at"`
		} `json:"welcomes"`
	}
	if err := c.do(ctx, "GET", path, nil, &out, welcomesBound); err != nil {
		return nil, err
	}
	ws := make([]Welcome, len(out.Welcomes))
	for i, w := range out.Welcomes {
		ws[i] = Welcome{ID: w.ID, From: w.From, FromDevice: w.FromDevice, CreatedAt: w.CreatedAt, Welcome: w.Welcome,
			RatchetTree: w.RatchetTree, GroupID: w.GroupID}
	}
	return ws, nil
}

// AckWelcome tells the relay this device is done with a queued Welcome
// (used or given up on); it is deleted once every device of ours is.
func (c *Client) AckWelcome(ctx context.Context, id uint64) error {
	return c.do(ctx, "DELETE", "/v1/welcomes/"+strconv.FormatUint(id, 10), nil, nil, smallAnswer)
}
