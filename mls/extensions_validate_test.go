package mls

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// vtExtSenders is an external_senders extension holding senders.
func vtExtSenders(t testing.TB, senders ...tree.ExternalSender) tree.Extension {
	t.Helper()
	return tree.Extension{ExtensionType: tree.ExtensionTypeExternalSenders, ExtensionData: gtWireOf(t, tree.ExternalSenders(senders))}
}

func vtReqCaps(t testing.TB, rc tree.RequiredCapabilities) tree.Extension {
	t.Helper()
	return tree.Extension{ExtensionType: tree.ExtensionTypeRequiredCapabilities, ExtensionData: gtWireOf(t, &rc)}
}

func vtGCE(es tree.Extensions) *Proposal {
	return &Proposal{ProposalType: tree.ProposalTypeGroupContextExtensions, GroupContextExtensions: &GroupContextExtensions{Extensions: es}}
}

// vtBadSignatureKey is a byte string of the suite's signature key length
// that is not a key of it: the identity point for EdDSA (of order 1: any
// signature with R = [S]B verifies under it), off the curve for ECDSA.
func vtBadSignatureKey(t testing.TB, s *suite.Suite) []byte {
	t.Helper()
	_, pub, err := s.GenerateSignatureKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	switch len(pub) {
	case 32, 57:
		k := make([]byte, len(pub))
		k[0] = 1
		return k
	}
	k := bytes.Clone(pub)
	k[len(k)-1] ^= 1
	return k
}

// TestRefuseInvalidExternalSenders (RFC 9420 §5.3.1, §12.1.7, §12.1.8.1):
// an external_senders extension whose sender has a credential the
// Authentication Service refuses, a signature key that is not a key of the
// suite, or a body that does not decode, is refused when a
// GroupContextExtensions proposal installs it (proposed, committed by
// value; by every member, state unchanged; and by the sender), at group
// creation and on joining by Welcome or external commit. Every suite.
func TestRefuseInvalidExternalSenders(t *testing.T) {
	for _, id := range suite.All() {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 3)
			s := gg.s
			ds := gtSigner(t, s)
			good := tree.ExternalSender{SignatureKey: ds.PublicKey(), Credential: tree.NewBasicCredential([]byte("delivery service"))}
			cases := []struct {
				name string
				ext  tree.Extension
				want error
			}{
				{"not a key of the suite", vtExtSenders(t, tree.ExternalSender{SignatureKey: vtBadSignatureKey(t, s), Credential: good.Credential}), suite.ErrInvalidKey},
				{"empty identity", vtExtSenders(t, good, tree.ExternalSender{SignatureKey: ds.PublicKey(), Credential: tree.NewBasicCredential(nil)}), ErrInvalidCredential},
				{"x509 without a validator for it", vtExtSenders(t, tree.ExternalSender{SignatureKey: ds.PublicKey(),
					Credential: tree.Credential{CredentialType: tree.CredentialTypeX509, Certificates: [][]byte{{1}}}}), ErrInvalidCredential},
				{"3-byte signature key", vtExtSenders(t, tree.ExternalSender{SignatureKey: []byte{1, 2, 3}, Credential: good.Credential}), suite.ErrInvalidKey},
				{"undecodable body", tree.Extension{ExtensionType: tree.ExtensionTypeExternalSenders, ExtensionData: []byte{0x05, 1, 2}}, wire.ErrTruncated},
				{"trailing bytes", tree.Extension{ExtensionType: tree.ExtensionTypeExternalSenders, ExtensionData: append(vtExtSenders(t, good).ExtensionData, 0)}, wire.ErrTrailingData},
			}
			// Controls: the good sender passes everywhere.
			g1 := gg.ms[1].g
			okExt := tree.Extensions{vtExtSenders(t, good)}
			vtAcceptAll(t, gg, 1, vtProposal(t, g1, vtGCE(okExt)))
			vtAcceptAll(t, gg, 1, vtForgeCommit(t, g1, vtCommit{props: []*Proposal{vtGCE(okExt)}, path: true}))
			if vtSlowSuite(id) {
				cases = cases[:1] // the others do not depend on the suite
			} else {
				w := vtWelcomeOf(gg)
				w.ctx.Extensions = okExt
				vtJoinBoth(t, w, gtNewMember(t, s, "j"), gg.cfg)
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					es := tree.Extensions{tc.ext}
					want := []error{ErrInvalidExtension, tc.want}
					vtRejectAll(t, gg, 1, vtProposal(t, g1, vtGCE(es)), append(want, ErrInvalidProposal)...)
					vtRejectAll(t, gg, 1, vtForgeCommit(t, g1, vtCommit{props: []*Proposal{vtGCE(es)}, path: true}), append(want, ErrInvalidProposal)...)
					_, _, err := g1.Propose(vtGCE(es))
					vtExpect(t, err, want...)
					snap := gtSnapshot(g1)
					_, err = g1.Commit(CommitOptions{Extensions: es})
					vtExpect(t, err, want...)
					if !snap.equal(gtSnapshot(g1)) {
						t.Fatal("refused Commit changed the state")
					}
					_, err = CreateGroup(s, ds, nil, LeafOptions{Credential: tree.NewBasicCredential([]byte("c"))}, es, Config{})
					vtExpect(t, err, want...)
					w := vtWelcomeOf(gg)
					w.ctx.Extensions = es
					vtJoinBoth(t, w, gtNewMember(t, s, "j"), gg.cfg, want...)
				})
			}
			vtStillWorks(t, gg)
		})
	}
}

