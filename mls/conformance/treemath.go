package conformance

import (
	"fmt"

	"github.com/spacepanda/spacepanda/mls/tree"
)

// treeMathCase is one tree-math.json case (test-vectors.md "Tree Math").
// A null entry means the node has no such relative.
type treeMathCase struct {
	NLeaves uint32    `json:"n_leaves"`
	NNodes  uint32    `json:"n_nodes"`
	Root    uint32    `json:"root"`
	Left    []*uint32 `json:"left"`
	Right   []*uint32 `json:"right"`
	Parent  []*uint32 `json:"parent"`
	Sibling []*uint32 `json:"sibling"`
}

func runTreeMath(data []byte) ([]caseResult, error) {
	cases, err := decodeCases[treeMathCase](data)
	if err != nil {
		return nil, err
	}
	out := make([]caseResult, 0, len(cases))
	for i, c := range cases {
		out = append(out, caseResult{Name: fmt.Sprintf("n_leaves %d #%d", c.NLeaves, i), Err: c.check()})
	}
	return out, nil
}

func (c *treeMathCase) check() error {
	n := c.NLeaves
	if got := tree.NodeWidth(n); got != c.NNodes {
		return fmt.Errorf("n_nodes: got %d, want %d", got, c.NNodes)
	}
	if got := tree.Root(n); uint32(got) != c.Root {
		return fmt.Errorf("root: got %d, want %d", got, c.Root)
	}
	rels := []struct {
		name string
		want []*uint32
		f    func(tree.NodeIndex, uint32) (tree.NodeIndex, bool)
	}{
		{"left", c.Left, tree.Left},
		{"right", c.Right, tree.Right},
		{"parent", c.Parent, tree.Parent},
		{"sibling", c.Sibling, tree.Sibling},
	}
	for _, rel := range rels {
		if uint64(len(rel.want)) != uint64(c.NNodes) {
			return fmt.Errorf("%s: vector has %d entries for %d nodes", rel.name, len(rel.want), c.NNodes)
		}
		for i, want := range rel.want {
			got, ok := rel.f(tree.NodeIndex(i), n)
			switch {
			case want == nil && ok:
				return fmt.Errorf("%s[%d]: got %d, want null", rel.name, i, got)
			case want != nil && !ok:
				return fmt.Errorf("%s[%d]: got null, want %d", rel.name, i, *want)
			case want != nil && uint32(got) != *want:
				return fmt.Errorf("%s[%d]: got %d, want %d", rel.name, i, got, *want)
			}
		}
	}
	return nil
}
