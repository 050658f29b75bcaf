// Package relayclient is a typed Go client of the SpacePanda relay's HTTP
// API v1 (relay/API.md): login by a device certificate and a signature
// with the certified MLS key, the directory (devices, revocations, key
// packages claimed one per device), per-group ordered logs read in pages
// bounded in bytes with long-poll (409 commit_conflict is a
// *CommitConflictError carrying the relay's epoch), GroupInfos, Welcome
// queues and device-linking mailboxes.
//
// Every answer is bounded before it is buffered, by a size derived from
// the relay's documented limits (package relay/api); a larger answer is
// ErrResponseTooLarge. The relay is not trusted with what it relays:
// verify certificates, revocations and key packages it returns
// (identity.Validator) before acting on them.
//
// A Client logs in on first use, logs in again shortly before its token
// expires or when the relay answers 401, and waits out 429 answers
// (Retry-After) a bounded number of times. It is safe for concurrent use.
// A Client without a device certificate can only use the unauthenticated
// side of a link mailbox: that is how a new device, not yet certified,
// takes part in linking.
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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/relay/api"
)

// Errors of package relayclient.
var (
	// ErrCommitConflict: the relay already accepted a commit for this
	// epoch (errors.As the error to *CommitConflictError for the epoch).
	ErrCommitConflict = errors.New("relayclient: commit conflict")
	// ErrFutureEpoch: a message for an epoch the group has not reached
	// at the relay (errors.As to *EpochError for the relay's epoch).
	ErrFutureEpoch = errors.New("relayclient: epoch not reached at the relay")
	// ErrStaleEpoch: an application message for an epoch the members no
	// longer keep (errors.As to *EpochError for the relay's epoch, in which
	// to encrypt it again).
	ErrStaleEpoch = errors.New("relayclient: epoch too old at the relay")
	// ErrNotFound: the relay answered 404.
	ErrNotFound = errors.New("relayclient: not found")
	// ErrForbidden: the relay answered 403.
	ErrForbidden = errors.New("relayclient: forbidden")
	// ErrConflict: the relay answered 409 with another code than commit_conflict.
	ErrConflict = errors.New("relayclient: conflict")
	// ErrTooLarge: the relay refused what was sent as too large (413).
	ErrTooLarge = errors.New("relayclient: too large")
	// ErrRevoked: the device is revoked.
	ErrRevoked = errors.New("relayclient: device revoked")
	// ErrNotMember: a Welcome's recipient is not (yet) a member of the
	// group at the relay: post the Welcome after its commit is accepted.
	ErrNotMember = errors.New("relayclient: recipient is not a member of the group")
	// ErrRateLimited: the relay kept answering 429.
	ErrRateLimited = errors.New("relayclient: rate limited")
	// ErrNoDevice: an authenticated call on a client without a device.
	ErrNoDevice = errors.New("relayclient: no device certificate to log in with")
	// ErrInvalidCommit: the relay verified the commit (or its GroupInfo)
	// against the group's public state and refused it (400
	// invalid_commit); the epoch stays open.
	ErrInvalidCommit = errors.New("relayclient: the relay refused an invalid commit")
	// ErrResponseTooLarge: an answer larger than the relay's limits allow.
	ErrResponseTooLarge = errors.New("relayclient: answer over its size bound")
)

// LoginLabel is the SignWithLabel label of the login signature.
const LoginLabel = api.LoginLabel

// Message kinds of the log.
const (
	KindCommit      = api.KindCommit
	KindProposal    = api.KindProposal
	KindApplication = api.KindApplication
)

// Signer signs with the device's MLS signature key (RFC 9420 §5.1.2
// SignWithLabel).
type Signer interface {
	SignWithLabel(label string, content []byte) ([]byte, error)
}

