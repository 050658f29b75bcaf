// Package client is the sync engine a Go application embeds to take part
// in SpacePanda channels: it opens one identity (its data directory),
// optionally connects to a relay, and owns everything that keeps the
// identity's channels in step — the channel manager, the relay adapter,
// the key package pool, one log follower per channel, a durable outbox and
// an event stream.
//
// Every state change (invite, remove, role, self-update, leave) takes one
// path: the commit is staged, posted to the relay, and merged only when the
// relay accepts it; on a conflict the winning commit is processed from the
// log and the change is retried in the new epoch. Without a relay the same
// path merges at once and hands commits and Welcomes to the caller, who
// carries them (the node's "no relay" mode).
//
// Messages, Welcomes and channel registrations wait in a durable outbox
// (store.Records) until the relay accepts them: a send while the relay is
// unreachable is queued, and delivered when it returns.
package client
