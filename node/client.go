package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client is a small typed client of the node's HTTP API v1.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:8080
	Token   string // bearer token, if the node requires one
	HTTP    *http.Client
}

// Error is a non-2xx answer of the node.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("node: %d %s: %s", e.Status, e.Code, e.Message)
}

// Do sends one request with a JSON body (nil: none) and decodes a JSON
// answer into out (nil: ignore it).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var eb errorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
			return &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return &Error{Status: resp.StatusCode, Code: "http_error", Message: strings.TrimSpace(string(data))}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (c *Client) Identity(ctx context.Context) (*IdentityResponse, error) {
	var r IdentityResponse
	return &r, c.Do(ctx, "GET", "/v1/identity", nil, &r)
}

func (c *Client) KeyPackages(ctx context.Context, n int) ([]string, error) {
	var r KeyPackagesResponse
	err := c.Do(ctx, "POST", "/v1/key-packages", KeyPackagesRequest{Count: n}, &r)
	return r.KeyPackages, err
}

func (c *Client) KeyPackageCount(ctx context.Context) (int, error) {
	var r KeyPackageCountResponse
	err := c.Do(ctx, "GET", "/v1/key-packages", nil, &r)
	return r.Valid, err
}

func (c *Client) CreateChannel(ctx context.Context, name string, public bool) (*ChannelResponse, error) {
	var r ChannelResponse
	return &r, c.Do(ctx, "POST", "/v1/channels", CreateChannelRequest{Name: name, IsPublic: public}, &r)
}

func (c *Client) Channel(ctx context.Context, id string) (*ChannelResponse, error) {
	var r ChannelResponse
	return &r, c.Do(ctx, "GET", "/v1/channels/"+url.PathEscape(id), nil, &r)
}

func (c *Client) Invite(ctx context.Context, channelID, keyPackage string) (*InviteResponse, error) {
	var r InviteResponse
	return &r, c.Do(ctx, "POST", "/v1/channels/"+url.PathEscape(channelID)+"/invites", InviteRequest{KeyPackage: keyPackage}, &r)
}

func (c *Client) Join(ctx context.Context, req JoinRequest) (*ChannelResponse, error) {
	var r ChannelResponse
	return &r, c.Do(ctx, "POST", "/v1/join", req, &r)
}

func (c *Client) Send(ctx context.Context, channelID, text, replyTo string) (*SendResponse, error) {
	var r SendResponse
	return &r, c.Do(ctx, "POST", "/v1/channels/"+url.PathEscape(channelID)+"/messages", SendRequest{Text: text, ReplyTo: replyTo}, &r)
}

func (c *Client) Inbox(ctx context.Context, channelID, message string) (*InboxResponse, error) {
	var r InboxResponse
	return &r, c.Do(ctx, "POST", "/v1/channels/"+url.PathEscape(channelID)+"/inbox", InboxRequest{Message: message}, &r)
}

func (c *Client) Messages(ctx context.Context, channelID string) ([]ChatMessage, error) {
	var r MessagesResponse
	err := c.Do(ctx, "GET", "/v1/channels/"+url.PathEscape(channelID)+"/messages", nil, &r)
	return r.Messages, err
}

func (c *Client) Members(ctx context.Context, channelID string) ([]MemberResponse, error) {
	var r MembersResponse
	err := c.Do(ctx, "GET", "/v1/channels/"+url.PathEscape(channelID)+"/members", nil, &r)
	return r.Members, err
}

func (c *Client) RemoveMember(ctx context.Context, channelID, userID string) (*CommitResponse, error) {
	var r CommitResponse
	return &r, c.Do(ctx, "DELETE", "/v1/channels/"+url.PathEscape(channelID)+"/members/"+url.PathEscape(userID), nil, &r)
}

// SetRole gives a member a role (admin, member, read-only) by a commit,
// returned for the other members.
func (c *Client) SetRole(ctx context.Context, channelID, userID, role string) (*CommitResponse, error) {
	var r CommitResponse
	return &r, c.Do(ctx, "PUT", "/v1/channels/"+url.PathEscape(channelID)+"/members/"+url.PathEscape(userID)+"/role", SetRoleRequest{Role: role}, &r)
}

func (c *Client) Update(ctx context.Context, channelID string) (*CommitResponse, error) {
	var r CommitResponse
	return &r, c.Do(ctx, "POST", "/v1/channels/"+url.PathEscape(channelID)+"/update", nil, &r)
}
