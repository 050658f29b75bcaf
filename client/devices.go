package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spacepanda/spacepanda/channel"
	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/provider"
	relayclient "github.com/spacepanda/spacepanda/relay/client"
)

// A user's devices. The device holding the user's identity key (the
// first one) links a new device: OfferLink shows a short code and carries
// the exchange of identity.LinkOffer through the relay's link mailbox in
// the background; the new device, started with Config.Link, enters the
// code (AcceptLink), receives its certificate, logs in under the user id
// and publishes its key packages. The offering device then adds it to
// every active channel of the user (channel.Manager.AddDevice, one commit
// per channel through the one commit path). RevokeDevice signs a
// revocation, hands it to the relay (which refuses the device from then
// on) and removes the device from every channel.

// Errors of devices and linking.
var (
	// ErrAlreadyLinked: the device belongs to a user already.
	ErrAlreadyLinked = errors.New("client: this device belongs to a user already")
	// ErrLinkFailed: the link exchange did not complete (no offer under
	// that code, a wrong code, or no answer in time).
	ErrLinkFailed = errors.New("client: device link failed")
	// ErrRevokeSelf: a device does not revoke itself.
	ErrRevokeSelf = errors.New("client: a device cannot revoke itself")
	// ErrDeviceNotFound: no such device of this user.
	ErrDeviceNotFound = errors.New("client: no such device of this user")
)

// linkWait bounds AcceptLink: the offering device answers within seconds
// when the relay is up.
const linkWait = 90 * time.Second

// linkRelay is what linking needs of the relay beyond Relay; the adapter
// over relay/client has it.
type linkRelay interface {
	Devices(ctx context.Context, userID identity.UserID) (*relayclient.Directory, error)
	Revoke(ctx context.Context, revocation []byte) error
	OpenLinkMailbox(ctx context.Context, mailbox string) (time.Time, error)
	CloseLinkMailbox(ctx context.Context, mailbox string) error
	PostLink(ctx context.Context, mailbox string, side relayclient.LinkSide, msg []byte) (uint64, error)
	LinkMessages(ctx context.Context, mailbox string, side relayclient.LinkSide, after uint64, wait time.Duration) ([]relayclient.LinkMessage, uint64, error)
	// anonymous is a client of the same relay without a device, for the
	// new device's side of a link.
	anonymous() *relayclient.Client
	// linked makes the adapter log in with the device's new certificate.
	linked(cert []byte, signer relayclient.Signer)
}

func (a *relayAdapter) Devices(ctx context.Context, u identity.UserID) (*relayclient.Directory, error) {
	return a.rc().Devices(ctx, u)
}
func (a *relayAdapter) Revoke(ctx context.Context, r []byte) error { return a.rc().Revoke(ctx, r) }
func (a *relayAdapter) OpenLinkMailbox(ctx context.Context, mb string) (time.Time, error) {
	return a.rc().OpenLinkMailbox(ctx, mb)
}
func (a *relayAdapter) CloseLinkMailbox(ctx context.Context, mb string) error {
	return a.rc().CloseLinkMailbox(ctx, mb)
}
func (a *relayAdapter) PostLink(ctx context.Context, mb string, side relayclient.LinkSide, msg []byte) (uint64, error) {
	return a.rc().PostLink(ctx, mb, side, msg)
}
func (a *relayAdapter) LinkMessages(ctx context.Context, mb string, side relayclient.LinkSide, after uint64, wait time.Duration) ([]relayclient.LinkMessage, uint64, error) {
	return a.rc().LinkMessages(ctx, mb, side, after, wait)
}
func (a *relayAdapter) anonymous() *relayclient.Client {
	return relayclient.New(a.rc().BaseURL(), relayclient.Identity{}, a.opts)
}
func (a *relayAdapter) linked(cert []byte, signer relayclient.Signer) {
	a.p.Store(relayclient.New(a.rc().BaseURL(), relayclient.Identity{Certificate: cert, Signer: signer}, a.opts))
}

// linker is the relay for linking, or ErrRelayRequired.
func (c *Client) linker() (linkRelay, error) {
	lr, ok := c.relay.(linkRelay)
	if !ok {
		return nil, errf(ErrRelayRequired, "linking and listing devices need a relay")
	}
	return lr, nil
}

// relayErr maps a relay failure for the caller.
func relayErr(ctx context.Context, err error) error {
	if unreachable(ctx, err) {
		return fmt.Errorf("%w: %w", ErrRelayUnreachable, err)
	}
	return err
}

