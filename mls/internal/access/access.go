// Package access holds the key to the engine's internals (mls.Internals).
// Being internal to mls, it can be imported only by code under mls/: the
// vector runner (mls/conformance) and the benchmark driver (mls/bench).
// Everything else sees mls.Internals in the documentation but cannot call
// it, since it cannot name its argument.
package access

// Key is the argument of mls.Internals.
type Key struct{ _ struct{} }
