package mls

import (
	"bytes"
	"errors"
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

// TestCommitLeafExtensions: a commit can renew the committer's leaf
// extensions (a renewed certificate); every member sees the new ones, and
// a type the leaf's capabilities do not list is refused before anything
// leaves.
func TestCommitLeafExtensions(t *testing.T) {
	gg := gtCreate(t, 1, Config{RatchetTreeInWelcome: true}, 3)
	// m0's leaf lists 0xF0F0 only if its capabilities do: they are the
	// defaults here, which do not.
	bad := tree.Extensions{{ExtensionType: 0xF0F0, ExtensionData: []byte("x")}}
	before := gg.ms[1].g.Epoch()
	if _, err := gg.ms[1].g.Commit(CommitOptions{LeafExtensions: bad}); !errors.Is(err, ErrInvalidLeafNode) {
		t.Fatalf("leaf extension outside the capabilities: %v", err)
	}
	if gg.ms[1].g.Epoch() != before {
		t.Fatal("a refused commit changed the group")
	}

	// Renewing with an empty but non-nil list (drops the extensions) and
	// with the last_resort-free default type set works and is seen by all.
	// application_id is opaque<V>: one length byte, then the id.
	ext := tree.Extension{ExtensionType: tree.ExtensionTypeApplicationID, ExtensionData: []byte("\x07renewed")}
	gg.commit(1, CommitOptions{LeafExtensions: tree.Extensions{ext}, NoPath: true})
	for _, m := range gg.ms {
		ln := m.g.RatchetTree()[2*int(gg.ms[1].g.OwnLeafIndex())].Leaf
		if e := ln.Extensions.Find(tree.ExtensionTypeApplicationID); e == nil || string(e.ExtensionData) != "\x07renewed" {
			t.Fatalf("%s sees the committer's leaf extensions %v", m.name, ln.Extensions)
		}
	}
}
