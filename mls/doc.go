// Package mls is a pure-Go implementation of the Messaging Layer Security
// protocol, RFC 9420: a group of members agrees on a secret per epoch, and
// each member can encrypt messages that only the current members can read.
// The engine does no I/O; the caller moves bytes between members through a
// Delivery Service, and persists what it must keep.
//
// # Vocabulary
//
// The protocol's shared vocabulary (Credential, LeafNode, Capabilities,
// Extension and Extensions, ExtensionType, ProposalType, ProtocolVersion)
// lives in package mls/tree, the lowest package that needs it (a leaf of
// the ratchet tree carries credential, capabilities and extensions); this
// package uses it from there and does not re-export it. Cipher suites and
// signers are in mls/suite, the TLS presentation language in mls/wire, the
// key schedule's PreSharedKeyID in mls/schedule.
//
// # A group's life
//
// Each client makes a signing key and a KeyPackage, the signed joining
// information it publishes (RFC 9420 §10):
//
//	s := suite.MustNew(suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
//	priv, _, err := s.GenerateSignatureKeyPair(nil)
//	signer, err := s.NewSigner(priv)
//	cred := tree.NewBasicCredential([]byte("bob"))
//	kp, kpPriv, err := mls.NewKeyPackage(s, nil, signer, cred, mls.KeyPackageOptions{})
//
// The creator makes the group (epoch 0, one member) with CreateGroup, and
// adds members with a commit:
//
//	g, err := mls.CreateGroup(s, aliceSigner, groupID, mls.LeafOptions{Credential: aliceCred}, nil, mls.Config{})
//	res, err := g.Commit(mls.CommitOptions{Add: []*mls.KeyPackage{kp}})
//
// Commit leaves g as it is: it returns the next epoch in res.State,
// together with the Commit (a Message for the existing members), the
// Welcome for the added ones and the new ratchet tree. Adopt res.State once
// the Delivery Service has accepted the Commit. The added member joins with
// JoinFromWelcome, given a KeyPackageFinder that returns the private half
// of its KeyPackage (and the ratchet tree, unless Config.RatchetTreeInWelcome
// sent it along).
//
// Sending is Encrypt, which returns a Message protected with the epoch's
// keys (RFC 9420 §6.3); wire.Marshal gives its bytes. Receiving is
// ProcessBytes (or UnmarshalMessage and Process): a Processed carries
// ApplicationData for an application message, and Processed.State is the
// group after the message (for a commit or proposal a new value, the
// receiver unchanged; for an application message the receiver itself, its
// ratchet advanced). Every input is validated as RFC 9420 requires; an
// invalid one returns an error wrapping one of the Err* sentinels and
// leaves the Group as it was.
//
// To keep a group across restarts, store two blobs: MarshalRatchetState
// after each Encrypt before its message leaves (with Config.SendReservation
// only when SendNeedsSave says so), and MarshalEpochState with it in one
// transaction after a commit; LoadGroup reads them back. Example runs the
// whole path.
//
// Other joins are JoinByExternalCommit (from a GroupInfo, RFC 9420 §12.4.3.2)
// and JoinReInitWelcome / JoinBranchWelcome (a successor group, §11.2,
// §11.3). Package provider and package channel build the application's
// groups on top of this package.
package mls