// DeviceInfo is one device of this user.
type DeviceInfo struct {
	DeviceID string
	Current  bool // this device
	Revoked  bool
}

// Devices lists this user's devices: the certified ones the relay's
// directory lists (each certificate checked here: the relay is not
// trusted with it) and the revoked ones. Without a relay, this device.
// Revocations the directory holds are verified and learnt.
func (c *Client) Devices(ctx context.Context) ([]DeviceInfo, error) {
	uid, me := c.p.UserID(), c.p.DeviceID()
	if uid == "" {
		return nil, provider.ErrNotLinked
	}
	out := []DeviceInfo{{DeviceID: me.String(), Current: true}}
	if c.relay == nil {
		return out, nil
	}
	lr, err := c.linker()
	if err != nil {
		return nil, err
	}
	dir, err := lr.Devices(ctx, uid)
	c.noteRelay(ctx, err)
	if err != nil {
		return nil, relayErr(ctx, err)
	}
	ik := c.p.IdentityKey()
	seen := map[string]bool{me.String(): true}
	for _, enc := range dir.Revocations {
		r, err := identity.ParseRevocation(enc)
		if err != nil || r.IdentityKey != ik || c.p.AddRevocation(ctx, r) != nil {
			continue
		}
	}
	for _, e := range dir.Devices {
		cert, err := identity.ParseCertificate(e.Certificate)
		if err != nil || cert.VerifySignature() != nil || cert.IdentityKey != ik || seen[cert.Device.ID.String()] {
			continue
		}
		seen[cert.Device.ID.String()] = true
		out = append(out, DeviceInfo{DeviceID: cert.Device.ID.String(), Revoked: c.p.IsRevoked(ik, cert.Device.ID)})
	}
	for _, r := range c.p.Revocations() {
		if r.IdentityKey == ik && !seen[r.DeviceID.String()] {
			seen[r.DeviceID.String()] = true
			out = append(out, DeviceInfo{DeviceID: r.DeviceID.String(), Revoked: true})
		}
	}
	return out, nil
}

// LinkOffer is an open offer to link a new device.
type LinkOffer struct {
	// Code is what the user types on the new device (a secret until the
	// link completes: never log it).
	Code      string
	ExpiresAt time.Time
}

// OfferLink opens a link offer on the device that holds the identity key
// and returns its code. In the background it certifies the device that
// answers with the code and adds it to this user's active channels; the
// offer ends there, or when it expires, or when an answer fails to
// authenticate (a wrong code: draw another).
func (c *Client) OfferLink(ctx context.Context) (*LinkOffer, error) {
	lr, err := c.linker()
	if err != nil {
		return nil, err
	}
	if !c.p.HoldsIdentityKey() {
		return nil, fmt.Errorf("%w: link new devices from the user's first device", provider.ErrNoIdentityKey)
	}
	for try := 0; ; try++ {
		offer, err := identity.NewLinkOffer(nil)
		if err != nil {
			return nil, err
		}
		mb := offer.Code().Mailbox()
		exp, err := lr.OpenLinkMailbox(ctx, mb)
		c.noteRelay(ctx, err)
		var re *relayclient.Error
		if errors.As(err, &re) && re.Code == "mailbox_taken" && try < 3 {
			continue // another link uses that mailbox: draw another code
		}
		if err != nil {
			return nil, relayErr(ctx, err)
		}
		if _, err := lr.PostLink(ctx, mb, relayclient.LinkOffer, offer.Hello()); err != nil {
			c.closeMailbox(lr, mb)
			return nil, relayErr(ctx, err)
		}
		c.wg.Add(1)
		go c.runOffer(lr, offer, mb, exp)
		return &LinkOffer{Code: offer.Code().Text(), ExpiresAt: exp}, nil
	}
}

func (c *Client) closeMailbox(lr linkRelay, mb string) {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	if err := lr.CloseLinkMailbox(ctx, mb); err != nil && !errors.Is(err, relayclient.ErrNotFound) {
		c.log.Debug("closing a link mailbox", "mailbox", mb, "err", err)
	}
}

