package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spacepanda/spacepanda/node"
)

// cmdLink drives device linking through the nodes' HTTP API:
//
//	spacepanda link [--node URL]                  existing device: show a code, wait for the new device
//	spacepanda link [--node URL] --code CODE      new device (serve --link): enter the code
//	spacepanda link [--node URL] --list           the user's devices
//	spacepanda link [--node URL] --revoke ID      revoke a device (from the first device)
func cmdLink(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("link", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodeURL := fs.String("node", "http://127.0.0.1:8080", "the node's base URL")
	tokenFile := fs.String("token-file", "", "file holding the node's bearer token")
	code := fs.String("code", "", "on the new device (started with serve --link): the code the existing device shows")
	list := fs.Bool("list", false, "list the user's devices")
	revoke := fs.String("revoke", "", "revoke this device id (on the user's first device)")
	noWait := fs.Bool("no-wait", false, "show the code and return, without waiting for the new device")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "spacepanda link: unexpected arguments %q\n", fs.Args())
		return 2
	}
	n := 0
	for _, set := range []bool{*code != "", *list, *revoke != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		fmt.Fprintln(stderr, "spacepanda link: --code, --list and --revoke exclude each other")
		return 2
	}
	c := &node.Client{BaseURL: *nodeURL}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "spacepanda link: token file: %v\n", err)
			return 2
		}
		c.Token = string(bytes.TrimSpace(b))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case *code != "":
		err = linkAccept(ctx, c, *code, stdout)
	case *list:
		err = linkList(ctx, c, stdout)
	case *revoke != "":
		var r node.RevokeResponse
		if err = c.Do(ctx, "DELETE", "/v1/devices/"+url.PathEscape(*revoke), nil, &r); err == nil {
			fmt.Fprintf(stdout, "revoked device %s; removed from %d channels\n", r.DeviceID, r.Channels)
		}
	default:
		err = linkOffer(ctx, c, !*noWait, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "spacepanda link: %v\n", err)
		return 1
	}
	return 0
}

func devices(ctx context.Context, c *node.Client) ([]node.DeviceInfoResponse, error) {
	var r node.DevicesResponse
	err := c.Do(ctx, "GET", "/v1/devices", nil, &r)
	return r.Devices, err
}

func linkList(ctx context.Context, c *node.Client, stdout io.Writer) error {
	ds, err := devices(ctx, c)
	if err != nil {
		return err
	}
	for _, d := range ds {
		note := ""
		if d.Current {
			note = " (this device)"
		}
		if d.Revoked {
			note += " revoked"
		}
		fmt.Fprintf(stdout, "%s%s\n", d.DeviceID, note)
	}
	return nil
}

// linkOffer shows a code and, with wait, polls the user's devices until a
// new one is listed or the code expires.
func linkOffer(ctx context.Context, c *node.Client, wait bool, stdout io.Writer) error {
	before, err := devices(ctx, c)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, d := range before {
		known[d.DeviceID] = true
	}
	var o node.LinkOfferResponse
	if err := c.Do(ctx, "POST", "/v1/devices/link", nil, &o); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "link code: %s\n", o.Code)
	fmt.Fprintf(stdout, "on the new device (spacepanda serve --link ...): spacepanda link --node NEW-NODE-URL --code %s\n", o.Code)
	fmt.Fprintf(stdout, "the code expires at %s; it is a secret until then\n", o.ExpiresAt)
	if !wait {
		return nil
	}
	exp, err := time.Parse(time.RFC3339Nano, o.ExpiresAt)
	if err != nil {
		return err
	}
	for time.Now().Before(exp) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		ds, err := devices(ctx, c)
		if err != nil {
			continue // the relay may be away for a moment
		}
		for _, d := range ds {
			if !known[d.DeviceID] && !d.Revoked {
				fmt.Fprintf(stdout, "linked device %s; it is being added to your channels\n", d.DeviceID)
				return nil
			}
		}
	}
	return errors.New("the code expired before a new device used it")
}

func linkAccept(ctx context.Context, c *node.Client, code string, stdout io.Writer) error {
	var r node.LinkAcceptResponse
	if err := c.Do(ctx, "POST", "/v1/devices/link/accept", node.LinkAcceptRequest{Code: code}, &r); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "this device (%s) now belongs to user %s\n", r.DeviceID, r.UserID)
	return nil
}
