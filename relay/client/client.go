// Package relayclient is a typed Go client of the SpacePanda relay's HTTP
// API v1 (relay/API.md): login by signing a challenge with the node's MLS
// signature key, the key package directory, per-group ordered logs with
// long-poll reads and commit ordering (409 commit_conflict is returned as a
// *CommitConflictError carrying the relay's current epoch), GroupInfos and
// Welcome queues.
//
// A Client logs in on first use, logs in again shortly before its token
// expires or when the relay answers 401, and waits out 429 answers
// (Retry-After) a bounded number of times. It is safe for concurrent use.
package relayclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spacepanda/spacepanda/mls/wire"
)

// Errors of package relayclient.
var (
	// ErrCommitConflict: the relay already accepted a commit for this
	// epoch (errors.As the error to *CommitConflictError for the epoch).
	ErrCommitConflict = errors.New("relayclient: commit conflict")
	// ErrNotFound: the relay answered 404.
	ErrNotFound = errors.New("relayclient: not found")
	// ErrForbidden: the relay answered 403.
	ErrForbidden = errors.New("relayclient: forbidden")
	// ErrConflict: the relay answered 409 with another code than commit_conflict.
	ErrConflict = errors.New("relayclient: conflict")
)

// LoginLabel is the SignWithLabel label of the login signature.
const LoginLabel = "SpacePanda relay login"

// Signer signs with the node's MLS signature key (RFC 9420 §5.1.2
// SignWithLabel); *provider.Provider implements it.
type Signer interface {
	SignWithLabel(label string, content []byte) ([]byte, error)
}

// Identity is who the client logs in as.
type Identity struct {
	UserID       string
	SignatureKey []byte
	Ciphersuite  uint16
	Signer       Signer
}

// Error is a non-2xx answer of the relay.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration // for 429
}

func (e *Error) Error() string {
	return fmt.Sprintf("relay: %d %s: %s", e.Status, e.Code, e.Message)
}

// Is maps statuses to the package sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrConflict:
		return e.Status == http.StatusConflict
	}
	return false
}

// CommitConflictError is the relay's refusal of a commit for an epoch that
// is not (or no longer) the group's current epoch.
type CommitConflictError struct {
	Err          *Error
	CurrentEpoch uint64
}

func (e *CommitConflictError) Error() string {
	return fmt.Sprintf("relay: commit conflict (group now in epoch %d): %s", e.CurrentEpoch, e.Err.Message)
}

// Is reports ErrCommitConflict (and ErrConflict).
func (e *CommitConflictError) Is(target error) bool {
	return target == ErrCommitConflict || target == ErrConflict
}

// Options configure a Client.
type Options struct {
	// HTTP is the HTTP client (nil: a client without overall timeout, so
	// long-polls can wait; each request still follows its context).
	HTTP *http.Client
	// MaxRetries429 bounds how often a rate-limited request is retried
	// (0: 5; negative: never).
	MaxRetries429 int
}

// Client talks to one relay as one identity.
type Client struct {
	base string
	id   Identity
	hc   *http.Client
	max  int

	mu      sync.Mutex
	token   string
	expires time.Time

	limited atomic.Int64 // 429 answers seen
}

// RateLimited is how many 429 answers the client has waited out.
func (c *Client) RateLimited() int64 { return c.limited.Load() }

// New returns a client of the relay at baseURL (e.g. http://127.0.0.1:7000).
func New(baseURL string, id Identity, o Options) *Client {
	hc := o.HTTP
	if hc == nil {
		hc = &http.Client{}
	}
	max := o.MaxRetries429
	if max == 0 {
		max = 5
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), id: id, hc: hc, max: max}
}

// BaseURL is the relay's base URL as the client uses it (no trailing /).
func (c *Client) BaseURL() string { return c.base }

// UserID is the client's identity.
func (c *Client) UserID() string { return c.id.UserID }

func enc64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func dec64(field, s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("relayclient: %s is not base64: %w", field, err)
	}
	return b, nil
}

// b64 is a []byte that travels as standard base64 in JSON (null/"" → nil).
type b64 []byte

func (b b64) MarshalJSON() ([]byte, error) { return json.Marshal(enc64(b)) }

func (b *b64) UnmarshalJSON(data []byte) error {
	var s *string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	if s == nil || *s == "" {
		*b = nil
		return nil
	}
	v, err := dec64("value", *s)
	*b = v
	return err
}

