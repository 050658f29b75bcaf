package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spacepanda/spacepanda/mls/wire"
	"github.com/spacepanda/spacepanda/provider"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
)

// legacyLogin is a temporary adapter: the node's login until the provider
// carries a device certificate (issue 12, the identity integration). It is
// the pre-certificate challenge/response by name and MLS signature key,
// which relay/ no longer accepts — a relay authenticates devices now — so
// only the node's relay-mode test double takes it. When the provider
// exposes its certificate, the node logs in with
// relayclient.Identity{Certificate: ..., Signer: p} and this file goes.
func legacyLogin(base string, hc *http.Client, p *provider.Provider) func(ctx context.Context) (string, time.Time, error) {
	if hc == nil {
		hc = &http.Client{}
	}
	base = strings.TrimRight(base, "/")
	post := func(ctx context.Context, path string, in, out any) error {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, "POST", base+path, bytes.NewReader(b))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("relay: %s: %d %.200s", path, resp.StatusCode, data)
		}
		return json.Unmarshal(data, out)
	}
	return func(ctx context.Context) (string, time.Time, error) {
		id := map[string]any{"user_id": p.Name(), "signature_key": p.SignaturePublicKey(), "ciphersuite": uint16(p.Suite().ID())}
		var ch struct {
			Challenge []byte `json:"challenge"`
		}
		if err := post(ctx, "/v1/auth/challenge", id, &ch); err != nil {
			return "", time.Time{}, fmt.Errorf("relay login: %w", err)
		}
		var b wire.Builder
		b.AddOpaque([]byte(base))
		b.AddOpaque([]byte(p.Name()))
		b.AddOpaque(ch.Challenge)
		content, err := b.Bytes()
		if err != nil {
			return "", time.Time{}, err
		}
		sig, err := p.SignWithLabel(relayclient.LoginLabel, content)
		if err != nil {
			return "", time.Time{}, err
		}
		id["challenge"], id["signature"] = ch.Challenge, sig
		var out struct {
			Token     string    `json:"token"`
			ExpiresAt time.Time `json:"expires_at"`
		}
		if err := post(ctx, "/v1/auth/login", id, &out); err != nil {
			return "", time.Time{}, fmt.Errorf("relay login: %w", err)
		}
		return out.Token, out.ExpiresAt, nil
	}
}
