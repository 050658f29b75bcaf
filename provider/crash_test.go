package provider_test

// Crash safety of the provider: Bob's process runs a stream of operations on
// a group with Alice and Carol (and Dave, whom Bob adds and removes), and
// the test SIGKILLs it at random points. The parent plays the delivery
// service and the other members. After every kill Bob's data directory must
// open, the group must load, Bob must catch up and talk both ways, and no
// application message Bob ever emitted may reuse a (epoch, sender leaf,
// generation): the other members process every message he emitted, and
// schedule.ErrKeyConsumed on one that is not byte-identical to an earlier
// one is a reuse.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
	"github.com/spacepanda/spacepanda/provider"
)

type member struct {
	name string
	p    *provider.Provider
}

// crashWorld is the parent's side: the delivery service and the members
// other than Bob.
type crashWorld struct {
	t        *testing.T
	gid      []byte
	alice    *member
	carol    *member
	dave     *member
	daveIn   bool
	daveLeaf int
	inbox    []string        // messages for Bob, in order, not yet acknowledged
	seen     map[string]bool // Bob's application messages the others processed
	unmerged string          // Bob's commit accepted by the DS, merge not confirmed
	commits  map[string]bool // Alice's commits (some may wait in Bob's inbox)
	texts    int
	stats    map[string]int
}

func (w *crashWorld) others() []*member {
	ms := []*member{w.alice, w.carol}
	if w.daveIn {
		ms = append(ms, w.dave)
	}
	return ms
}

// deliverFromBob hands one of Bob's messages to the other members.
func (w *crashWorld) deliverFromBob(msg string, except *member) {
	t := w.t
	t.Helper()
	m, err := mls.UnmarshalMessage(mustDec(t, msg))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range w.others() {
		if o == except {
			continue
		}
		if _, err := o.p.Process(ctx, w.gid, m); err != nil {
			if errors.Is(err, schedule.ErrKeyConsumed) {
				t.Fatalf("REUSE: %s got a new message from bob under a consumed key: %v", o.name, err)
			}
			t.Fatalf("%s processing bob's message: %v", o.name, err)
		}
	}
}

// bobSend: Bob sends; every other member decrypts it.
func (w *crashWorld) bobSend(bob *agent) error {
	w.texts++
	text := "bob-" + strconv.Itoa(w.texts)
	res, err := bob.try("send", enc(w.gid), text)
	if err != nil {
		return err
	}
	msg := res[0]
	if w.seen[msg] {
		return nil // byte-identical: a duplicate delivery, not a reuse
	}
	w.seen[msg] = true
	m, err := mls.UnmarshalMessage(mustDec(w.t, msg))
	if err != nil {
		w.t.Fatal(err)
	}
	for _, o := range w.others() {
		r, err := o.p.Process(ctx, w.gid, m)
		if errors.Is(err, schedule.ErrKeyConsumed) {
			w.t.Fatalf("REUSE: bob emitted a second message under a consumed (epoch, leaf, generation): %s: %v", o.name, err)
		}
		if err != nil {
			w.t.Fatalf("%s processing %q: %v", o.name, text, err)
		}
		if string(r.ApplicationData) != text {
			w.t.Fatalf("%s got %q, want %q", o.name, r.ApplicationData, text)
		}
	}
	w.stats["bob sent"]++
	return nil
}

// othersSend: a random other member sends; the rest decrypt; Bob's inbox
// gets it.
func (w *crashWorld) othersSend(rng *rand.Rand) {
	ms := w.others()
	from := ms[rng.IntN(len(ms))]
	w.texts++
	text := from.name + "-" + strconv.Itoa(w.texts)
	msg := encrypt(w.t, from.p, w.gid, text)
	for _, o := range ms {
		if o != from {
			if got := receive(w.t, o.p, w.gid, msg); got != text {
				w.t.Fatalf("%s got %q", o.name, got)
			}
		}
	}
	w.inbox = append(w.inbox, msg)
}

