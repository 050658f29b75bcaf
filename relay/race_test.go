//go:build race

package relay

// raceEnabled: the race detector slows byte-heavy work (MiB-sized
// messages through JSON and SQLite) twentyfold; tests that move many MiB
// scale their counts down under it.
const raceEnabled = true
