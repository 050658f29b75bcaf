package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/identity"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
)

// Invitations a person accepts (issue 12.5): a Welcome from a user we
// share no active channel with and have not marked as a contact is kept
// as a pending invitation instead of being joined. Contacts are local.

const (
	recInvitation = "invitation"
	recContact    = "contact"
)

// ErrInvitationNotFound is an unknown invitation id.
var ErrInvitationNotFound = errors.New("client: invitation not found")

// ErrContactNotFound is an unknown contact.
var ErrContactNotFound = errors.New("client: contact not found")

// Invitation is a pending Welcome.
type Invitation struct {
	ID          string    `json:"id"`
	From        string    `json:"from"`
	FromDevice  string    `json:"from_device,omitempty"`
	DisplayName string    `json:"display_name,omitempty"`
	ReceivedAt  time.Time `json:"received_at"`
	Welcome     []byte    `json:"welcome"`
	RatchetTree []byte    `json:"ratchet_tree,omitempty"`
}

// Contact is a user we chose to know.
type Contact struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"display_name,omitempty"`
	// IdentityKey is the key the user id was checked against when first
	// seen in a channel (empty: not seen yet).
	IdentityKey []byte `json:"identity_key,omitempty"`
	Verified    bool   `json:"verified"`
	// KeyChanged: a verified contact now shows another identity key.
	KeyChanged bool `json:"key_changed,omitempty"`
}

// Fingerprint is identity.Fingerprint of the contact's key ("" unknown).
func (ct *Contact) Fingerprint() string {
	var k identity.IdentityKey
	if len(ct.IdentityKey) != len(k) {
		return ""
	}
	copy(k[:], ct.IdentityKey)
	return identity.Fingerprint(k)
}

// screenWelcome decides whether a queued Welcome waits for the person
// (true, stored as an invitation).
func (c *Client) screenWelcome(ctx context.Context, w relayclient.Welcome) (bool, error) {
	if w.From == "" || w.From == c.mgr.Identity() {
		return false, nil
	}
	if _, err := c.Contact(ctx, w.From); err == nil {
		return false, nil
	}
	if c.sharesChannel(ctx, w.From) {
		return false, nil
	}
	inv := Invitation{ID: newID(), From: w.From, FromDevice: w.FromDevice, ReceivedAt: time.Now().UTC(),
		Welcome: w.Welcome, RatchetTree: w.RatchetTree}
	b, err := json.Marshal(inv)
	if err != nil {
		return false, err
	}
	if err := c.recs.PutRecord(ctx, recInvitation, inv.ID, b); err != nil {
		return false, err
	}
	c.emit(EventInvitation, "", map[string]any{"invitation_id": inv.ID, "from": inv.From})
	return true, nil
}

func (c *Client) sharesChannel(ctx context.Context, user string) bool {
	ds, err := c.mgr.Channels(ctx)
	if err != nil {
		return false
	}
	for _, d := range ds {
		if st, _ := c.channelState(ctx, d.ID); st.State != StateActive {
			continue
		}
		ls, err := c.mgr.Leaves(ctx, d.ID)
		if err != nil {
			continue
		}
		for _, l := range ls {
			if l.Identity == user {
				return true
			}
		}
	}
	return false
}

// Invitations lists the pending invitations, oldest first.
func (c *Client) Invitations(ctx context.Context) ([]Invitation, error) {
	recs, err := c.recs.Records(ctx, recInvitation)
	if err != nil {
		return nil, err
	}
	out := []Invitation{}
	for _, r := range recs {
		var inv Invitation
		if json.Unmarshal(r.Value, &inv) == nil {
			out = append(out, inv)
		}
	}
	return out, nil
}

func (c *Client) invitation(ctx context.Context, id string) (*Invitation, error) {
	invs, err := c.Invitations(ctx)
	if err != nil {
		return nil, err
	}
	for i := range invs {
		if invs[i].ID == id {
			return &invs[i], nil
		}
	}
	return nil, errf(ErrInvitationNotFound, "%s", id)
}

// AcceptInvitation joins from a pending invitation.
func (c *Client) AcceptInvitation(ctx context.Context, id string) (*channel.Descriptor, error) {
	inv, err := c.invitation(ctx, id)
	if err != nil {
		return nil, err
	}
	d, err := c.join(ctx, inv.Welcome, inv.RatchetTree)
	if err != nil && !errors.Is(err, channel.ErrChannelExists) {
		return nil, err
	}
	if err := c.recs.DeleteRecord(ctx, recInvitation, id); err != nil {
		return nil, err
	}
	return d, err
}

// DeclineInvitation drops a pending invitation.
func (c *Client) DeclineInvitation(ctx context.Context, id string) error {
	if _, err := c.invitation(ctx, id); err != nil {
		return err
	}
	return c.recs.DeleteRecord(ctx, recInvitation, id)
}

// Contacts lists the contacts in the order added.
func (c *Client) Contacts(ctx context.Context) ([]Contact, error) {
	recs, err := c.contacts.list(ctx, c.recs)
	if err != nil {
		return nil, err
	}
	out := []Contact{}
	for _, r := range recs {
		var ct Contact
		if json.Unmarshal(r.Value, &ct) == nil {
			c.refreshContact(ctx, &ct)
			out = append(out, ct)
		}
	}
	return out, nil
}

// Contact returns one contact (only its key and name are looked up in
// our channels: a history page asks for the sender of every message).
func (c *Client) Contact(ctx context.Context, userID string) (*Contact, error) {
	recs, err := c.contacts.list(ctx, c.recs)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		var ct Contact
		if r.ID == userID && json.Unmarshal(r.Value, &ct) == nil {
			c.refreshContact(ctx, &ct)
			return &ct, nil
		}
	}
	return nil, errf(ErrContactNotFound, "%s", userID)
}

// ContactsIn returns the contacts among users (the senders of a page of
// channelID's history), keyed by user id. Their keys and names are looked
// up in that channel's group, once; only a user who is no longer in it is
// looked up in our other channels (Contact looks in every channel, and
// waits for each channel's lock).
func (c *Client) ContactsIn(ctx context.Context, channelID string, users []string) (map[string]*Contact, error) {
	recs, err := c.contacts.list(ctx, c.recs)
	if err != nil {
		return nil, err
	}
	want := make(map[string]bool, len(users))
	for _, u := range users {
		want[u] = true
	}
	out := map[string]*Contact{}
	for _, r := range recs {
		var ct Contact
		if want[r.ID] && json.Unmarshal(r.Value, &ct) == nil {
			out[r.ID] = &ct
		}
	}
	if len(out) == 0 {
		return out, nil
	}
	here := map[string]channel.Member{}
	if ls, err := c.mgr.Leaves(ctx, channelID); err == nil {
		for _, l := range ls {
			if l.Verified {
				if _, dup := here[l.Identity]; !dup {
					here[l.Identity] = l
				}
			}
		}
	}
	for id, ct := range out {
		if l, ok := here[id]; ok {
			applySeen(ct, l.IdentityKey, l.DisplayName)
		} else {
			c.refreshContact(ctx, ct)
		}
	}
	return out, nil
}

// PutContact adds a contact, or sets whether it is verified (verified
// nil: unchanged). Verifying pins the identity key seen now.
func (c *Client) PutContact(ctx context.Context, userID string, verified *bool) (*Contact, error) {
	if _, err := identity.ParseUserID(userID); err != nil {
		return nil, fmt.Errorf("%w: %w", channel.ErrInvalidEncoding, err)
	}
	ct, err := c.Contact(ctx, userID)
	if err != nil {
		ct = &Contact{UserID: userID}
	}
	c.refreshContact(ctx, ct)
	if verified != nil {
		ct.Verified = *verified
		if *verified {
			ct.KeyChanged = false
			if k, _, ok := c.seenKey(ctx, userID); ok {
				ct.IdentityKey = k[:]
			}
		}
	}
	return ct, c.saveContact(ctx, ct)
}

func (c *Client) saveContact(ctx context.Context, ct *Contact) error {
	b, err := json.Marshal(ct)
	if err != nil {
		return err
	}
	return c.contacts.put(ctx, c.recs, ct.UserID, b)
}

// DeleteContact forgets a contact.
func (c *Client) DeleteContact(ctx context.Context, userID string) error {
	if _, err := c.Contact(ctx, userID); err != nil {
		return err
	}
	return c.contacts.del(ctx, c.recs, userID)
}

// refreshContact fills in the key and name seen in our channels and flags
// a verified contact whose key changed.
func (c *Client) refreshContact(ctx context.Context, ct *Contact) {
	k, name, ok := c.seenKey(ctx, ct.UserID)
	if !ok {
		return
	}
	applySeen(ct, k, name)
}

// applySeen fills in the key and name a contact shows in a channel.
func applySeen(ct *Contact, k identity.IdentityKey, name string) {
	if name != "" {
		ct.DisplayName = name
	}
	switch {
	case len(ct.IdentityKey) == 0:
		ct.IdentityKey = k[:]
	case string(ct.IdentityKey) != string(k[:]) && ct.Verified:
		ct.KeyChanged = true
	}
}

// seenKey is the identity key and display name a user shows in one of our
// channels (a verified leaf).
func (c *Client) seenKey(ctx context.Context, userID string) (identity.IdentityKey, string, bool) {
	ds, err := c.mgr.Channels(ctx)
	if err != nil {
		return identity.IdentityKey{}, "", false
	}
	for _, d := range ds {
		ls, err := c.mgr.Leaves(ctx, d.ID)
		if err != nil {
			continue
		}
		for _, l := range ls {
			if l.Identity == userID && l.Verified {
				return l.IdentityKey, l.DisplayName, true
			}
		}
	}
	return identity.IdentityKey{}, "", false
}

// SafetyNumber is the number two users compare out of band: derived from
// both identity keys (identity.SafetyNumber).
func (c *Client) SafetyNumber(ctx context.Context, userID string) (string, error) {
	k, _, ok := c.seenKey(ctx, userID)
	if !ok {
		return "", errf(ErrContactNotFound, "%s is in none of our channels: its identity key is unknown", userID)
	}
	return identity.SafetyNumber(c.p.IdentityKey(), k), nil
}