// TestExternalSendersMeetTheValidator: the group's CredentialValidator is
// asked about every external sender a GroupContextExtensions proposal
// installs, with Leaf nil and Use 0 (§5.3.1), and its refusal is final.
func TestExternalSendersMeetTheValidator(t *testing.T) {
	var seen []CredentialCheck
	cfg := Config{RatchetTreeInWelcome: true, Credentials: CredentialValidatorFunc(func(c *CredentialCheck) error {
		if c.Leaf == nil {
			seen = append(seen, *c)
			if string(c.Credential.Identity) == "mallory" {
				return fmt.Errorf("%w: not our delivery service", ErrInvalidCredential)
			}
		}
		return BasicCredentialValidator{}.ValidateCredential(c)
	})}
	gg := gtCreate(t, 1, cfg, 3)
	ds := gtSigner(t, gg.s)
	ok := tree.ExternalSender{SignatureKey: ds.PublicKey(), Credential: tree.NewBasicCredential([]byte("ds"))}
	msg, next, err := gg.ms[1].g.Propose(vtGCE(tree.Extensions{vtExtSenders(t, ok)}))
	if err != nil {
		t.Fatal(err)
	}
	gg.ms[1].g = next
	gg.deliver(1, msg)
	if len(seen) != 3 {
		t.Fatalf("validator asked %d times for the sender and 2 receivers", len(seen))
	}
	for _, c := range seen {
		if c.Use != 0 || !bytes.Equal(c.SignatureKey, ds.PublicKey()) || string(c.Credential.Identity) != "ds" || c.Previous != nil {
			t.Fatalf("validator asked %+v", c)
		}
	}
	gg.commit(0, CommitOptions{})
	mallory := tree.ExternalSender{SignatureKey: ds.PublicKey(), Credential: tree.NewBasicCredential([]byte("mallory"))}
	vtRejectAll(t, gg, 1, vtProposal(t, gg.ms[1].g, vtGCE(tree.Extensions{vtExtSenders(t, ok, mallory)})), ErrInvalidProposal, ErrInvalidExtension, ErrInvalidCredential)
	vtStillWorks(t, gg)
}

