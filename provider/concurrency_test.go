package provider_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/provider"
)

// addMember adds a fresh identity (SQLite) to alice's group and returns it.
func addMember(t *testing.T, alice *provider.Provider, gid []byte, name string) *provider.Provider {
	t.Helper()
	p := open(t, t.TempDir(), name)
	kps, err := p.GenerateKeyPackages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	res, err := alice.CommitNow(ctx, gid, mls.CommitOptions{Add: []*mls.KeyPackage{keyPackage(t, enc(kps[0]))}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Join(ctx, res.Welcome, res.RatchetTree); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConcurrentSendsOneGroup: many goroutines send on one group through one
// Provider; every message is distinct and decrypts at the other member.
func TestConcurrentSendsOneGroup(t *testing.T) {
	alice := open(t, t.TempDir(), "alice")
	gid, err := alice.CreateGroup(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	bob := addMember(t, alice, gid, "bob")
	const workers, each = 8, 8
	msgs := make(chan string, workers*each)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				m, err := alice.Encrypt(ctx, gid, []byte(fmt.Sprintf("w%d-%d", w, i)), nil)
				if err != nil {
					t.Error(err)
					return
				}
				msgs <- marshal(t, m)
				// Reads interleave with the sends.
				if err := alice.View(ctx, gid, func(g *mls.Group) error { _ = g.Epoch(); return nil }); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	close(msgs)
	got := map[string]bool{}
	for m := range msgs {
		text := receive(t, bob, gid, m)
		if got[text] {
			t.Fatalf("%q twice", text)
		}
		got[text] = true
	}
	if len(got) != workers*each {
		t.Fatalf("%d messages, want %d", len(got), workers*each)
	}
}

// TestConcurrentGroups: different groups of one Provider in parallel, each
// with sends, receives and commits, while key packages are generated and
// counted.
func TestConcurrentGroups(t *testing.T) {
	alice := open(t, t.TempDir(), "alice")
	const groups, rounds = 4, 5
	type pair struct {
		gid []byte
		bob *provider.Provider
	}
	ps := make([]pair, groups)
	for i := range ps {
		gid, err := alice.CreateGroup(ctx, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = pair{gid, addMember(t, alice, gid, fmt.Sprint("bob", i))}
	}
	var wg sync.WaitGroup
	for i, pr := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				text := fmt.Sprintf("g%d-r%d", i, r)
				m, err := alice.Encrypt(ctx, pr.gid, []byte(text), nil)
				if err != nil {
					t.Error(err)
					return
				}
				res, err := pr.bob.Process(ctx, pr.gid, m)
				if err != nil || string(res.ApplicationData) != text {
					t.Errorf("group %d: %v", i, err)
					return
				}
				back, err := pr.bob.Encrypt(ctx, pr.gid, []byte("re-"+text), nil)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := alice.Process(ctx, pr.gid, back); err != nil {
					t.Errorf("group %d: %v", i, err)
					return
				}
				if r%2 == 1 {
					c, err := alice.CommitNow(ctx, pr.gid, mls.CommitOptions{})
					if err != nil {
						t.Error(err)
						return
					}
					if _, err := pr.bob.Process(ctx, pr.gid, c.Commit); err != nil {
						t.Errorf("group %d commit: %v", i, err)
						return
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for r := 0; r < rounds; r++ {
			if _, err := alice.GenerateKeyPackages(ctx, 2); err != nil {
				t.Error(err)
			}
			if _, err := alice.KeyPackageCount(ctx); err != nil {
				t.Error(err)
			}
			if _, err := alice.Groups(ctx); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	if c, err := alice.KeyPackageCount(ctx); err != nil || c.OneTime != 2*rounds {
		t.Fatalf("key packages %+v, %v", c, err)
	}
	for i, pr := range ps {
		if epochOf(t, alice, pr.gid) != epochOf(t, pr.bob, pr.gid) {
			t.Fatalf("group %d: epochs differ", i)
		}
	}
}