// runOffer answers one offer until it expires: certify the device that
// answers, then add it to the channels. The mailbox is closed at the end,
// which also tells a new device that typed a wrong code (its wait ends).
func (c *Client) runOffer(lr linkRelay, offer *identity.LinkOffer, mb string, exp time.Time) {
	defer c.wg.Done()
	ctx, cancel := context.WithDeadline(c.ctx, exp)
	defer cancel()
	cert, name, err := c.certifyAnswer(ctx, lr, offer, mb)
	if err != nil {
		c.closeMailbox(lr, mb)
		if ctx.Err() == nil {
			c.log.Warn("device link failed", "mailbox", mb, "err", err)
		}
		return
	}
	c.log.Info("linked a device", "device", cert.Device.ID, "name", name)
	// The new device may not have read its certificate yet: closed at
	// once, the mailbox was gone when the new device's long poll woke to
	// read it, and the link failed there (TestLinkCLI, 1 run in 20).
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		gctx, gcancel := context.WithDeadline(c.ctx, exp)
		defer gcancel()
		sleepCtx(gctx, linkGrace)
		c.closeMailbox(lr, mb)
	}()
	c.addLinkedDevice(ctx, cert.Device.ID)
}

// linkGrace is how long a mailbox stays open after the offering device
// posted the new device's certificate (it expires anyway, api.LinkMailboxTTL).
const linkGrace = 30 * time.Second

// certifyAnswer waits for the new device's request, checks it and posts
// its certificate. A message that does not decode costs no guess.
func (c *Client) certifyAnswer(ctx context.Context, lr linkRelay, offer *identity.LinkOffer, mb string) (*identity.Certificate, string, error) {
	var after uint64
	for {
		ms, next, err := lr.LinkMessages(ctx, mb, relayclient.LinkJoin, after, c.cfg.Wait)
		if err != nil {
			if ctx.Err() != nil || !unreachable(ctx, err) || !sleepCtx(ctx, c.cfg.Retry) {
				return nil, "", err
			}
			continue
		}
		after = next
		for _, m := range ms {
			req, err := offer.ReadRequest(m.Message)
			if errors.Is(err, identity.ErrLinkMessage) {
				continue
			}
			if err != nil {
				return nil, "", err
			}
			msg, cert, err := c.p.AcceptLink(offer, 0)
			if err != nil {
				return nil, "", err
			}
			for {
				_, err := lr.PostLink(ctx, mb, relayclient.LinkOffer, msg)
				if err == nil {
					return cert, req.Name, nil
				}
				if !unreachable(ctx, err) || !sleepCtx(ctx, c.cfg.Retry) {
					return nil, "", err
				}
			}
		}
	}
}

// addLinkedDevice adds a newly certified device of this user to every
// active channel, once its key packages are in the relay's directory.
func (c *Client) addLinkedDevice(ctx context.Context, dev identity.DeviceID) {
	ds, err := c.mgr.Channels(ctx)
	if err != nil {
		c.log.Error("listing channels", "err", err)
		return
	}
	for _, d := range ds {
		if st, _ := c.channelState(ctx, d.ID); st.State != StateActive {
			continue
		}
		if err := c.addOwnDevice(ctx, d.ID, dev, true); err != nil && ctx.Err() == nil {
			c.log.Warn("adding a linked device to a channel failed", "channel", d.ID, "device", dev, "err", err)
		}
	}
	c.kickPool() // the claims took one key package of each of our devices
}

// errNoDeviceKeyPackage: the device has no key package at the relay.
var errNoDeviceKeyPackage = errors.New("client: the device has published no key package")

// addOwnDevice claims a key package of device dev of our user (with wait,
// waiting until it publishes one) and adds it to the channel.
func (c *Client) addOwnDevice(ctx context.Context, channelID string, dev identity.DeviceID, wait bool) error {
	uid := c.p.UserID()
	for delay := c.cfg.Retry; ; delay = min(2*delay, 2*time.Second) {
		// A claim takes a key package of each of our devices: claim only
		// once the relay lists the device (it logged in; it publishes
		// its key packages right after).
		if wait && !c.deviceListed(ctx, dev) {
			if !sleepCtx(ctx, delay) {
				return ctx.Err()
			}
			continue
		}
		claimed, err := c.relay.ClaimKeyPackages(ctx, uid)
		c.noteRelay(ctx, err)
		if err != nil && !errors.Is(err, relayclient.ErrNotFound) && !unreachable(ctx, err) {
			return err
		}
		for _, k := range claimed {
			if k.DeviceID != dev.String() {
				continue
			}
			_, err := c.commit(ctx, channelID, func(ctx context.Context) error {
				_, _, err := c.mgr.AddDevice(ctx, channelID, k.KeyPackage)
				return err
			})
			if errors.Is(err, channel.ErrDeviceExists) {
				return nil
			}
			return err
		}
		if !wait {
			return errNoDeviceKeyPackage
		}
		if !sleepCtx(ctx, delay) {
			return ctx.Err()
		}
	}
}