// TestRefuseUndecodableKnownExtensions (§12.1.7, §12.4.3, §13.4): an
// extension of a type the engine understands must decode as that type,
// wherever it appears; an unknown type's body is not looked at.
func TestRefuseUndecodableKnownExtensions(t *testing.T) {
	for _, id := range gtSuites {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 3)
			s, g1 := gg.s, gg.ms[1].g
			garbage := []byte{0x40}
			ext := func(typ tree.ExtensionType, data []byte) tree.Extensions {
				return tree.Extensions{{ExtensionType: typ, ExtensionData: data}}
			}
			// GroupContext: required_capabilities and external_senders.
			for _, typ := range []tree.ExtensionType{tree.ExtensionTypeRequiredCapabilities, tree.ExtensionTypeExternalSenders} {
				vtRejectAll(t, gg, 1, vtProposal(t, g1, vtGCE(ext(typ, garbage))), ErrInvalidProposal, ErrInvalidExtension)
				_, err := g1.Commit(CommitOptions{Extensions: ext(typ, garbage)})
				vtExpect(t, err, ErrInvalidExtension)
			}
			// KeyPackage: last_resort carries no data; a leaf's
			// application_id is an opaque<V>.
			outsider := gtNewMember(t, s, "outsider")
			for name, kp := range map[string]*KeyPackage{
				"last_resort with data": vtKeyPackage(t, outsider, func(kp *KeyPackage) {
					kp.Extensions = ext(tree.ExtensionTypeLastResort, []byte{1})
					kp.LeafNode.Capabilities.Extensions = []tree.ExtensionType{tree.ExtensionTypeLastResort}
				}),
				"application_id": vtKeyPackage(t, outsider, func(kp *KeyPackage) {
					kp.LeafNode.Extensions = ext(tree.ExtensionTypeApplicationID, garbage)
				}),
			} {
				if err := ValidateKeyPackage(s, kp, time.Now(), ValidateOptions{}); !errors.Is(err, ErrInvalidExtension) {
					t.Fatalf("%s: %v", name, err)
				}
				vtRejectAll(t, gg, -1, vtNewMemberProposal(t, gg.ms[0].g, outsider.signer, kp), ErrInvalidProposal, ErrInvalidExtension)
			}
			// An Update leaf's application_id.
			upd := vtUpdateLeaf(t, g1, func(ln *tree.LeafNode) { ln.Extensions = ext(tree.ExtensionTypeApplicationID, garbage) })
			vtRejectAll(t, gg, 1, vtProposal(t, g1, &Proposal{ProposalType: tree.ProposalTypeUpdate, Update: &Update{LeafNode: *upd}}),
				ErrInvalidProposal, ErrInvalidLeafNode, ErrInvalidExtension)
			// GroupInfo: external_pub; ratchet_tree when the tree travels out
			// of band (else the join fails decoding the tree it needs).
			w := vtWelcomeOf(gg)
			w.giExts = ext(tree.ExtensionTypeExternalPub, garbage)
			vtJoinBoth(t, w, gtNewMember(t, s, "j"), gg.cfg, ErrInvalidExtension)
			w.giExts = ext(tree.ExtensionTypeRatchetTree, garbage)
			w.oobTree = true
			j := gtNewMember(t, s, "j")
			wel, rt, _ := vtForgeWelcome(t, w, j)
			_, err := vtJoin(t, j, wel, rt, gg.cfg)
			vtExpect(t, err, ErrInvalidWelcome, ErrInvalidExtension)
			// Controls: a well-formed application_id and an unknown type with
			// any body are accepted.
			okKP := vtKeyPackage(t, outsider, func(kp *KeyPackage) {
				kp.LeafNode.Extensions = ext(tree.ExtensionTypeApplicationID, gtWireOf(t, tree.ApplicationID("device-7")))
				kp.Extensions = ext(0xff00, garbage)
			})
			if err := ValidateKeyPackage(s, okKP, time.Now(), ValidateOptions{}); err != nil {
				t.Fatalf("well-formed key package: %v", err)
			}
			vtStillWorks(t, gg)
		})
	}
}

