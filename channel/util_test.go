package channel_test

import (
	"sync"

	"github.com/spacepanda/spacepanda/mls/wire"
	"github.com/spacepanda/spacepanda/provider"
)

func wireMarshal(v wire.Marshaler) ([]byte, error) { return wire.Marshal(v) }

// The tests name their peers ("alice", "bob"); their user ids are derived
// from keys. names maps one to the other both ways, so that a test can say
// RemoveMember(ctx, ch, uid("carol")) and check who sent a message by name.
// The tests of the package do not run in parallel; the latest peer of a
// name wins.
var names = struct {
	sync.Mutex
	byID   map[string]string
	byName map[string]string
}{byID: map[string]string{}, byName: map[string]string{}}

// register records the name of a provider's user (its display name).
func register(p *provider.Provider) { registerAs(p.DisplayName(), string(p.UserID())) }

func registerAs(name, id string) {
	names.Lock()
	defer names.Unlock()
	names.byID[id], names.byName[name] = name, id
}

// uid is the user id of the peer called name (name itself if none is).
func uid(name string) string {
	names.Lock()
	defer names.Unlock()
	if id, ok := names.byName[name]; ok {
		return id
	}
	return name
}

// named is the name of the peer whose user id is id (id itself if none).
func named(id string) string {
	names.Lock()
	defer names.Unlock()
	if n, ok := names.byID[id]; ok {
		return n
	}
	return id
}
