package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
	"github.com/spacepanda/spacepanda/relay"
	client "github.com/spacepanda/spacepanda/relay/client"
)

// runRelayOnly starts a relay on loopback and has cfg.Clients users post
// to their own groups; a second device of each user long-polls the log
// and records each entry's latency (the send time travels in the
// message's ciphertext bytes, which the relay does not read).
func runRelayOnly(ctx context.Context, cfg Config) (*Result, error) {
	st, backend, cleanup, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	if cfg.ProfileDir != "" {
		stopProf, err := profileProcess(cfg.ProfileDir)
		if err != nil {
			return nil, err
		}
		defer stopProf()
	}
	srv := relay.New(st, relay.Options{Rate: 1e9, Burst: 1 << 30, NewIdentitiesPerIP: 1 << 30, Logger: slog.New(slog.DiscardHandler)})
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	base := "http://" + ln.Addr().String()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2*cfg.Clients + 4}}

	type pair struct {
		poster, reader *client.Client
		gid            []byte
	}
	pairs := make([]pair, cfg.Clients)
	for i := range pairs {
		u, err := identity.GenerateIdentity(nil)
		if err != nil {
			return nil, err
		}
		var p pair
		var posterID client.Identity
		for _, c := range []**client.Client{&p.poster, &p.reader} {
			id, err := newDevice(u)
			if err != nil {
				return nil, err
			}
			if c == &p.poster {
				posterID = id
			}
			*c = client.New(base, id, client.Options{HTTP: hc, MaxRetries429: -1})
			if err := (*c).Login(ctx); err != nil {
				return nil, fmt.Errorf("loadtest: login: %w", err)
			}
		}
		p.gid = fmt.Appendf(nil, "loadtest-%d-%x", i, rand.Text()[:8])
		gi, err := groupInfo(posterID, p.gid)
		if err != nil {
			return nil, err
		}
		if err := p.poster.CreateGroup(ctx, gi); err != nil {
			return nil, fmt.Errorf("loadtest: create group: %w", err)
		}
		pairs[i] = p
	}

	busy := startBusy()
	rec := newRecorder()
	runCtx, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { progress(runCtx, cfg.Progress, rec, cfg.Duration) })
	readCtx, stopReaders := context.WithCancel(ctx)
	defer stopReaders()
	var readers sync.WaitGroup
	for _, p := range pairs {
		readers.Go(func() { readLog(readCtx, p.reader, p.gid, rec) })
		wg.Go(func() {
			pace := pacer(cfg.Rate, cfg.Clients)
			for pace(runCtx) {
				sent := time.Now()
				msg, err := appMessage(p.gid, sent)
				if err != nil {
					rec.posted(sent, err)
					return
				}
				_, err = p.poster.PostMessage(runCtx, p.gid, client.Post{Message: msg})
				if runCtx.Err() != nil {
					return // cut by the end of the run
				}
				rec.posted(sent, err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(rec.start)
	busyPct, _ := busy()
	// Deliveries of posts made in time may still arrive: give them a
	// moment (bounded), then stop the readers.
	drain(ctx, rec, 5*time.Second)
	stopReaders()
	readers.Wait()
	res := rec.result("relay-only", backend, cfg, elapsed)
	res.BusyPct = busyPct
	return res, nil
}

// profileProcess writes a CPU profile of this process (relay and load
// clients alike: relay-only runs both in one process) to dir/relay.pprof
// until the returned function is called.
func profileProcess(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, "relay.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// drain waits until deliveries catch up with posts, at most d.
func drain(ctx context.Context, rec *recorder, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if p, _, dl := rec.counts(); dl >= p {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readLog(ctx context.Context, c *client.Client, gid []byte, rec *recorder) {
	var after uint64
	for ctx.Err() == nil {
		es, next, err := c.Messages(ctx, gid, client.Page{After: after, Wait: 10 * time.Second})
		if err != nil {
			if ctx.Err() == nil {
				time.Sleep(50 * time.Millisecond)
			}
			continue
		}
		for _, e := range es {
			if sent, ok := sentAt(e.Message); ok {
				rec.delivered(sent)
			}
		}
		after = next
	}
}

// openStore opens the relay's database: PostgreSQL at cfg.Postgres, else
// SQLite in cfg.Dir (or a temporary directory).
func openStore(ctx context.Context, cfg Config) (relay.Store, string, func(), error) {
	if cfg.Postgres != "" {
		st, err := relay.OpenPostgres(ctx, cfg.Postgres)
		if err != nil {
			return nil, "", nil, err
		}
		return st, "postgres", func() { st.Close() }, nil
	}
	dir, rm := cfg.Dir, func() {}
	if dir == "" {
		d, err := os.MkdirTemp("", "spacepanda-loadtest-")
		if err != nil {
			return nil, "", nil, err
		}
		dir, rm = d, func() { os.RemoveAll(d) }
	}
	st, err := relay.OpenSQLite(ctx, dir)
	if err != nil {
		rm()
		return nil, "", nil, err
	}
	return st, "sqlite", func() { st.Close(); rm() }, nil
}

// newDevice certifies a new device of u (suite 1), as a node does.
func newDevice(u *identity.PrivateIdentity) (client.Identity, error) {
	cs := suite.MustNew(1)
	priv, _, err := cs.GenerateSignatureKeyPair(nil)
	if err != nil {
		return client.Identity{}, err
	}
	sg, err := cs.NewSigner(priv)
	if err != nil {
		return client.Identity{}, err
	}
	dev, err := identity.NewDeviceID(nil)
	if err != nil {
		return client.Identity{}, err
	}
	d, err := identity.NewDevice(dev, cs.ID(), sg.PublicKey())
	if err != nil {
		return client.Identity{}, err
	}
	cert, err := u.Certify(d, time.Now(), 0)
	if err != nil {
		return client.Identity{}, err
	}
	enc, err := cert.Marshal()
	if err != nil {
		return client.Identity{}, err
	}
	return client.Identity{Certificate: enc, Signer: sg}, nil
}

// groupInfo is the signed GroupInfo (with its tree) of a new group of
// the device id alone, as the relay requires to register a group: the
// poster's leaf carries its device certificate; the reader, a device of
// the same user, reads by user id.
func groupInfo(id client.Identity, gid []byte) ([]byte, error) {
	cert, err := identity.ParseCertificate(id.Certificate)
	if err != nil {
		return nil, err
	}
	ext, err := cert.Extension()
	if err != nil {
		return nil, err
	}
	sg, ok := id.Signer.(*suite.Signer)
	if !ok {
		return nil, fmt.Errorf("loadtest: a device signer of type %T", id.Signer)
	}
	caps := identity.Capabilities(mls.DefaultCapabilities())
	g, err := mls.CreateGroup(suite.MustNew(1), sg, gid, mls.LeafOptions{
		Credential:   tree.NewBasicCredential([]byte(cert.UserID())),
		Capabilities: &caps, Extensions: tree.Extensions{ext}}, nil, mls.Config{})
	if err != nil {
		return nil, fmt.Errorf("loadtest: group: %w", err)
	}
	gi, err := g.GroupInfo(true)
	if err != nil {
		return nil, err
	}
	m, err := mls.NewMessage(gi)
	if err != nil {
		return nil, err
	}
	return wire.Marshal(m)
}

// appMessage is a PrivateMessage(application) of 200 ciphertext bytes
// whose first 8 carry the send time (the relay sees only the framing).
func appMessage(gid []byte, sent time.Time) ([]byte, error) {
	ct := make([]byte, 200)
	rand.Read(ct)
	binary.BigEndian.PutUint64(ct, uint64(sent.UnixNano()))
	m, err := mls.NewMessage(&mls.PrivateMessage{GroupID: gid, Epoch: 0, ContentType: mls.ContentTypeApplication,
		AuthenticatedData: []byte{}, EncryptedSenderData: ct[:16], Ciphertext: ct[16:]})
	if err != nil {
		return nil, err
	}
	return wire.Marshal(m)
}

func sentAt(data []byte) (time.Time, bool) {
	m, err := mls.UnmarshalMessage(data)
	if err != nil || m.WireFormat != mls.WireFormatPrivateMessage || len(m.PrivateMessage.EncryptedSenderData) < 8 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(m.PrivateMessage.EncryptedSenderData))), true
}
