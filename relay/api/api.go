// Package api holds what the relay and its clients must agree on byte for
// byte: the content a device signs to log in, and the size limits of
// relay/API.md that both sides enforce (the relay refuses what exceeds
// them; a client sizes its read bounds from them).
package api

import (
	"strings"
	"time"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// LoginLabel is the SignWithLabel label (RFC 9420 §5.1.2) of a login
// signature.
const LoginLabel = "SpacePanda relay login"

// LoginContent is what a device signs with its MLS signature key to log in:
//
//	struct {
//	    opaque relay_url<V>;  // the relay's base URL, without a trailing "/"
//	    opaque user_id<V>;    // the user id's text (identity.UserID)
//	    opaque device_id<V>;  // the 16 bytes of the device id
//	    opaque challenge<V>;  // the relay's challenge
//	} LoginContent;
//
// Binding the relay's URL stops a relay (or anyone who relays the
// exchange) from replaying the signature to another relay; binding the
// device and the challenge makes it single use.
func LoginContent(relayURL string, userID identity.UserID, deviceID identity.DeviceID, challenge []byte) []byte {
	u := strings.TrimSuffix(relayURL, "/")
	b := wire.NewBuilder(len(u) + len(userID) + len(deviceID) + len(challenge) + 16)
	b.AddOpaque([]byte(u))
	b.AddOpaque([]byte(userID))
	b.AddOpaque(deviceID[:])
	b.AddOpaque(challenge)
	out, _ := b.Bytes() // opaque vectors of in-memory sizes cannot fail
	return out
}

// Message kinds of a group's log.
const (
	KindApplication = "application"
	KindProposal    = "proposal"
	KindCommit      = "commit"
)

// Size limits, in bytes of the binary values (before base64).
const (
	// MaxApplicationSize bounds an application message (PrivateMessage).
	MaxApplicationSize = 1 << 20
	// MaxProposalSize bounds a proposal.
	MaxProposalSize = 1 << 20
	// MaxCommitSize bounds a commit (its path grows with the group).
	MaxCommitSize = 4 << 20
	// MaxWelcomeSize bounds a Welcome.
	MaxWelcomeSize = 1 << 20
	// MaxRatchetTreeSize bounds the ratchet tree sent beside a Welcome, so
	// that a queued Welcome entry is at most MaxEntrySize.
	MaxRatchetTreeSize = 3 << 20
	// MaxGroupInfoSize bounds a GroupInfo (with its ratchet_tree extension).
	MaxGroupInfoSize = 4 << 20
	// MaxKeyPackageSize bounds one KeyPackage.
	MaxKeyPackageSize = 64 << 10
	// MaxEntrySize is the largest log or Welcome queue entry: nothing the
	// relay stores for reading is larger.
	MaxEntrySize = 4 << 20
	// MaxPageBytes is the default and maximum max_bytes of a log or
	// Welcome page: the sum of its entries' sizes, except that an entry
	// larger than the page's max_bytes comes alone, so that a reader always
	// progresses.
	MaxPageBytes = 4 << 20
	// MaxStaleEpochs is how far behind the group's epoch an application
	// message may be and still be ordered: members keep the keys of a few
	// past epochs (mls.DefaultMaxPastEpochs, 3) to open late messages, so
	// an older one would reach nobody. The relay refuses it (409
	// stale_epoch with the current epoch) and the sender encrypts it again.
	MaxStaleEpochs = 2
	// MaxRequestBody bounds a request body (a MaxCommitSize commit in
	// base64 JSON fits).
	MaxRequestBody = 8 << 20
)

// Counts.
const (
	// DefaultPageEntries and MaxPageEntries are the default and maximum
	// "limit" of a log page.
	DefaultPageEntries = 100
	MaxPageEntries     = 1000
	// MaxBatchMessages bounds the application messages of one POST
	// /v1/groups/{gid}/messages/batch.
	MaxBatchMessages = 64
	// MaxWelcomesPerPage bounds the entries of a Welcome page.
	MaxWelcomesPerPage = 100
	// MaxDevicesPerUser bounds a user's devices in the directory (revoked
	// ones do not count).
	MaxDevicesPerUser = 64
	// MaxRevocationsPerUser bounds the revocations the relay keeps and
	// lists for one user.
	MaxRevocationsPerUser = 1024
	// MaxLinkMessages bounds the messages each side of a link mailbox may
	// post (the protocol needs two from the offer, one from the join).
	MaxLinkMessages = 4
	// MaxLinkMailboxesPerUser bounds a user's open link mailboxes.
	MaxLinkMailboxesPerUser = 4
	// MaxUserIDLen bounds a user id in a group's membership or a Welcome's
	// recipients (a certified user id is identity.UserIDLen).
	MaxUserIDLen = 256
	// MaxGroupIDLen bounds a group id.
	MaxGroupIDLen = 255
	// MaxGroupMembers bounds the member users of a group at the relay.
	MaxGroupMembers = 10000
)

// LinkMailboxTTL is how long a link mailbox lives after its offering
// device opens it.
const LinkMailboxTTL = 10 * time.Minute

// MaxMessageSize is the size limit of a log entry of kind (0 for an
// unknown kind).
func MaxMessageSize(kind string) int {
	switch kind {
	case KindApplication:
		return MaxApplicationSize
	case KindProposal:
		return MaxProposalSize
	case KindCommit:
		return MaxCommitSize
	}
	return 0
}

// IsMailbox reports whether s names a link mailbox: the public part of a
// link code (identity.LinkCode.Mailbox), four characters of Crockford's
// base32 alphabet in upper case.
func IsMailbox(s string) bool {
	if len(s) != 4 {
		return false
	}
	for _, c := range []byte(s) {
		if !strings.ContainsRune("0123456789ABCDEFGHJKMNPQRSTVWXYZ", rune(c)) {
			return false
		}
	}
	return true
}
