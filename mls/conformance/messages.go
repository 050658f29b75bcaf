package conformance

import (
	"fmt"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// messagesCase is one case of messages.json: serialized messages that must
// decode and re-encode byte-identically (test-vectors.md "Messages").
type messagesCase struct {
	MLSWelcome                     hexBytes `json:"mls_welcome"`
	MLSGroupInfo                   hexBytes `json:"mls_group_info"`
	MLSKeyPackage                  hexBytes `json:"mls_key_package"`
	RatchetTree                    hexBytes `json:"ratchet_tree"`
	GroupSecrets                   hexBytes `json:"group_secrets"`
	AddProposal                    hexBytes `json:"add_proposal"`
	UpdateProposal                 hexBytes `json:"update_proposal"`
	RemoveProposal                 hexBytes `json:"remove_proposal"`
	PreSharedKeyProposal           hexBytes `json:"pre_shared_key_proposal"`
	ReInitProposal                 hexBytes `json:"re_init_proposal"`
	ExternalInitProposal           hexBytes `json:"external_init_proposal"`
	GroupContextExtensionsProposal hexBytes `json:"group_context_extensions_proposal"`
	Commit                         hexBytes `json:"commit"`
	PublicMessageApplication       hexBytes `json:"public_message_application"`
	PublicMessageProposal          hexBytes `json:"public_message_proposal"`
	PublicMessageCommit            hexBytes `json:"public_message_commit"`
	PrivateMessage                 hexBytes `json:"private_message"`
}

type codec interface {
	wire.Marshaler
	wire.Unmarshaler
}

// reencode decodes data into v strictly and checks that v encodes to data.
func reencode(what string, data []byte, v codec) error {
	if err := wire.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: decode: %w", what, err)
	}
	got, err := wire.Marshal(v)
	if err != nil {
		return fmt.Errorf("%s: encode: %w", what, err)
	}
	return mismatch(what, got, data)
}

// message decodes an MLSMessage and checks its wire format and, for public
// messages, the content type.
func message(what string, data []byte, wf mls.WireFormat, ct mls.ContentType) error {
	var m mls.Message
	if err := reencode(what, data, &m); err != nil {
		return err
	}
	if m.WireFormat != wf {
		return fmt.Errorf("%s: wire format %v, want %v", what, m.WireFormat, wf)
	}
	if ct != 0 && m.PublicMessage.Content.ContentType != ct {
		return fmt.Errorf("%s: content type %v, want %v", what, m.PublicMessage.Content.ContentType, ct)
	}
	return nil
}

func (c *messagesCase) check() error {
	checks := []error{
		message("mls_welcome", c.MLSWelcome, mls.WireFormatWelcome, 0),
		message("mls_group_info", c.MLSGroupInfo, mls.WireFormatGroupInfo, 0),
		message("mls_key_package", c.MLSKeyPackage, mls.WireFormatKeyPackage, 0),
		reencode("ratchet_tree", c.RatchetTree, new(tree.RatchetTreeNodes)),
		reencode("group_secrets", c.GroupSecrets, new(mls.GroupSecrets)),
		reencode("add_proposal", c.AddProposal, new(mls.Add)),
		reencode("update_proposal", c.UpdateProposal, new(mls.Update)),
		reencode("remove_proposal", c.RemoveProposal, new(mls.Remove)),
		reencode("pre_shared_key_proposal", c.PreSharedKeyProposal, new(mls.PreSharedKey)),
		reencode("re_init_proposal", c.ReInitProposal, new(mls.ReInit)),
		reencode("external_init_proposal", c.ExternalInitProposal, new(mls.ExternalInit)),
		reencode("group_context_extensions_proposal", c.GroupContextExtensionsProposal, new(mls.GroupContextExtensions)),
		reencode("commit", c.Commit, new(mls.Commit)),
		message("public_message_application", c.PublicMessageApplication, mls.WireFormatPublicMessage, mls.ContentTypeApplication),
		message("public_message_proposal", c.PublicMessageProposal, mls.WireFormatPublicMessage, mls.ContentTypeProposal),
		message("public_message_commit", c.PublicMessageCommit, mls.WireFormatPublicMessage, mls.ContentTypeCommit),
		message("private_message", c.PrivateMessage, mls.WireFormatPrivateMessage, 0),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}
