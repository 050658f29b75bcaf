package mls

import (
	"github.com/spacepanda/spacepanda/mls/tree"
)

// leafValidator runs leaf node and key package validation (RFC 9420 §7.3,
// §10.1) in the context of this group, with the GroupContext extensions a
// commit is about to install.
type leafValidator struct {
	g          *Group
	extensions tree.Extensions
}

func (g *Group) leafValidator() *leafValidator {
	return &leafValidator{g: g, extensions: g.ctx.Extensions}
}

func (lv *leafValidator) opts(members LeafSet) ValidateOptions {
	ctx := lv.g.ctx
	ctx.Extensions = lv.extensions
	return ValidateOptions{GroupContext: &ctx, Members: members, Credentials: lv.g.cfg.Credentials,
		MaxLifetime: lv.g.cfg.MaxLeafLifetime}
}

func useFor(src tree.LeafNodeSource) LeafUse {
	switch src {
	case tree.LeafNodeSourceUpdate:
		return LeafUseUpdate
	case tree.LeafNodeSourceCommit:
		return LeafUseCommit
	}
	return LeafUseKeyPackage
}

// validate checks ln as a leaf of the given source at index, against the
// membership t.
func (lv *leafValidator) validate(ln *tree.LeafNode, src tree.LeafNodeSource, index tree.LeafIndex, t *tree.Tree) error {
	return lv.validateReplacing(ln, src, index, t, nil)
}

// validateReplacing is validate for a leaf that replaces another that is
// no longer at index: the removed leaf of an external resync, of which ln
// must be an acceptable successor (§12.2, §5.3.1).
func (lv *leafValidator) validateReplacing(ln *tree.LeafNode, src tree.LeafNodeSource, index tree.LeafIndex, t *tree.Tree, replaces *tree.LeafNode) error {
	opts := lv.opts(t)
	opts.Replaces = replaces
	return ValidateLeafNode(lv.g.suite, ln, useFor(src), index, lv.g.cfg.now(), opts)
}

// checkAllSupport checks that every member of t supports the (new)
// GroupContext extensions and required capabilities (§12.1.7). The
// members' lifetimes are not judged again: each leaf was when it arrived.
func (lv *leafValidator) checkAllSupport(t LeafSet) error {
	o := lv.opts(t)
	o.MaxLifetime = 0
	return ValidateTreeLeaves(lv.g.suite, t, o)
}

// leavesExcept is a tree with one leaf hidden: the members but one whose
// new leaf is checked on its own.
type leavesExcept struct {
	*tree.Tree
	skip tree.LeafIndex
}

// Leaf implements LeafSet: nil for the hidden leaf.
func (l leavesExcept) Leaf(i tree.LeafIndex) *tree.LeafNode {
	if i == l.skip {
		return nil
	}
	return l.Tree.Leaf(i)
}

// validateKeyPackage checks an Add's KeyPackage against the group (§12.1.1).
func (g *Group) validateKeyPackage(kp *KeyPackage, lv *leafValidator, t *tree.Tree) error {
	return ValidateKeyPackage(g.suite, kp, g.cfg.now(), lv.opts(t))
}