// addOtherDevices adds this user's other certified devices to a channel
// this device just created, in the background once the relay has the
// group, bounded by a minute.
func (c *Client) addOtherDevices(channelID string) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, time.Minute)
	defer cancel()
	if !c.waitOutbox(ctx, channelID, time.Minute) {
		return
	}
	devs, err := c.Devices(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("listing our devices for a new channel", "channel", channelID, "err", err)
		}
		return
	}
	added := false
	for _, d := range devs {
		if d.Current || d.Revoked {
			continue
		}
		dev, err := identity.ParseDeviceID(d.DeviceID)
		if err != nil {
			continue
		}
		if err := c.addOwnDevice(ctx, channelID, dev, true); err != nil && ctx.Err() == nil {
			c.log.Warn("adding our device to a new channel", "channel", channelID, "device", dev, "err", err)
		}
		added = true
	}
	if added {
		c.kickPool()
	}
}

// reconcileDevices, when the engine starts working with the relay, makes
// each active channel hold exactly our user's current devices: devices
// of ours the channel lacks are added (one that has published no key
// package is left for the next start), and devices of ours it holds that
// we know to be revoked are removed. It finishes what a crash between
// linking (or revoking) and the channel commits left undone, and learns
// the revocations the relay's directory holds. Bounded by two minutes.
func (c *Client) reconcileDevices() {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, 2*time.Minute)
	defer cancel()
	devs, err := c.Devices(ctx)
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, ErrRelayRequired) {
			c.log.Debug("listing our devices", "err", err)
		}
		return
	}
	if len(devs) == 1 {
		return // this device alone: nothing to add or remove
	}
	var want []identity.DeviceID
	for _, d := range devs {
		if dev, err := identity.ParseDeviceID(d.DeviceID); err == nil && !d.Current && !d.Revoked {
			want = append(want, dev)
		}
	}
	ds, err := c.mgr.Channels(ctx)
	if err != nil {
		return
	}
	uid, added := c.p.UserID(), false
	for _, d := range ds {
		if st, _ := c.channelState(ctx, d.ID); st.State != StateActive {
			continue
		}
		leaves, err := c.mgr.Leaves(ctx, d.ID)
		if err != nil {
			continue
		}
		have, revoked := map[identity.DeviceID]bool{}, false
		for _, l := range leaves {
			if l.Verified && l.UserID == uid {
				have[l.DeviceID] = true
				revoked = revoked || l.Revoked
			}
		}
		if revoked {
			if _, err := c.commit(ctx, d.ID, func(ctx context.Context) error {
				_, err := c.mgr.RemoveRevoked(ctx, d.ID)
				return err
			}); err != nil && !errors.Is(err, channel.ErrMemberNotFound) && ctx.Err() == nil {
				c.log.Warn("removing our revoked devices", "channel", d.ID, "err", err)
			}
		}
		for _, dev := range want {
			if have[dev] {
				continue
			}
			err := c.addOwnDevice(ctx, d.ID, dev, false)
			added = added || err == nil
			if err != nil && !errors.Is(err, errNoDeviceKeyPackage) && ctx.Err() == nil {
				c.log.Warn("adding our device to a channel", "channel", d.ID, "device", dev, "err", err)
			}
		}
	}
	if added {
		c.kickPool()
	}
}

// deviceListed reports whether the relay's directory lists our device dev.
func (c *Client) deviceListed(ctx context.Context, dev identity.DeviceID) bool {
	devs, err := c.Devices(ctx)
	if err != nil {
		return false
	}
	for _, d := range devs {
		if d.DeviceID == dev.String() && !d.Revoked {
			return true
		}
	}
	return false
}

