package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spacepanda/spacepanda/internal/childproc"
	"github.com/spacepanda/spacepanda/node"
)

// runNodes starts a relay and cfg.Clients nodes as processes, sets up
// cfg.Channels channels of cfg.Members nodes each, and has every node send
// to its channels through its HTTP API; every other member polls its
// history and records each message's latency (the send time travels in
// the text).
func runNodes(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Exe == "" {
		return nil, errors.New("loadtest: end to end needs the spacepanda binary")
	}
	if cfg.Channels < 1 {
		cfg.Channels = max(1, cfg.Clients/2)
	}
	if cfg.Members < 2 {
		cfg.Members = 3
	}
	cfg.Members = min(cfg.Members, cfg.Clients)
	if cfg.Members < 2 {
		return nil, errors.New("loadtest: end to end needs at least 2 nodes")
	}
	dir, rm := cfg.Dir, func() {}
	if dir == "" {
		d, err := os.MkdirTemp("", "spacepanda-loadtest-")
		if err != nil {
			return nil, err
		}
		dir, rm = d, func() { os.RemoveAll(d) }
	}
	defer rm()
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o700); err != nil {
			return nil, fmt.Errorf("loadtest: profile directory: %w", err)
		}
	}
	backend := "sqlite"
	// Every node is a new identity from loopback.
	args := []string{"relay", "--listen", "127.0.0.1:0", "--new-identities-per-hour", strconv.Itoa(cfg.Clients + 20)}
	if cfg.Postgres != "" {
		backend, args = "postgres", append(args, "--postgres", cfg.Postgres)
	} else {
		args = append(args, "--data", filepath.Join(dir, "relay"))
	}
	relay, err := childproc.Start(ctx, cfg.Exe, args, "spacepanda relay serving on ", nil, cfg.profileEnv("relay"))
	if err != nil {
		return nil, err
	}
	defer relay.Stop()
	relayURL := relay.Addr
	nodes := make([]*nodeProc, cfg.Clients)
	for i := range nodes {
		name := fmt.Sprintf("n%d", i)
		proc, err := childproc.Start(ctx, cfg.Exe, []string{"serve", "--data", filepath.Join(dir, name), "--listen", "127.0.0.1:0",
			"--name", name, "--relay", relayURL}, " serving on ", nil, cfg.nodeEnv(name))
		if err != nil {
			return nil, err
		}
		defer proc.Stop()
		// Connections kept for every send in flight: with the default two
		// idle ones per host the driver dialled each node again for most
		// sends, which the node paid for too.
		n := &nodeProc{proc: proc, c: &node.Client{BaseURL: proc.Addr, HTTP: &http.Client{Timeout: 30 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: maxInFlight + 4}}}}
		var id struct {
			UserID string `json:"user_id"`
		}
		if err := n.c.Do(ctx, "GET", "/v1/identity", nil, &id); err != nil {
			return nil, err
		}
		n.user = id.UserID
		nodes[i] = n
	}
	// Everyone knows everyone: a Welcome from a contact joins at once
	// (from a stranger it would wait as a pending invitation).
	for _, n := range nodes {
		for _, o := range nodes {
			if o != n {
				if err := n.c.Do(ctx, "PUT", "/v1/contacts/"+url.PathEscape(o.user), map[string]any{}, nil); err != nil {
					return nil, fmt.Errorf("loadtest: contact: %w", err)
				}
			}
		}
	}
	type channel struct {
		id      string
		members []int
	}
	chans := make([]channel, cfg.Channels)
	for c := range chans {
		// Consecutive members, so that channels cover every node when
		// Channels*Members >= Clients (each node then sends).
		owner := c * cfg.Members % len(nodes)
		var ch struct {
			ChannelID string `json:"channel_id"`
		}
		if err := nodes[owner].c.Do(ctx, "POST", "/v1/channels", map[string]any{"name": ChannelName(c)}, &ch); err != nil {
			return nil, fmt.Errorf("loadtest: create channel: %w", err)
		}
		chans[c] = channel{id: ch.ChannelID, members: []int{owner}}
		for k := 1; k < cfg.Members; k++ {
			m := (owner + k) % len(nodes)
			p := "/v1/channels/" + url.PathEscape(ch.ChannelID)
			if err := nodes[owner].c.Do(ctx, "POST", p+"/invites", map[string]any{"user_id": nodes[m].user}, nil); err != nil {
				return nil, fmt.Errorf("loadtest: invite: %w", err)
			}
			if err := poll(ctx, 60*time.Second, func() bool { return nodes[m].c.Do(ctx, "GET", p, nil, nil) == nil }); err != nil {
				return nil, fmt.Errorf("loadtest: node %d did not join channel %d: %w", m, c, err)
			}
			chans[c].members = append(chans[c].members, m)
		}
	}
	for i, n := range nodes {
		for _, c := range chans {
			for _, m := range c.members {
				if m == i {
					n.chans = append(n.chans, c.id)
				}
			}
		}
	}

	cpu, busy := startCPU(relay, nodes), startBusy()
	rec := newRecorder()
	runCtx, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	readCtx, stopReaders := context.WithCancel(ctx)
	defer stopReaders()
	var wg, readers sync.WaitGroup
	wg.Go(func() { progress(runCtx, cfg.Progress, rec, cfg.Duration) })
	senders := 0 // the offered rate is shared by the nodes that send
	for _, n := range nodes {
		if len(n.chans) > 0 {
			senders++
		}
	}
	for i, n := range nodes {
		if len(n.chans) == 0 {
			continue
		}
		readers.Go(func() { n.readHistories(readCtx, i, rec) })
		wg.Go(func() {
			// With a rate the load is offered open loop: a send starts on
			// time whether or not the node answered the last ones (up to
			// maxInFlight at once per node), so that a slow node shows as
			// latency rather than as a lower offered rate.
			inflight := make(chan struct{}, maxInFlight)
			if cfg.Rate <= 0 {
				inflight = make(chan struct{}, 1)
			}
			var posts sync.WaitGroup
			defer posts.Wait()
			pace := pacer(cfg.Rate, senders)
			for k := 0; pace(runCtx); k++ {
				select {
				case inflight <- struct{}{}:
				case <-runCtx.Done():
					return
				}
				ch := n.chans[k%len(n.chans)]
				sent := time.Now()
				text := fmt.Sprintf("lt %d %d %d", sent.UnixNano(), i, k)
				posts.Go(func() {
					defer func() { <-inflight }()
					// Not runCtx: a send in flight at the end completes.
					pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					defer cancel()
					err := n.c.Do(pctx, "POST", "/v1/channels/"+url.PathEscape(ch)+"/messages", map[string]any{"text": text}, nil)
					rec.posted(sent, err)
				})
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(rec.start)
	nodeCPU, relayCPU, cpuOK := cpu()
	busyPct, _ := busy()
	// Every post reaches Members-1 others.
	want := func() bool {
		p, _, d := rec.counts()
		return d >= p*(cfg.Members-1)
	}
	poll(ctx, 10*time.Second, want)
	stopReaders()
	readers.Wait()
	res := rec.result("end-to-end", backend, cfg, elapsed)
	res.BusyPct = busyPct
	res.NodeProcs = gomaxprocs(ctx, nodes[0])
	if cpuOK && res.Posts > 0 {
		res.NodeCPUPerPost = round(ms(nodeCPU) / float64(res.Posts))
		res.RelayCPUPerPost = round(ms(relayCPU) / float64(res.Posts))
	}
	// What throttled the nodes: the relay's 429s they waited out, and
	// what was still queued at the end.
	for _, n := range nodes {
		var st struct {
			RateLimited int64 `json:"rate_limited"`
			OutboxDepth int64 `json:"outbox_depth"`
		}
		if n.c.Do(ctx, "GET", "/v1/relay", nil, &st) == nil {
			res.RateLimited += st.RateLimited
			res.OutboxLeft += st.OutboxDepth
		}
	}
	return res, nil
}

type nodeProc struct {
	proc  *childproc.Proc
	user  string
	c     *node.Client
	chans []string
}

// readHistories reads the node's channels for new messages from others
// as a client of the node would: it follows the node's event stream (GET
// /v1/events) and reads a channel's history after each "message" event
// of it (and every second, in case the stream broke).
func (n *nodeProc) readHistories(ctx context.Context, self int, rec *recorder) {
	after := make([]uint64, len(n.chans))         // every message up to it is counted
	seen := make([]map[uint64]bool, len(n.chans)) // counted, past after
	index := map[string]int{}
	for i, ch := range n.chans {
		index[ch] = i
		seen[i] = map[uint64]bool{}
	}
	dirty := make(chan int, 1024)
	live := make(chan liveMsg, 4096)
	go n.followEvents(ctx, index, dirty, live)
	got := func(i int, seq uint64, text string) {
		if seq <= after[i] || seen[i][seq] {
			return
		}
		seen[i][seq] = true
		// The history's seqs have no gaps: past a run of seen ones, the
		// next read starts after it, so the reads once a second fetch
		// what no event carried, not the whole second's messages.
		for seen[i][after[i]+1] {
			delete(seen[i], after[i]+1)
			after[i]++
		}
		f := strings.Fields(text)
		if len(f) != 4 || f[0] != "lt" || f[2] == strconv.Itoa(self) {
			return
		}
		if ns, err := strconv.ParseInt(f[1], 10, 64); err == nil {
			rec.delivered(time.Unix(0, ns))
		}
	}
	read := func(i int) {
		var page struct {
			Messages []struct {
				Seq  uint64 `json:"seq"`
				Text string `json:"text"`
			} `json:"messages"`
		}
		q := "?limit=1000&after=" + strconv.FormatUint(after[i], 10)
		if err := n.c.Do(ctx, "GET", "/v1/channels/"+url.PathEscape(n.chans[i])+"/messages"+q, nil, &page); err != nil {
			return
		}
		for _, m := range page.Messages {
			got(i, m.Seq, m.Text)
		}
		for _, m := range page.Messages {
			after[i] = max(after[i], m.Seq)
		}
		for seq := range seen[i] {
			if seq <= after[i] {
				delete(seen[i], seq)
			}
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case m := <-live:
			got(m.ch, m.seq, m.text)
		case i := <-dirty:
			// Events that came meanwhile are served by the same read.
			due := map[int]bool{i: true}
		drain:
			for {
				select {
				case j := <-dirty:
					due[j] = true
				default:
					break drain
				}
			}
			for j := range due {
				read(j)
			}
		case <-tick.C:
			for i := range n.chans {
				read(i) // what an event did not carry, or a broken stream lost
			}
		}
	}
}

// liveMsg is a message as its event carried it.
type liveMsg struct {
	ch   int
	seq  uint64
	text string
}

// followEvents follows the node's events, reconnecting (from the last
// event id) until ctx ends: a message its event carries goes to live, the
// index of a channel with a message it does not carry to dirty.
func (n *nodeProc) followEvents(ctx context.Context, index map[string]int, dirty chan<- int, live chan<- liveMsg) {
	last := ""
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, "GET", n.proc.Addr+"/v1/events?after="+last, nil)
		if err != nil {
			return
		}
		resp, err := (&http.Client{}).Do(req) // no timeout: a stream
		if err != nil {
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				last = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "message":
				var d struct {
					ChannelID string `json:"channel_id"`
					Sender    string `json:"sender"`
					Message   *struct {
						Seq  uint64 `json:"seq"`
						Text string `json:"text"`
					} `json:"message"`
				}
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d) != nil {
					break
				}
				i, ok := index[d.ChannelID]
				switch {
				case !ok:
				case d.Message != nil: // ours too: it fills the seqs read (got)
					select {
					case live <- liveMsg{i, d.Message.Seq, d.Message.Text}:
					case <-ctx.Done():
						return
					}
				case d.Sender == n.user: // ours, not carried: not a delivery
				default:
					select {
					case dirty <- i:
					default: // full: reads are due anyway
					}
				}
			}
		}
		resp.Body.Close()
		sleep(ctx, 100*time.Millisecond)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// poll calls cond until it holds or d passes.
func poll(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
	return nil
}

// startCPU reads the CPU time the relay and the nodes have used so far;
// the function it returns tells how much more they used since, over all
// nodes and for the relay (ok false where the system does not tell).
func startCPU(relay *childproc.Proc, nodes []*nodeProc) func() (nodeCPU, relayCPU time.Duration, ok bool) {
	total := func() (n, r time.Duration, err error) {
		if r, err = relay.CPU(); err != nil {
			return 0, 0, err
		}
		for _, x := range nodes {
			c, err := x.proc.CPU()
			if err != nil {
				return 0, 0, err
			}
			n += c
		}
		return n, r, nil
	}
	n0, r0, err0 := total()
	return func() (time.Duration, time.Duration, bool) {
		n1, r1, err := total()
		return n1 - n0, r1 - r0, err0 == nil && err == nil
	}
}

// maxInFlight bounds the sends a node has outstanding (end to end, with a
// rate).
const maxInFlight = 32

// profileEnv is the environment that has process name write a CPU
// profile into cfg.ProfileDir, and an execution trace too for the relay
// and node n0 (a trace of every node would be larger than the run). One
// node's profile holds too few samples to rank anything at a few dozen
// messages a second; `go tool pprof DIR/n*.pprof` merges them all.
func (cfg *Config) profileEnv(name string) []string {
	if cfg.ProfileDir == "" {
		return nil
	}
	base := filepath.Join(cfg.ProfileDir, name)
	env := []string{"SPACEPANDA_CPUPROFILE=" + base + ".pprof"}
	if name == "relay" || name == "n0" {
		env = append(env, "SPACEPANDA_TRACE="+base+".trace")
	}
	return env
}

// nodeEnv is the environment of node process name: its profiles and its
// GOMAXPROCS (Config.NodeProcs).
func (cfg *Config) nodeEnv(name string) []string {
	env := cfg.profileEnv(name)
	if cfg.NodeProcs > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(cfg.NodeProcs))
	}
	return env
}

// gomaxprocs is the GOMAXPROCS node n reports in its metrics (0 if it
// does not say).
func gomaxprocs(ctx context.Context, n *nodeProc) int {
	req, err := http.NewRequestWithContext(ctx, "GET", n.c.BaseURL+"/metrics", nil)
	if err != nil {
		return 0
	}
	resp, err := n.c.HTTP.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<20))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_sched_gomaxprocs_threads "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int(f)
		}
	}
	return 0
}

// ChannelName is the name of the run's channel c (tests look for it on
// the relay's disk).
func ChannelName(c int) string { return fmt.Sprintf("loadtest channel %d name", c) }
