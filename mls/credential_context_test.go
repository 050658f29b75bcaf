package mls

import (
	"bytes"
	"sync"
	"testing"

	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// contextRecorder is a CredentialValidator that accepts everything and
// records, per leaf use, the group context it was asked in.
type contextRecorder struct {
	mu   sync.Mutex
	seen map[LeafUse][]*GroupContext
}

func (r *contextRecorder) ValidateCredential(c *CredentialCheck) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[LeafUse][]*GroupContext{}
	}
	var gc *GroupContext
	if c.GroupContext != nil {
		cp := *c.GroupContext
		gc = &cp
	}
	r.seen[c.Use] = append(r.seen[c.Use], gc)
	return nil
}

func (r *contextRecorder) last(use LeafUse) (*GroupContext, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.seen[use]
	if len(s) == 0 {
		return nil, false
	}
	return s[len(s)-1], true
}

// TestCredentialCheckGroupContext: the validator learns which group it
// validates in — nil for a KeyPackage on its own, the group's context for
// an Add, with the extensions a commit installs, and for the tree a joiner
// validates — so that it can apply per-group rules.
func TestCredentialCheckGroupContext(t *testing.T) {
	rec := &contextRecorder{}
	gg := gtCreate(t, 1, Config{Credentials: rec, RatchetTreeInWelcome: true}, 2)
	gid := gg.ms[0].g.GroupID()

	j := gtNewMember(t, gg.s, "joiner")
	if err := ValidateKeyPackage(gg.s, j.kp, gg.ms[0].g.cfg.now(), ValidateOptions{Credentials: rec}); err != nil {
		t.Fatal(err)
	}
	if gc, ok := rec.last(LeafUseKeyPackage); !ok || gc != nil {
		t.Fatalf("a KeyPackage outside a group was validated with context %v", gc)
	}

	gg.commit(0, CommitOptions{}, j)
	gc, ok := rec.last(LeafUseKeyPackage)
	if !ok || gc == nil || !bytes.Equal(gc.GroupID, gid) || gc.Epoch != 1 {
		t.Fatalf("Add validated with context %+v", gc)
	}
	if gc, ok := rec.last(LeafUseTree); !ok || gc == nil || !bytes.Equal(gc.GroupID, gid) || gc.Epoch != 2 {
		t.Fatalf("the joiner's tree validated with context %+v", gc)
	}
	if gc, ok := rec.last(LeafUseCommit); !ok || gc == nil || !bytes.Equal(gc.GroupID, gid) {
		t.Fatalf("commit path validated with context %+v", gc)
	}

	// A commit that changes the GroupContext extensions: every leaf is
	// checked against the extensions it installs, not the old ones.
	rc, err := wire.Marshal(&tree.RequiredCapabilities{ExtensionTypes: []tree.ExtensionType{},
		ProposalTypes: []tree.ProposalType{}, CredentialTypes: []tree.CredentialType{}})
	if err != nil {
		t.Fatal(err)
	}
	gg.commit(0, CommitOptions{Extensions: tree.Extensions{{ExtensionType: tree.ExtensionTypeRequiredCapabilities, ExtensionData: rc}}})
	gc, ok = rec.last(LeafUseTree)
	if !ok || gc == nil || gc.Epoch != 2 || !gc.Extensions.Has(tree.ExtensionTypeRequiredCapabilities) {
		t.Fatalf("leaves checked for new extensions with context %+v", gc)
	}
}
