package relayclient

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// LinkSide is a side of a device link: the offering device (logged in,
// holding the identity) or the joining one (no certificate yet).
type LinkSide string

// The two sides.
const (
	LinkOffer LinkSide = "offer"
	LinkJoin  LinkSide = "join"
)

// LinkMessage is one message in a link mailbox.
type LinkMessage struct {
	Seq     uint64
	Message []byte
}

func linkPath(mailbox string) string { return "/v1/link/" + url.PathEscape(mailbox) }

// OpenLinkMailbox opens the mailbox of a link code
// (identity.LinkCode.Mailbox) for this device, the offering side, and
// returns when it expires. ErrConflict when another device holds it: draw
// another code.
func (c *Client) OpenLinkMailbox(ctx context.Context, mailbox string) (time.Time, error) {
	var out struct {
		ExpiresAt time.Time `json:"expires_at"`
	}
	err := c.do(ctx, "PUT", linkPath(mailbox), nil, &out, smallAnswer)
	return out.ExpiresAt, err
}

// CloseLinkMailbox deletes this device's mailbox and its messages.
func (c *Client) CloseLinkMailbox(ctx context.Context, mailbox string) error {
	return c.do(ctx, "DELETE", linkPath(mailbox), nil, nil, smallAnswer)
}

// PostLink posts a link message (identity.LinkOffer's or LinkJoin's) from
// side: the offer side as this device (authenticated), the join side
// without a token.
func (c *Client) PostLink(ctx context.Context, mailbox string, side LinkSide, msg []byte) (uint64, error) {
	req := struct {
		From    LinkSide `json:"from"`
		Message b64      `json:"message"`
	}{side, msg}
	var out struct {
		Seq uint64 `json:"seq"`
	}
	err := c.exchange(ctx, "POST", linkPath(mailbox)+"/messages", side == LinkOffer, req, &out, smallAnswer)
	return out.Seq, err
}

// LinkMessages reads the messages side posted after seq after, waiting up
// to wait when there are none (long-poll). The offer side's messages are
// for the joining device and need no token; the join side's are for the
// mailbox's owner (authenticated).
func (c *Client) LinkMessages(ctx context.Context, mailbox string, side LinkSide, after uint64, wait time.Duration) ([]LinkMessage, uint64, error) {
	q := url.Values{"from": {string(side)}, "after": {strconv.FormatUint(after, 10)}}
	if wait > 0 {
		q.Set("wait", strconv.FormatFloat(wait.Seconds(), 'f', 3, 64))
	}
	var out struct {
		Messages []struct {
			Seq     uint64 `json:"seq"`
			Message b64    `json:"message"`
		} `json:"messages"`
		Next uint64 `json:"next"`
	}
	if err := c.exchange(ctx, "GET", linkPath(mailbox)+"/messages?"+q.Encode(), side == LinkJoin, nil, &out, linkBound); err != nil {
		return nil, after, err
	}
	ms := make([]LinkMessage, len(out.Messages))
	for i, m := range out.Messages {
		ms[i] = LinkMessage{Seq: m.Seq, Message: m.Message}
	}
	return ms, max(out.Next, after), nil
}
