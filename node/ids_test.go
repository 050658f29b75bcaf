package node_test

import (
	"context"
	"sync"
	"testing"

	"github.com/spacepanda/spacepanda/node"
)

// The tests name their nodes ("alice", "bob"); user ids are derived from
// keys. userNames maps each user id seen to its node's name, so that a
// test can check who sent a message by name; uidOf asks a node for its
// user id.
var userNames sync.Map // user id → name

// uidOf is c's user id (from GET /v1/identity), remembered with its name.
func uidOf(t testing.TB, c *node.Client) string {
	t.Helper()
	id, err := c.Identity(context.Background())
	if err != nil {
		t.Fatalf("identity: %v", err)
	}
	userNames.Store(id.UserID, id.Name)
	return id.UserID
}

// named is the name of the node whose user id is id (id itself if unknown).
func named(id string) string {
	if n, ok := userNames.Load(id); ok {
		return n.(string)
	}
	return id
}
