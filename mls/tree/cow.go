package tree

// cowVec is a chunked copy-on-write vector, the storage of a Tree's nodes
// and caches: a clone copies the chunk table (a few KB at 10,000 leaves)
// instead of every entry, and a write copies only the chunk it lands in.
//
// Each chunk records the token of the vector that owns it; a vector writes
// in place only to chunks it owns. Clone gives both the source and the copy
// fresh tokens, so after a clone neither writes to the chunks they share. A
// nil chunk reads as zero values. Entries at or past n are always zero.
type cowVec[T any] struct {
	chunks []*cowChunk[T]
	tok    *int
	n      int
}

const (
	cowBits = 7
	cowSize = 1 << cowBits
	cowMask = cowSize - 1
)

type cowChunk[T any] struct {
	owner *int
	v     [cowSize]T
}

func newCowVec[T any](n int) cowVec[T] {
	return cowVec[T]{chunks: make([]*cowChunk[T], (n+cowMask)>>cowBits), tok: new(int), n: n}
}

func (c *cowVec[T]) len() int { return c.n }

// get returns entry i (i < len).
func (c *cowVec[T]) get(i int) T {
	if ch := c.chunks[i>>cowBits]; ch != nil {
		return ch.v[i&cowMask]
	}
	var zero T
	return zero
}

// set stores v at entry i (i < len), copying the chunk first when it is
// shared.
func (c *cowVec[T]) set(i int, v T) {
	ch := c.chunks[i>>cowBits]
	if ch == nil || ch.owner != c.tok {
		nc := &cowChunk[T]{owner: c.tok}
		if ch != nil {
			nc.v = ch.v
		}
		c.chunks[i>>cowBits] = nc
		ch = nc
	}
	ch.v[i&cowMask] = v
}

// clone returns a copy sharing every chunk; both c and the copy then copy
// a chunk before writing to it.
func (c *cowVec[T]) clone() cowVec[T] {
	if c.tok == nil {
		return cowVec[T]{}
	}
	c.tok = new(int)
	d := cowVec[T]{chunks: make([]*cowChunk[T], len(c.chunks)), tok: new(int), n: c.n}
	copy(d.chunks, c.chunks)
	return d
}

// grow extends the vector to n zero entries (n >= len).
func (c *cowVec[T]) grow(n int) {
	if c.tok == nil {
		c.tok = new(int)
	}
	for len(c.chunks) < (n+cowMask)>>cowBits {
		c.chunks = append(c.chunks, nil)
	}
	c.n = n
}

// shrink truncates the vector to n entries (n <= len), zeroing the rest.
func (c *cowVec[T]) shrink(n int) {
	var zero T
	end := min(c.n, (n+cowMask)&^cowMask)
	if end > n && c.chunks[n>>cowBits] != nil {
		for i := n; i < end; i++ {
			c.set(i, zero)
		}
	}
	nc := (n + cowMask) >> cowBits
	clear(c.chunks[nc:])
	c.chunks = c.chunks[:nc]
	c.n = n
}

// reset sets every entry to zero.
func (c *cowVec[T]) reset() {
	clear(c.chunks)
}

// exportNodes returns the nodes as a ratchet_tree vector, trailing blank
// nodes removed (RFC 9420 §12.4.3.3).
func (t *Tree) exportNodes() RatchetTreeNodes {
	n := t.nodes.len()
	for n > 0 && t.nodes.get(n-1) == nil {
		n--
	}
	out := make(RatchetTreeNodes, n)
	for i := range out {
		out[i] = t.nodes.get(i)
	}
	return out
}