// aliceCommit: Alice updates her path; the others process; Bob's inbox
// gets the commit.
func (w *crashWorld) aliceCommit() {
	res, err := w.alice.p.CommitNow(ctx, w.gid, mls.CommitOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	msg := marshal(w.t, res.Commit)
	for _, o := range w.others() {
		if o != w.alice {
			receive(w.t, o.p, w.gid, msg)
		}
	}
	w.inbox = append(w.inbox, msg)
	w.commits[msg] = true
}

// behind is how many epochs Bob's inbox holds back: his messages sent now
// are in an epoch that many commits old.
func (w *crashWorld) behind() int {
	n := 0
	for _, m := range w.inbox {
		if w.commits[m] {
			n++
		}
	}
	return n
}

// bobRecv delivers Bob's next inbox message. inFlight says it may already
// have been processed by a process that was killed before acknowledging it.
func (w *crashWorld) bobRecv(bob *agent, inFlight bool) error {
	res, err := bob.try("recv", enc(w.gid), w.inbox[0])
	var ae *agentError
	if errors.As(err, &ae) && inFlight && (ae.class == "keyconsumed" || ae.class == "wrongepoch") {
		w.stats["redelivered, already processed"]++
		err, res = nil, nil
	}
	if err != nil {
		return err
	}
	_ = res
	w.inbox = w.inbox[1:]
	return nil
}

func (w *crashWorld) drain(bob *agent) error {
	for len(w.inbox) > 0 {
		if err := w.bobRecv(bob, false); err != nil {
			return err
		}
	}
	return nil
}

// bobCommit: Bob commits (a self-update, adding Dave, or removing him); the
// DS accepts it as soon as it sees it; the others process it; then Bob
// merges.
func (w *crashWorld) bobCommit(bob *agent, rng *rand.Rand) error {
	if err := w.drain(bob); err != nil {
		return err
	}
	cmd := []string{"commit", enc(w.gid)}
	kind := "update"
	switch {
	case rng.IntN(3) > 0:
	case w.daveIn:
		cmd, kind = []string{"remove", enc(w.gid), strconv.Itoa(w.daveLeaf)}, "remove"
	default:
		kps, err := w.dave.p.GenerateKeyPackages(ctx, 1)
		if err != nil {
			w.t.Fatal(err)
		}
		cmd, kind = append(cmd, enc(kps[0])), "add"
	}
	res, err := bob.try(cmd...)
	if err != nil {
		return err
	}
	// Accepted by the DS: from here on the group is in the next epoch.
	w.unmerged = res[0]
	w.deliverFromBob(res[0], nil)
	switch kind {
	case "add":
		wm, err := mls.UnmarshalMessage(mustDec(w.t, res[1]))
		if err != nil {
			w.t.Fatal(err)
		}
		var rt tree.RatchetTreeNodes
		if err := wire.Unmarshal(mustDec(w.t, res[2]), &rt); err != nil {
			w.t.Fatal(err)
		}
		j, err := w.dave.p.Join(ctx, wm.Welcome, rt)
		if err != nil {
			w.t.Fatalf("dave joins: %v", err)
		}
		w.daveIn, w.daveLeaf = true, int(j.Group.OwnLeafIndex())
	case "remove":
		if err := w.dave.p.ForgetGroup(ctx, w.gid); err != nil {
			w.t.Fatal(err)
		}
		w.daveIn = false
	}
	w.stats["bob commit "+kind]++
	if _, err := bob.try("merge", enc(w.gid)); err != nil {
		return err
	}
	w.unmerged = ""
	return nil
}

// check verifies Bob is in the others' epoch with their members.
func (w *crashWorld) check(bob *agent) {
	w.t.Helper()
	e := bob.do("epoch", enc(w.gid))
	want := epochOf(w.t, w.alice.p, w.gid)
	if e[0] != strconv.FormatUint(want, 10) || e[1] != strconv.Itoa(len(w.others())+1) {
		w.t.Fatalf("bob in epoch %s with %s members; the group is in %d with %d", e[0], e[1], want, len(w.others())+1)
	}
}

func TestCrashSafety(t *testing.T) {
	rounds := 30
	if testing.Short() {
		rounds = 8
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))

	bobDir := t.TempDir()
	w := &crashWorld{t: t, seen: map[string]bool{}, commits: map[string]bool{}, stats: map[string]int{},
		alice: &member{"alice", open(t, t.TempDir(), "alice")},
		carol: &member{"carol", open(t, t.TempDir(), "carol")},
		dave:  &member{"dave", open(t, t.TempDir(), "dave")}}
	bkp := run(t, bobDir, "bob", []string{"kp", "1"})[0][0]
	ckp, err := w.carol.p.GenerateKeyPackages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if w.gid, err = w.alice.p.CreateGroup(ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
	res, err := w.alice.p.CommitNow(ctx, w.gid, mls.CommitOptions{Add: []*mls.KeyPackage{keyPackage(t, bkp), keyPackage(t, enc(ckp[0]))}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.carol.p.Join(ctx, res.Welcome, res.RatchetTree); err != nil {
		t.Fatal(err)
	}
	f, err := commitFields(res)
	if err != nil {
		t.Fatal(err)
	}
	run(t, bobDir, "bob", []string{"join", f[1], f[2]})

	var inFlightRecv bool // the kill may have hit a recv of inbox[0]
	for round := 0; round < rounds; round++ {
		bob := startAgent(t, bobDir, "bob")
		// Recovery: Bob's accepted but unconfirmed commit comes back from
		// the DS; a message in flight at the kill is delivered again.
		if w.unmerged != "" {
			_, err := bob.try("recv", enc(w.gid), w.unmerged)
			var ae *agentError
			switch {
			case err == nil:
				w.stats["own commit merged on redelivery"]++
			case errors.As(err, &ae) && ae.class == "wrongepoch":
				w.stats["own commit already merged"]++
			default:
				t.Fatalf("round %d: bob's accepted commit after restart: %v", round, err)
			}
			w.unmerged = ""
		}
		if len(w.inbox) > 0 {
			if err := w.bobRecv(bob, inFlightRecv); err != nil {
				t.Fatalf("round %d: redelivery: %v", round, err)
			}
		}
		inFlightRecv = false
		if err := w.drain(bob); err != nil {
			t.Fatalf("round %d: catching up: %v", round, err)
		}
		w.check(bob)
		// Both ways after the restart.
		if err := w.bobSend(bob); err != nil {
			t.Fatalf("round %d: send after restart: %v", round, err)
		}
		w.othersSend(rng)
		if err := w.drain(bob); err != nil {
			t.Fatalf("round %d: receive after restart: %v", round, err)
		}

		// The stream, until the kill lands.
		var killed atomic.Bool
		delay := time.Duration(5+rng.IntN(250)) * time.Millisecond
		timer := time.AfterFunc(delay, func() {
			killed.Store(true)
			bob.cmd.Process.Kill()
		})
		deadline := time.Now().Add(10 * time.Second)
		ops := 0
		for {
			if time.Now().After(deadline) {
				t.Fatal("kill never landed")
			}
			var err error
			switch op := rng.IntN(20); {
			case op < 8:
				err = w.bobSend(bob)
			case op < 12:
				w.othersSend(rng)
			case op < 13:
				// The others keep DefaultMaxPastEpochs past epochs to open
				// late messages; a Bob further behind than that is a member
				// out of step (the sync engine's job), not what this tests.
				if w.behind() < mls.DefaultMaxPastEpochs {
					w.aliceCommit()
				}
			case op < 17:
				if len(w.inbox) > 0 {
					inFlightRecv = true
					err = w.bobRecv(bob, false)
					if err == nil {
						inFlightRecv = false
					}
				}
			default:
				inFlightRecv = len(w.inbox) > 0
				err = w.bobCommit(bob, rng)
				if err == nil {
					inFlightRecv = false
				}
			}
			if err != nil {
				var ae *agentError
				if errors.As(err, &ae) || !killed.Load() {
					t.Fatalf("round %d op %d: %v", round, ops, err)
				}
				break
			}
			ops++
		}
		timer.Stop()
		bob.kill()
		w.stats["ops"] += ops
		if w.unmerged != "" {
			w.stats["killed between accept and merge"]++
		}
	}

	// After the last kill: everything still works.
	bob := startAgent(t, bobDir, "bob")
	if w.unmerged != "" {
		if _, err := bob.try("recv", enc(w.gid), w.unmerged); err != nil {
			var ae *agentError
			if !errors.As(err, &ae) || ae.class != "wrongepoch" {
				t.Fatal(err)
			}
		}
		w.unmerged = ""
	}
	if len(w.inbox) > 0 {
		if err := w.bobRecv(bob, inFlightRecv); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.drain(bob); err != nil {
		t.Fatal(err)
	}
	w.check(bob)
	if err := w.bobSend(bob); err != nil {
		t.Fatal(err)
	}
	bob.stop()
	t.Logf("%d rounds, %d distinct messages from bob checked: %v", rounds, len(w.seen), fmt.Sprint(w.stats))
}
