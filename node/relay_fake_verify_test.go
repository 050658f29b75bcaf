package node_test

import (
	"encoding/base64"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// What the fake relay reads of handshakes now that the real one verifies
// them and derives membership itself: the framing of a message, and the
// group id and member users of a GroupInfo's ratchet tree. The fake still
// verifies nothing.

// fakeFraming returns the kind and epoch of a message (b64).
func fakeFraming(msg string) (kind string, epoch uint64) {
	b, _ := base64.StdEncoding.DecodeString(msg)
	m, err := mls.UnmarshalMessage(b)
	if err != nil {
		return "", 0
	}
	var ct mls.ContentType
	switch m.WireFormat {
	case mls.WireFormatPublicMessage:
		ct, epoch = m.PublicMessage.Content.ContentType, m.PublicMessage.Content.Epoch
	case mls.WireFormatPrivateMessage:
		ct, epoch = m.PrivateMessage.ContentType, m.PrivateMessage.Epoch
	}
	switch ct {
	case mls.ContentTypeCommit:
		return "commit", epoch
	case mls.ContentTypeProposal:
		return "proposal", epoch
	}
	return "application", epoch
}

// fakeGroupInfo returns the group id and the users with a leaf in the
// ratchet tree of a GroupInfo (b64).
func fakeGroupInfo(gi string) (gid []byte, users map[string]bool) {
	b, _ := base64.StdEncoding.DecodeString(gi)
	m, err := mls.UnmarshalMessage(b)
	if err != nil || m.WireFormat != mls.WireFormatGroupInfo {
		return nil, nil
	}
	users = map[string]bool{}
	if ext := m.GroupInfo.Extensions.Find(tree.ExtensionTypeRatchetTree); ext != nil {
		var nodes tree.RatchetTreeNodes
		if wire.Unmarshal(ext.ExtensionData, &nodes) == nil {
			for _, n := range nodes {
				if n != nil && n.Leaf != nil {
					users[string(n.Leaf.Credential.Identity)] = true
				}
			}
		}
	}
	return m.GroupInfo.GroupContext.GroupID, users
}
