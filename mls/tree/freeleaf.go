package tree

// FreeLeaf returns the leftmost blank leaf, first extending the tree to the
// right when it has none. The leaf stays blank: an external commit's joiner
// takes it and its UpdatePath fills it (RFC 9420 §12.4.2, §12.4.3.2).
func (t *Tree) FreeLeaf() (LeafIndex, error) {
	i := t.freeHint
	for i < t.nLeaves && t.nodes.get(int(2*uint64(i))) != nil {
		i++
	}
	if i == t.nLeaves {
		if uint64(t.nLeaves)*2 > MaxLeaves {
			return 0, ErrTreeFull
		}
		t.extend()
	}
	return LeafIndex(i), nil
}
