package tree

import "maps"

// credCounts summarises the credential types of the non-blank leaves, for
// the member compatibility checks of RFC 9420 §7.3 without a scan of every
// leaf per commit. It is computed on first use and then kept up to date by
// setNode.
type credCounts struct {
	members   int
	inUse     map[CredentialType]int // leaves whose credential has the type
	supported map[CredentialType]int // leaves listing the type in capabilities (once per leaf)
}

// credCountsMinLeaves: from this many leaf slots Clone computes the counts
// of a tree that has none, for its clones to inherit.
const credCountsMinLeaves = 64

func (c *credCounts) add(l *LeafNode, d int) {
	c.members += d
	c.inUse[l.Credential.CredentialType] += d
	if c.inUse[l.Credential.CredentialType] == 0 {
		delete(c.inUse, l.Credential.CredentialType)
	}
	for i, t := range l.Capabilities.Credentials {
		if listedBefore(l.Capabilities.Credentials, i) {
			continue
		}
		c.supported[t] += d
		if c.supported[t] == 0 {
			delete(c.supported, t)
		}
	}
}

// listedBefore reports whether cts[i] appears in cts[:i].
func listedBefore(cts []CredentialType, i int) bool {
	for _, t := range cts[:i] {
		if t == cts[i] {
			return true
		}
	}
	return false
}

func (c *credCounts) clone() *credCounts {
	if c == nil {
		return nil
	}
	return &credCounts{members: c.members, inUse: maps.Clone(c.inUse), supported: maps.Clone(c.supported)}
}

// CredentialCounts returns the number of non-blank leaves and, per
// credential type, how many leaves use it and how many list it in their
// capabilities (each leaf counted once per type). The first call is O(N);
// the tree then keeps the counts as it changes. The maps are the tree's:
// do not modify them, and do not keep them past the next change.
func (t *Tree) CredentialCounts() (members int, inUse, supported map[CredentialType]int) {
	if t.creds == nil {
		c := &credCounts{inUse: map[CredentialType]int{}, supported: map[CredentialType]int{}}
		for i := 0; i < t.nodes.len(); i += 2 {
			if n := t.nodes.get(i); n != nil {
				c.add(n.Leaf, 1)
			}
		}
		t.creds = c
	}
	return t.creds.members, t.creds.inUse, t.creds.supported
}