// loginContent is the signed content: struct { opaque relay_url<V>;
// opaque user_id<V>; opaque challenge<V>; } (API.md).
func loginContent(relayURL, userID string, challenge []byte) ([]byte, error) {
	var b wire.Builder
	b.AddOpaque([]byte(relayURL))
	b.AddOpaque([]byte(userID))
	b.AddOpaque(challenge)
	return b.Bytes()
}

// Login proves the identity to the relay and stores the session token.
func (c *Client) Login(ctx context.Context) error {
	type chReq struct {
		UserID       string `json:"user_id"`
		SignatureKey b64    `json:"signature_key"`
		Ciphersuite  uint16 `json:"ciphersuite"`
	}
	var ch struct {
		Challenge b64 `json:"challenge"`
	}
	req := chReq{UserID: c.id.UserID, SignatureKey: c.id.SignatureKey, Ciphersuite: c.id.Ciphersuite}
	if err := c.send(ctx, "POST", "/v1/auth/challenge", "", req, &ch); err != nil {
		return fmt.Errorf("relayclient: login: %w", err)
	}
	content, err := loginContent(c.base, c.id.UserID, ch.Challenge)
	if err != nil {
		return err
	}
	sig, err := c.id.Signer.SignWithLabel(LoginLabel, content)
	if err != nil {
		return fmt.Errorf("relayclient: login: sign: %w", err)
	}
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	lreq := struct {
		chReq
		Challenge b64 `json:"challenge"`
		Signature b64 `json:"signature"`
	}{req, ch.Challenge, sig}
	if err := c.send(ctx, "POST", "/v1/auth/login", "", lreq, &out); err != nil {
		return fmt.Errorf("relayclient: login: %w", err)
	}
	c.mu.Lock()
	c.token, c.expires = out.Token, out.ExpiresAt
	c.mu.Unlock()
	return nil
}

// sessionToken returns a token valid for at least another minute,
// logging in when needed.
func (c *Client) sessionToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	tok, exp := c.token, c.expires
	c.mu.Unlock()
	if tok != "" && (exp.IsZero() || time.Until(exp) > time.Minute) {
		return tok, nil
	}
	if err := c.Login(ctx); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token, nil
}

func (c *Client) dropToken(tok string) {
	c.mu.Lock()
	if c.token == tok {
		c.token = ""
	}
	c.mu.Unlock()
}

// do sends an authenticated request: it logs in when needed, once more on
// 401, and retries 429 after Retry-After.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	relogged := false
	for tries := 0; ; tries++ {
		tok, err := c.sessionToken(ctx)
		if err != nil {
			return err
		}
		err = c.send(ctx, method, path, tok, body, out)
		var e *Error
		switch {
		case errors.As(err, &e) && e.Status == http.StatusUnauthorized && !relogged:
			relogged = true
			c.dropToken(tok)
			continue
		case errors.As(err, &e) && e.Status == http.StatusTooManyRequests && tries < c.max:
			c.limited.Add(1)
			d := e.RetryAfter
			if d <= 0 {
				d = 100 * time.Millisecond
			}
			select {
			case <-time.After(d):
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return err
	}
}

// send is one HTTP exchange with JSON in and out.
func (c *Client) send(ctx context.Context, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return decodeError(resp, data)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("relayclient: %s %s: answer: %w", method, path, err)
		}
	}
	return nil
}

func decodeError(resp *http.Response, data []byte) error {
	var eb struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		CurrentEpoch *uint64 `json:"current_epoch"`
	}
	e := &Error{Status: resp.StatusCode, Code: "http_error", Message: strings.TrimSpace(string(data))}
	if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
		e.Code, e.Message = eb.Error.Code, eb.Error.Message
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.ParseFloat(ra, 64); err == nil {
			e.RetryAfter = time.Duration(s * float64(time.Second))
		}
	}
	if e.Status == http.StatusConflict && e.Code == "commit_conflict" {
		ce := &CommitConflictError{Err: e}
		if eb.CurrentEpoch != nil {
			ce.CurrentEpoch = *eb.CurrentEpoch
		}
		return ce
	}
	return e
}

// --- key package directory ---

// PublishKeyPackages publishes one-time key packages (MLSMessage
// encodings) and, when lastResort is non-nil, replaces the last-resort one.
func (c *Client) PublishKeyPackages(ctx context.Context, kps [][]byte, lastResort []byte) (int, error) {
	req := struct {
		KeyPackages []b64 `json:"key_packages"`
		LastResort  b64   `json:"last_resort,omitempty"`
	}{KeyPackages: make([]b64, len(kps)), LastResort: lastResort}
	for i, k := range kps {
		req.KeyPackages[i] = k
	}
	var out struct {
		Stored int `json:"stored"`
	}
	err := c.do(ctx, "POST", "/v1/key-packages", req, &out)
	return out.Stored, err
}