// Identity is the device the client logs in as: its certificate
// (identity.Certificate encoding) and the certified signature key. The
// zero Identity makes a client for the unauthenticated link side only.
type Identity struct {
	Certificate []byte
	Signer      Signer
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

// Is maps statuses and codes to the package sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrTooLarge:
		return e.Status == http.StatusRequestEntityTooLarge
	case ErrRevoked:
		return e.Code == "device_revoked"
	case ErrNotMember:
		return e.Code == "recipient_not_member"
	case ErrInvalidCommit:
		return e.Code == "invalid_commit"
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
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

// EpochError is the relay's refusal of a message for an epoch above the
// group's current one (future_epoch), or for one too far below it
// (stale_epoch).
type EpochError struct {
	Err          *Error
	CurrentEpoch uint64
}

func (e *EpochError) Error() string {
	if e.Err != nil && e.Err.Code == "stale_epoch" {
		return fmt.Sprintf("relay: epoch too old (group in epoch %d): %s", e.CurrentEpoch, e.Err.Message)
	}
	return fmt.Sprintf("relay: epoch not reached (group in epoch %d): %s", e.CurrentEpoch, e.Err.Message)
}

// Is reports ErrFutureEpoch or ErrStaleEpoch, as the relay's code says.
func (e *EpochError) Is(target error) bool {
	if e.Err != nil && e.Err.Code == "stale_epoch" {
		return target == ErrStaleEpoch
	}
	return target == ErrFutureEpoch
}

// Options configure a Client.
type Options struct {
	// HTTP is the HTTP client (nil: a client without overall timeout, so
	// long-polls can wait; each request still follows its context).
	HTTP *http.Client
	// MaxRetries429 bounds how often a rate-limited request is retried
	// (0: 5; negative: never).
	MaxRetries429 int
	// TokenSource, when set, supplies session tokens instead of the
	// certificate login (for a caller that obtains them elsewhere).
	TokenSource func(ctx context.Context) (token string, expires time.Time, err error)
}

// Client talks to one relay as one device.
type Client struct {
	base   string
	id     Identity
	userID identity.UserID
	device identity.DeviceID
	idErr  error
	hc     *http.Client
	max    int
	tokens func(ctx context.Context) (string, time.Time, error)

	mu      sync.Mutex
	token   string
	expires time.Time

	limited atomic.Int64 // 429 answers seen
}

// maxIdleConns bounds the idle connections a Client keeps to its relay.
const maxIdleConns = 64

// RateLimited is how many 429 answers the client has waited out.
func (c *Client) RateLimited() int64 { return c.limited.Load() }

// New returns a client of the relay at baseURL (e.g. http://127.0.0.1:7000)
// for the device id. A certificate that does not decode makes every
// authenticated call fail with ErrNoDevice.
func New(baseURL string, id Identity, o Options) *Client {
	hc := o.HTTP
	if hc == nil {
		// One engine keeps a long poll open per channel besides its posts:
		// with the default two idle connections per host, a busy node
		// dialled the relay again for most requests.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = maxIdleConns
		hc = &http.Client{Transport: t}
	}
	max := o.MaxRetries429
	if max == 0 {
		max = 5
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), id: id, hc: hc, max: max, tokens: o.TokenSource}
	switch {
	case id.Certificate == nil:
		c.idErr = ErrNoDevice
	case id.Signer == nil:
		c.idErr = fmt.Errorf("%w: no signer", ErrNoDevice)
	default:
		cert, err := identity.ParseCertificate(id.Certificate)
		if err != nil {
			c.idErr = fmt.Errorf("%w: %w", ErrNoDevice, err)
		} else {
			c.userID, c.device = cert.UserID(), cert.Device.ID
		}
	}
	if c.tokens == nil {
		c.tokens = c.login
	} else if c.idErr != nil {
		c.idErr = nil // the token source vouches for the client
	}
	return c
}

// BaseURL is the relay's base URL as the client uses it (no trailing /).
func (c *Client) BaseURL() string { return c.base }

// UserID is the user the client logs in as ("" without a certificate).
func (c *Client) UserID() identity.UserID { return c.userID }

// DeviceID is the device the client logs in as (zero without one).
func (c *Client) DeviceID() identity.DeviceID { return c.device }

// b64 is a []byte that travels as standard base64 in JSON (null/"" → nil).
type b64 []byte

func (b b64) MarshalJSON() ([]byte, error) { return json.Marshal(base64.StdEncoding.EncodeToString(b)) }

func (b *b64) UnmarshalJSON(data []byte) error {
	var s *string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	if s == nil || *s == "" {
		*b = nil
		return nil
	}
	v, err := base64.StdEncoding.DecodeString(*s)
	if err != nil {
		return fmt.Errorf("relayclient: not base64: %w", err)
	}
	*b = v
	return nil
}

// --- answer bounds (from the relay's documented limits) ---

const (
	smallAnswer = 64 << 10
	// userIDJSON bounds a user id in an answer: a canonical one, or a
	// legacy name of a migrated log, JSON-escaped.
	userIDJSON = 6*api.MaxUserIDLen + 2
	// entryJSON bounds an entry's fields besides its data: seq, epoch,
	// kind, sender, sender device, time and the keys.
	entryJSON = 256 + userIDJSON
)

// b64Len is the base64 length of n bytes.
func b64Len(n int) int64 { return int64((n + 2) / 3 * 4) }

func pageBound(entries, extra int) int64 {
	// The data of a page is at most api.MaxEntrySize: the sum of at most
	// max_bytes (<= api.MaxPageBytes = api.MaxEntrySize), or one larger
	// entry alone.
	return b64Len(api.MaxEntrySize) + int64(entries)*int64(entryJSON+extra+8) + 1024
}