// TestRefuseDuplicateExtensions (§13.4: "Any field containing a list of
// extensions MUST NOT have more than one extension of any given type").
// The sending side refuses every entry point that takes extensions (a
// commit that installs two required_capabilities would fork its committer
// from the group, whose decoders refuse it); the receiving side refuses
// duplicates in GroupContext, GroupInfo, KeyPackage and LeafNode lists.
func TestRefuseDuplicateExtensions(t *testing.T) {
	for _, id := range gtSuites {
		t.Run(fmt.Sprintf("suite=%d", id), func(t *testing.T) {
			gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 3)
			s, g1 := gg.s, gg.ms[1].g
			rc := vtReqCaps(t, tree.RequiredCapabilities{})
			dup := tree.Extensions{rc, rc}
			want := []error{ErrInvalidExtension, tree.ErrDuplicateExtension}
			onDecode := []error{tree.ErrDuplicateExtension, wire.ErrInvalidValue}

			// Sending side.
			snap := gtSnapshot(g1)
			_, err := g1.Commit(CommitOptions{Extensions: dup})
			vtExpect(t, err, want...)
			_, _, err = g1.Propose(vtGCE(dup))
			vtExpect(t, err, want...)
			ri := &ReInit{GroupID: []byte("new"), Version: tree.ProtocolVersionMLS10, CipherSuite: s.ID(), Extensions: dup}
			_, err = g1.Commit(CommitOptions{ReInit: ri})
			vtExpect(t, err, want...)
			_, _, err = g1.Propose(&Proposal{ProposalType: tree.ProposalTypeReInit, ReInit: ri})
			vtExpect(t, err, want...)
			if !snap.equal(gtSnapshot(g1)) {
				t.Fatal("refused sends changed the state")
			}
			_, err = g1.Commit(CommitOptions{GroupInfoExtensions: tree.Extensions{{ExtensionType: 0xf000}, {ExtensionType: 0xf000}}, Add: []*KeyPackage{gtNewMember(t, s, "x").kp}})
			vtExpect(t, err, ErrInvalidGroupInfo)
			cred := tree.NewBasicCredential([]byte("c"))
			_, err = CreateGroup(s, gtSigner(t, s), nil, LeafOptions{Credential: cred}, dup, Config{})
			vtExpect(t, err, want...)
			leafDup := tree.Extensions{{ExtensionType: 0xf000}, {ExtensionType: 0xf000}}
			caps := DefaultCapabilities()
			caps.Extensions = append(caps.Extensions, 0xf000)
			_, err = CreateGroup(s, gtSigner(t, s), nil, LeafOptions{Credential: cred, Capabilities: &caps, Extensions: leafDup}, nil, Config{})
			vtExpect(t, err, want...)
			for _, o := range []KeyPackageOptions{{LeafExtensions: leafDup}, {Extensions: leafDup}, {Extensions: tree.Extensions{{ExtensionType: tree.ExtensionTypeLastResort, ExtensionData: []byte{}}}, LastResort: true}} {
				kp, _, err := NewKeyPackage(s, nil, gtSigner(t, s), cred, o)
				if o.LastResort {
					// LastResort adds the extension only when absent.
					if err != nil || len(kp.Extensions) != 1 {
						t.Fatalf("last resort: %v %v", kp, err)
					}
					continue
				}
				vtExpect(t, err, want...)
			}
			gi, err := gg.ms[0].g.GroupInfo(true)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = JoinByExternalCommit(s, gtSigner(t, s), gi, nil, LeafOptions{Credential: cred, Capabilities: &caps, Extensions: leafDup}, Config{})
			vtExpect(t, err, want...)

			// Receiving side: every extension list decodes with one of each type.
			vtRejectAll(t, gg, 1, vtProposal(t, g1, vtGCE(dup)), onDecode...)
			vtRejectAll(t, gg, 1, vtForgeCommit(t, g1, vtCommit{props: []*Proposal{vtGCE(dup)}, path: true}), onDecode...)
			outsider := gtNewMember(t, s, "outsider")
			for _, kp := range []*KeyPackage{
				vtKeyPackage(t, outsider, func(kp *KeyPackage) { kp.Extensions = leafDup }),
				vtKeyPackage(t, outsider, func(kp *KeyPackage) {
					kp.LeafNode.Extensions = leafDup
					kp.LeafNode.Capabilities.Extensions = append(kp.LeafNode.Capabilities.Extensions, 0xf000)
				}),
			} {
				vtRejectAll(t, gg, -1, vtNewMemberProposal(t, gg.ms[0].g, outsider.signer, kp), onDecode...)
				var out KeyPackage
				vtExpect(t, wire.Unmarshal(gtWireOf(t, kp), &out), onDecode...)
				// Built in memory rather than decoded: validation refuses it.
				vtExpect(t, ValidateKeyPackage(s, kp, time.Now(), ValidateOptions{}), append(want, ErrInvalidKeyPackage)...)
			}
			w := vtWelcomeOf(gg)
			w.giExts = leafDup
			j := gtNewMember(t, s, "j")
			wel, _, gi2 := vtForgeWelcome(t, w, j)
			_, err = vtJoin(t, j, wel, nil, gg.cfg)
			vtExpect(t, err, onDecode...)
			_, _, err = JoinByExternalCommit(s, j.signer, gi2, nil, LeafOptions{Credential: j.cred}, gg.cfg)
			vtExpect(t, err, append(want, ErrInvalidGroupInfo)...)
			w = vtWelcomeOf(gg)
			w.ctx.Extensions = dup
			wel, _, gi2 = vtForgeWelcome(t, w, j)
			_, err = vtJoin(t, j, wel, nil, gg.cfg)
			vtExpect(t, err, onDecode...)
			_, _, err = JoinByExternalCommit(s, j.signer, gi2, nil, LeafOptions{Credential: j.cred}, gg.cfg)
			vtExpect(t, err, append(want, ErrInvalidGroupInfo)...)
			vtStillWorks(t, gg)
		})
	}
}