// KeyPackageCount is how many one-time key packages of ours the relay
// holds, and whether it holds a last-resort one.
func (c *Client) KeyPackageCount(ctx context.Context) (available int, lastResort bool, err error) {
	var out struct {
		Available  int  `json:"available"`
		LastResort bool `json:"last_resort"`
	}
	err = c.do(ctx, "GET", "/v1/key-packages/count", nil, &out)
	return out.Available, out.LastResort, err
}

// ClaimKeyPackage claims one of userID's key packages (ErrNotFound when it
// has none).
func (c *Client) ClaimKeyPackage(ctx context.Context, userID string) (kp []byte, lastResort bool, err error) {
	var out struct {
		KeyPackage b64  `json:"key_package"`
		LastResort bool `json:"last_resort"`
	}
	err = c.do(ctx, "POST", "/v1/key-packages/claim", map[string]string{"user_id": userID}, &out)
	return out.KeyPackage, out.LastResort, err
}

// --- groups ---

// GroupPath is the path segment of a group id (base64url without padding,
// API.md).
func GroupPath(groupID []byte) string {
	return url.PathEscape(base64.RawURLEncoding.EncodeToString(groupID))
}

// CreateGroup registers a new group with us as its only reader.
func (c *Client) CreateGroup(ctx context.Context, groupID []byte) error {
	return c.do(ctx, "POST", "/v1/groups", map[string]b64{"group_id": groupID}, nil)
}

// Message kinds of the log.
const (
	KindCommit      = "commit"
	KindProposal    = "proposal"
	KindApplication = "application"
)

// Post is a message to append to a group's log.
type Post struct {
	Message []byte   // MLSMessage
	Kind    string   // KindCommit, KindProposal or KindApplication
	Epoch   uint64   // the epoch it was sent in
	Added   []string // commits: user ids added
	Removed []string // commits: user ids removed
}

// PostMessage appends to the group's log and returns the entry's sequence
// number. A refused commit is a *CommitConflictError.
func (c *Client) PostMessage(ctx context.Context, groupID []byte, p Post) (uint64, error) {
	req := struct {
		Message b64      `json:"message"`
		Kind    string   `json:"kind"`
		Epoch   uint64   `json:"epoch"`
		Added   []string `json:"added,omitempty"`
		Removed []string `json:"removed,omitempty"`
	}{p.Message, p.Kind, p.Epoch, p.Added, p.Removed}
	var out struct {
		Seq uint64 `json:"seq"`
	}
	err := c.do(ctx, "POST", "/v1/groups/"+GroupPath(groupID)+"/messages", req, &out)
	return out.Seq, err
}

// Entry is one entry of a group's log.
type Entry struct {
	Seq        uint64    `json:"seq"`
	Message    b64       `json:"message"`
	Kind       string    `json:"kind"`
	Epoch      uint64    `json:"epoch"`
	Sender     string    `json:"sender"`
	ReceivedAt time.Time `json:"received_at"`
}

// Messages reads up to limit entries after seq after (limit <= 0: the
// relay's default); when there are none it waits up to wait (long-poll,
// at most 60 s at the relay). next is the seq to read after next time.
func (c *Client) Messages(ctx context.Context, groupID []byte, after uint64, wait time.Duration, limit int) (entries []Entry, next uint64, err error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}}
	if wait > 0 {
		q.Set("wait", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Messages []Entry `json:"messages"`
		Next     uint64  `json:"next"`
	}
	err = c.do(ctx, "GET", "/v1/groups/"+GroupPath(groupID)+"/messages?"+q.Encode(), nil, &out)
	if err == nil && out.Next < after {
		out.Next = after
	}
	return out.Messages, out.Next, err
}

// Cursor is our saved read position in the group's log.
func (c *Client) Cursor(ctx context.Context, groupID []byte) (uint64, error) {
	var out struct {
		After uint64 `json:"after"`
	}
	err := c.do(ctx, "GET", "/v1/groups/"+GroupPath(groupID)+"/cursor", nil, &out)
	return out.After, err
}