var (
	devicesBound = int64(api.MaxDevicesPerUser)*(b64Len(identity.MaxCertificateSize)+128) +
		int64(api.MaxRevocationsPerUser)*(b64Len(identity.MaxRevocationSize)+4) + 1024
	claimBound = int64(api.MaxDevicesPerUser)*(b64Len(api.MaxKeyPackageSize)+128) + 1024
	// Members are canonical user ids: the relay adds no other since
	// devices log in (a log migrated from names may hold longer ones, and
	// its group answers may not fit: such groups have no member left who
	// can log in).
	groupBound     = int64(api.MaxGroupMembers)*int64(identity.UserIDLen+3) + b64Len(api.MaxGroupIDLen) + 1024
	groupInfoBound = b64Len(api.MaxGroupInfoSize) + 1024
	welcomesBound  = pageBound(api.MaxWelcomesPerPage, int(b64Len(api.MaxGroupIDLen)))
	linkBound      = int64(api.MaxLinkMessages)*(b64Len(identity.MaxLinkMessageSize)+64) + 1024
)

// --- login ---

// Login proves the device to the relay and stores the session token.
func (c *Client) Login(ctx context.Context) error {
	tok, exp, err := c.tokens(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.token, c.expires = tok, exp
	c.mu.Unlock()
	return nil
}

func (c *Client) login(ctx context.Context) (string, time.Time, error) {
	if c.idErr != nil {
		return "", time.Time{}, fmt.Errorf("relayclient: login: %w", c.idErr)
	}
	var ch struct {
		Challenge b64 `json:"challenge"`
	}
	if err := c.send(ctx, "POST", "/v1/auth/challenge", "", map[string]b64{"certificate": c.id.Certificate}, &ch, smallAnswer); err != nil {
		return "", time.Time{}, fmt.Errorf("relayclient: login: %w", err)
	}
	sig, err := c.id.Signer.SignWithLabel(api.LoginLabel, api.LoginContent(c.base, c.userID, c.device, ch.Challenge))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("relayclient: login: sign: %w", err)
	}
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
		UserID    string    `json:"user_id"`
		DeviceID  string    `json:"device_id"`
	}
	req := map[string]b64{"certificate": c.id.Certificate, "challenge": ch.Challenge, "signature": sig}
	if err := c.send(ctx, "POST", "/v1/auth/login", "", req, &out, smallAnswer); err != nil {
		return "", time.Time{}, fmt.Errorf("relayclient: login: %w", err)
	}
	if out.UserID != string(c.userID) || out.DeviceID != c.device.String() {
		return "", time.Time{}, fmt.Errorf("relayclient: login: the relay logged us in as %q device %q", out.UserID, out.DeviceID)
	}
	return out.Token, out.ExpiresAt, nil
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
// 401, and retries 429 after a short Retry-After. Answers over limit bytes are
// refused.
func (c *Client) do(ctx context.Context, method, path string, body, out any, limit int64) error {
	return c.exchange(ctx, method, path, true, body, out, limit)
}

// maxRetryWait is the longest Retry-After a call waits out; a longer one
// (a spent hourly quota) is returned at once, RetryAfter set: a call that
// sleeps for minutes only holds up its caller.
const maxRetryWait = 5 * time.Second

// exchange is do, or (authed false) an unauthenticated request with the
// same 429 handling.
func (c *Client) exchange(ctx context.Context, method, path string, authed bool, body, out any, limit int64) error {
	relogged := false
	for tries := 0; ; tries++ {
		var tok string
		if authed {
			var err error
			if tok, err = c.sessionToken(ctx); err != nil {
				return err
			}
		}
		err := c.send(ctx, method, path, tok, body, out, limit)
		var e *Error
		switch {
		case authed && errors.As(err, &e) && e.Status == http.StatusUnauthorized && !relogged:
			relogged = true
			c.dropToken(tok)
			continue
		case errors.As(err, &e) && e.Status == http.StatusTooManyRequests && tries < c.max && e.RetryAfter <= maxRetryWait:
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

// send is one HTTP exchange with JSON in and out; the answer is read up to
// limit bytes.
func (c *Client) send(ctx context.Context, method, path, token string, body, out any, limit int64) error {
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
	if resp.ContentLength > limit {
		return fmt.Errorf("%w: %s %s: %d bytes, at most %d", ErrResponseTooLarge, method, path, resp.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return err
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("%w: %s %s: over %d bytes", ErrResponseTooLarge, method, path, limit)
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
	msg := strings.TrimSpace(string(data))
	if len(msg) > 200 {
		msg = msg[:200]
	}
	e := &Error{Status: resp.StatusCode, Code: "http_error", Message: strings.ToValidUTF8(msg, "?")}
	if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
		e.Code, e.Message = eb.Error.Code, eb.Error.Message
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.ParseFloat(ra, 64); err == nil {
			e.RetryAfter = time.Duration(s * float64(time.Second))
		}
	}
	var epoch uint64
	if eb.CurrentEpoch != nil {
		epoch = *eb.CurrentEpoch
	}
	switch {
	case e.Status == http.StatusConflict && e.Code == "commit_conflict":
		return &CommitConflictError{Err: e, CurrentEpoch: epoch}
	case e.Code == "future_epoch", e.Code == "stale_epoch":
		return &EpochError{Err: e, CurrentEpoch: epoch}
	}
	return e
}