// AcceptLink links this device, started with Config.Link, to the user of
// the device showing code: it answers that device's offer through the
// relay, installs the certificate it receives, then logs in as the user
// and publishes its key packages; the other device adds it to the user's
// channels. It returns the user id.
func (c *Client) AcceptLink(ctx context.Context, code string) (identity.UserID, error) {
	lr, err := c.linker()
	if err != nil {
		return "", err
	}
	c.linkMu.Lock()
	defer c.linkMu.Unlock()
	if c.p.Certificate() != nil {
		return "", fmt.Errorf("%w: %s", ErrAlreadyLinked, c.p.UserID().Short())
	}
	lc, err := identity.ParseLinkCode(code)
	if err != nil {
		return "", err
	}
	join, err := identity.NewLinkJoin(lc, c.p.Device(), c.p.LinkSigner(), c.p.DisplayName(), nil)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, linkWait)
	defer cancel()
	anon, mb := lr.anonymous(), lc.Mailbox()
	hello, after, err := c.waitLink(ctx, anon, mb, 0)
	if err != nil {
		return "", err
	}
	req, err := join.Respond(hello)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrLinkFailed, err)
	}
	if _, err := anon.PostLink(ctx, mb, relayclient.LinkJoin, req); err != nil {
		return "", c.linkErr(ctx, err)
	}
	msg, _, err := c.waitLink(ctx, anon, mb, after)
	if err != nil {
		return "", err
	}
	cert, err := join.Finish(msg)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrLinkFailed, err)
	}
	enc, err := cert.Marshal()
	if err != nil {
		return "", err
	}
	if err := c.p.InstallCertificate(ctx, cert); err != nil {
		return "", err
	}
	// Linked and stored: from here on the engine starts whatever becomes
	// of the request.
	lr.linked(enc, c.p)
	c.log.Info("linked to user", "user", cert.UserID().Short(), "device", cert.Device.ID)
	octx, ocancel := context.WithTimeout(c.ctx, 10*time.Second)
	online := c.online(octx)
	ocancel()
	c.goRelay(online)
	return cert.UserID(), nil
}

// waitLink waits for the offering device's next message after seq after.
func (c *Client) waitLink(ctx context.Context, anon *relayclient.Client, mb string, after uint64) ([]byte, uint64, error) {
	for {
		ms, next, err := anon.LinkMessages(ctx, mb, relayclient.LinkOffer, after, min(c.cfg.Wait, 20*time.Second))
		if err != nil {
			if ctx.Err() == nil && unreachable(ctx, err) && sleepCtx(ctx, c.cfg.Retry) {
				continue
			}
			return nil, 0, c.linkErr(ctx, err)
		}
		if len(ms) > 0 {
			return ms[0].Message, ms[0].Seq, nil
		}
		after = next
	}
}

func (c *Client) linkErr(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, relayclient.ErrNotFound):
		return fmt.Errorf("%w: no open link offer under this code (expired, ended, or a wrong code)", ErrLinkFailed)
	case ctx.Err() != nil:
		return fmt.Errorf("%w: no answer from the other device in time", ErrLinkFailed)
	}
	return relayErr(ctx, err)
}

// RevokeDevice revokes another device of this user, on the device that
// holds the identity key: the revocation is stored, handed to the relay
// (which refuses the device's logins and key packages from then on), and
// the device is removed from every active channel. It returns how many
// channels it was removed from. Revoking again completes what a failure
// left undone.
func (c *Client) RevokeDevice(ctx context.Context, deviceID string) (int, error) {
	dev, err := identity.ParseDeviceID(deviceID)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrDeviceNotFound, deviceID)
	}
	if dev == c.p.DeviceID() {
		return 0, ErrRevokeSelf
	}
	if !c.p.HoldsIdentityKey() {
		return 0, fmt.Errorf("%w: revoke devices from the user's first device", provider.ErrNoIdentityKey)
	}
	lr, err := c.linker()
	if err != nil {
		return 0, err
	}
	devs, err := c.Devices(ctx)
	if err != nil {
		return 0, err
	}
	found := false
	for _, d := range devs {
		found = found || d.DeviceID == dev.String()
	}
	if !found {
		return 0, fmt.Errorf("%w: %s", ErrDeviceNotFound, dev)
	}
	rev, err := c.p.Revoke(ctx, dev) // durable here before it leaves
	if err != nil {
		return 0, err
	}
	enc, err := rev.Marshal()
	if err != nil {
		return 0, err
	}
	err = lr.Revoke(ctx, enc)
	c.noteRelay(ctx, err)
	if err != nil {
		return 0, relayErr(ctx, err)
	}
	ds, err := c.mgr.Channels(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range ds {
		if st, _ := c.channelState(ctx, d.ID); st.State != StateActive {
			continue
		}
		_, err := c.commit(ctx, d.ID, func(ctx context.Context) error {
			_, err := c.mgr.RemoveRevoked(ctx, d.ID)
			return err
		})
		switch {
		case errors.Is(err, channel.ErrMemberNotFound):
		case err != nil:
			return n, fmt.Errorf("channel %s: %w", d.ID, err)
		default:
			n++
		}
	}
	return n, nil
}