// SetCursor saves our read position.
func (c *Client) SetCursor(ctx context.Context, groupID []byte, after uint64) error {
	return c.do(ctx, "PUT", "/v1/groups/"+GroupPath(groupID)+"/cursor", map[string]uint64{"after": after}, nil)
}

// PutGroupInfo stores the group's GroupInfo (MLSMessage) of epoch.
func (c *Client) PutGroupInfo(ctx context.Context, groupID, groupInfo []byte, epoch uint64) error {
	req := struct {
		GroupInfo b64    `json:"group_info"`
		Epoch     uint64 `json:"epoch"`
	}{groupInfo, epoch}
	return c.do(ctx, "PUT", "/v1/groups/"+GroupPath(groupID)+"/group-info", req, nil)
}

// GroupInfo returns the group's latest GroupInfo and its epoch.
func (c *Client) GroupInfo(ctx context.Context, groupID []byte) ([]byte, uint64, error) {
	var out struct {
		GroupInfo b64    `json:"group_info"`
		Epoch     uint64 `json:"epoch"`
	}
	err := c.do(ctx, "GET", "/v1/groups/"+GroupPath(groupID)+"/group-info", nil, &out)
	return out.GroupInfo, out.Epoch, err
}

// GroupState is what the relay knows of a group.
type GroupState struct {
	GroupID []byte
	Epoch   uint64
	Members []string
	LastSeq uint64
}

// Group returns the relay's view of the group.
func (c *Client) Group(ctx context.Context, groupID []byte) (*GroupState, error) {
	var out struct {
		GroupID b64      `json:"group_id"`
		Epoch   uint64   `json:"epoch"`
		Members []string `json:"members"`
		LastSeq uint64   `json:"last_seq"`
	}
	if err := c.do(ctx, "GET", "/v1/groups/"+GroupPath(groupID), nil, &out); err != nil {
		return nil, err
	}
	return &GroupState{GroupID: out.GroupID, Epoch: out.Epoch, Members: out.Members, LastSeq: out.LastSeq}, nil
}

// --- welcomes ---

// Welcome is a Welcome to queue or a queued one.
type Welcome struct {
	ID          uint64 // queued ones
	From        string // queued ones: the sender
	Recipients  []string
	Welcome     []byte // MLSMessage(Welcome)
	RatchetTree []byte // optional
	GroupID     []byte
	Invite      []byte // optional: a channel.InviteToken
}

// PostWelcome queues w for its recipients.
func (c *Client) PostWelcome(ctx context.Context, w Welcome) ([]uint64, error) {
	req := struct {
		Recipients  []string `json:"recipients"`
		Welcome     b64      `json:"welcome"`
		RatchetTree b64      `json:"ratchet_tree,omitempty"`
		GroupID     b64      `json:"group_id"`
		Invite      b64      `json:"invite,omitempty"`
	}{w.Recipients, w.Welcome, w.RatchetTree, w.GroupID, w.Invite}
	var out struct {
		IDs []uint64 `json:"ids"`
	}
	err := c.do(ctx, "POST", "/v1/welcomes", req, &out)
	return out.IDs, err
}

// Welcomes returns our queued Welcomes, waiting up to wait when there are
// none (long-poll).
func (c *Client) Welcomes(ctx context.Context, wait time.Duration) ([]Welcome, error) {
	path := "/v1/welcomes"
	if wait > 0 {
		path += "?wait=" + strconv.Itoa(int((wait+time.Second-1)/time.Second))
	}
	var out struct {
		Welcomes []struct {
			ID          uint64 `json:"id"`
			Welcome     b64    `json:"welcome"`
			RatchetTree b64    `json:"ratchet_tree"`
			GroupID     b64    `json:"group_id"`
			Invite      b64    `json:"invite"`
			From        string `json:"from"`
		} `json:"welcomes"`
	}
	if err := c.do(ctx, "GET", path, nil, &out); err != nil {
		return nil, err
	}
	ws := make([]Welcome, len(out.Welcomes))
	for i, w := range out.Welcomes {
		ws[i] = Welcome{ID: w.ID, From: w.From, Welcome: w.Welcome, RatchetTree: w.RatchetTree, GroupID: w.GroupID, Invite: w.Invite}
	}
	return ws, nil
}

// AckWelcome removes a queued Welcome after it was used (or given up on).
func (c *Client) AckWelcome(ctx context.Context, id uint64) error {
	return c.do(ctx, "DELETE", "/v1/welcomes/"+strconv.FormatUint(id, 10), nil, nil)
}