// TestCapabilitiesDefaultTypes (§7.2): default extension and proposal
// types "MUST NOT be listed". Our own capabilities never list them
// (DefaultCapabilities), and capabilities given to NewKeyPackage,
// CreateGroup or JoinByExternalCommit that list one are refused. Received
// capabilities that list them are accepted: the rule binds their creator,
// defaults count as supported whether listed or not, and the official
// vectors (messages.json) hold KeyPackages that list them.
func TestCapabilitiesDefaultTypes(t *testing.T) {
	def := DefaultCapabilities()
	if slices.ContainsFunc(def.Extensions, tree.ExtensionType.IsDefault) || slices.ContainsFunc(def.Proposals, tree.ProposalType.IsDefault) {
		t.Fatalf("DefaultCapabilities lists default types: %+v", def)
	}
	for _, id := range gtSuites {
		s := gtSuite(t, id)
		cred := tree.NewBasicCredential([]byte("c"))
		withExt := DefaultCapabilities()
		withExt.Extensions = append(withExt.Extensions, tree.ExtensionTypeRatchetTree)
		withProp := DefaultCapabilities()
		withProp.Proposals = append(withProp.Proposals, tree.ProposalTypeAdd)
		gg := gtCreate(t, id, Config{RatchetTreeInWelcome: true}, 2)
		gi, err := gg.ms[0].g.GroupInfo(true)
		if err != nil {
			t.Fatal(err)
		}
		for _, caps := range []*tree.Capabilities{&withExt, &withProp} {
			_, _, err := NewKeyPackage(s, nil, gtSigner(t, s), cred, KeyPackageOptions{Capabilities: caps})
			vtExpect(t, err, ErrInvalidCapabilities)
			_, err = CreateGroup(s, gtSigner(t, s), nil, LeafOptions{Credential: cred, Capabilities: caps}, nil, Config{})
			vtExpect(t, err, ErrInvalidCapabilities)
			_, _, err = JoinByExternalCommit(s, gtSigner(t, s), gi, nil, LeafOptions{Credential: cred, Capabilities: caps}, Config{})
			vtExpect(t, err, ErrInvalidCapabilities)
			// Received: lenient.
			m := gtNewMember(t, s, "lists defaults")
			kp := vtKeyPackage(t, m, func(kp *KeyPackage) { kp.LeafNode.Capabilities = *caps })
			if err := ValidateKeyPackage(s, kp, time.Now(), ValidateOptions{}); err != nil {
				t.Fatalf("received key package listing defaults: %v", err)
			}
			m.kp = kp // same keys, capabilities listing defaults
			gg.add(0, m)
		}
	}
}

// FuzzValidateGroupContextExtensions: any decoded extension list is
// validated without panicking; a refusal wraps ErrInvalidExtension; an
// accepted list has one extension per type and every known body decodes
// (required_capabilities and external_senders as the engine reads them).
func FuzzValidateGroupContextExtensions(f *testing.F) {
	s := gtSuite(f, 1)
	ds := gtSigner(f, s)
	for _, es := range []tree.Extensions{
		{},
		{vtExtSenders(f, tree.ExternalSender{SignatureKey: ds.PublicKey(), Credential: tree.NewBasicCredential([]byte("ds"))})},
		{vtReqCaps(f, tree.RequiredCapabilities{ExtensionTypes: []tree.ExtensionType{0xf000}, CredentialTypes: []tree.CredentialType{1}})},
		{{ExtensionType: tree.ExtensionTypeExternalPub, ExtensionData: gtWireOf(f, &tree.ExternalPub{ExternalPub: make([]byte, 32)})}},
		{{ExtensionType: tree.ExtensionTypeLastResort, ExtensionData: []byte{}}, {ExtensionType: 0xff00, ExtensionData: []byte{1, 2}}},
		{{ExtensionType: tree.ExtensionTypeApplicationID, ExtensionData: []byte{2, 'h', 'i'}}},
	} {
		f.Add(gtWireOf(f, es))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var es tree.Extensions
		if wire.Unmarshal(data, &es) != nil {
			// Lists built in memory may hold duplicates the decoder refuses.
			es = tree.Extensions{{ExtensionType: tree.ExtensionTypeRequiredCapabilities, ExtensionData: data}, {ExtensionType: tree.ExtensionType(len(data) % 8), ExtensionData: data}}
		}
		err := ValidateGroupContextExtensions(s, es, nil)
		if err != nil {
			if !errors.Is(err, ErrInvalidExtension) {
				t.Fatalf("error %v does not wrap ErrInvalidExtension", err)
			}
			return
		}
		for i := range es {
			if es.Find(es[i].ExtensionType) != &es[i] {
				t.Fatalf("accepted a duplicate of type 0x%04x", uint16(es[i].ExtensionType))
			}
		}
		if _, err := requiredCapabilities(es); err != nil {
			t.Fatalf("accepted, but required_capabilities does not decode: %v", err)
		}
		if _, err := externalSenders(es); err != nil {
			t.Fatalf("accepted, but external_senders does not decode: %v", err)
		}
	})
}
