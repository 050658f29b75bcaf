package mls

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/spacepanda/spacepanda/internal/testvec"
	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// messageVectors loads messages.json, or returns nil when it is absent.
func messageVectors(tb testing.TB) []map[string]testvec.Hex {
	tb.Helper()
	dir, ok := testvec.Dir()
	if !ok {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, "messages.json"))
	if err != nil {
		return nil
	}
	var cases []map[string]testvec.Hex
	if err := json.Unmarshal(data, &cases); err != nil {
		tb.Fatal(err)
	}
	return cases
}

type codec interface {
	wire.Marshaler
	wire.Unmarshaler
}

// roundTrip decodes data into v and checks that re-encoding gives data back.
func roundTrip(t testing.TB, data []byte, v codec) error {
	t.Helper()
	if err := wire.Unmarshal(data, v); err != nil {
		return err
	}
	out, err := wire.Marshal(v)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	if !bytes.Equal(out, data) {
		t.Fatalf("re-encoding differs:\n got %x\nwant %x", out, data)
	}
	return nil
}

func fuzzSeeds(f *testing.F, fields ...string) {
	for _, c := range messageVectors(f) {
		for _, field := range fields {
			f.Add([]byte(c[field]))
		}
	}
}

// fuzzRoundTrip checks decode→encode→decode: an accepted input must
// re-encode to itself (decoding is strict, so encodings are canonical) and
// decode again.
func fuzzRoundTrip[T any, P interface {
	*T
	codec
}](t *testing.T, data []byte) {
	v := P(new(T))
	if err := wire.Unmarshal(data, v); err != nil {
		return
	}
	out, err := wire.Marshal(v)
	if err != nil {
		t.Fatalf("re-encode of decoded value failed: %v", err)
	}
	if !bytes.Equal(out, data) {
		t.Fatalf("re-encoding differs:\n got %x\nwant %x", out, data)
	}
	if err := wire.Unmarshal(out, P(new(T))); err != nil {
		t.Fatalf("re-decode failed: %v", err)
	}
}

func TestMessageVectorsProposals(t *testing.T) {
	cases := messageVectors(t)
	if cases == nil {
		t.Skip("messages.json not found")
	}
	for i, c := range cases {
		for _, f := range []struct {
			field string
			v     codec
		}{
			{"add_proposal", new(Add)},
			{"update_proposal", new(Update)},
			{"remove_proposal", new(Remove)},
			{"pre_shared_key_proposal", new(PreSharedKey)},
			{"re_init_proposal", new(ReInit)},
			{"external_init_proposal", new(ExternalInit)},
			{"group_context_extensions_proposal", new(GroupContextExtensions)},
			{"commit", new(Commit)},
		} {
			if err := roundTrip(t, c[f.field], f.v); err != nil {
				t.Fatalf("#%d %s: %v", i, f.field, err)
			}
		}
	}
}

func sampleLeaf() tree.LeafNode {
	return tree.LeafNode{
		EncryptionKey:  []byte{1},
		SignatureKey:   []byte{2},
		Credential:     tree.NewBasicCredential([]byte("a")),
		LeafNodeSource: tree.LeafNodeSourceKeyPackage,
		Lifetime:       tree.Lifetime{NotBefore: 1, NotAfter: 2},
		Signature:      []byte{3},
	}
}

func sampleKeyPackage() KeyPackage {
	return KeyPackage{
		Version:     tree.ProtocolVersionMLS10,
		CipherSuite: 1,
		InitKey:     []byte{4, 5},
		LeafNode:    sampleLeaf(),
		Extensions:  tree.Extensions{{ExtensionType: 0xeaea, ExtensionData: []byte{0}}},
		Signature:   []byte{6},
	}
}

func sampleProposals() []Proposal {
	kp := sampleKeyPackage()
	return []Proposal{
		{ProposalType: tree.ProposalTypeAdd, Add: &Add{KeyPackage: kp}},
		{ProposalType: tree.ProposalTypeUpdate, Update: &Update{LeafNode: sampleLeaf()}},
		{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: 7}},
		{ProposalType: tree.ProposalTypePSK, PreSharedKey: &PreSharedKey{PSK: schedule.PreSharedKeyID{
			Type: schedule.PSKTypeExternal, PSKID: []byte("id"), Nonce: []byte{1, 2}}}},
		{ProposalType: tree.ProposalTypeReInit, ReInit: &ReInit{GroupID: []byte("g"), Version: 2, CipherSuite: 3}},
		{ProposalType: tree.ProposalTypeExternalInit, ExternalInit: &ExternalInit{KEMOutput: []byte{9}}},
		{ProposalType: tree.ProposalTypeGroupContextExtensions, GroupContextExtensions: &GroupContextExtensions{}},
	}
}

func TestProposalRoundTrip(t *testing.T) {
	for _, p := range sampleProposals() {
		data, err := wire.Marshal(&p)
		if err != nil {
			t.Fatalf("%v: %v", p.ProposalType, err)
		}
		var got Proposal
		if err := roundTrip(t, data, &got); err != nil {
			t.Fatalf("%v: %v", p.ProposalType, err)
		}
		if got.ProposalType != p.ProposalType || got.body() == nil {
			t.Fatalf("%v: decoded %+v", p.ProposalType, got)
		}
	}
	kp := sampleKeyPackage()
	tbs, err := kp.MarshalTBS()
	if err != nil {
		t.Fatal(err)
	}
	full := wire.MustMarshal(&kp)
	if !bytes.Equal(append(tbs, 1, 6), full) {
		t.Fatalf("KeyPackageTBS is not the KeyPackage prefix")
	}
}

func TestCommitRoundTrip(t *testing.T) {
	props := sampleProposals()
	c := Commit{
		Proposals: []ProposalOrRef{
			{Type: ProposalOrRefTypeProposal, Proposal: &props[2]},
			{Type: ProposalOrRefTypeReference, Reference: ProposalRef{1, 2, 3}},
		},
		Path: &tree.UpdatePath{LeafNode: sampleLeaf(), Nodes: []tree.UpdatePathNode{{
			EncryptionKey:       []byte{1},
			EncryptedPathSecret: []tree.HPKECiphertext{{KEMOutput: []byte{2}, Ciphertext: []byte{3}}},
		}}},
	}
	for _, c := range []Commit{c, {}} {
		var got Commit
		if err := roundTrip(t, wire.MustMarshal(&c), &got); err != nil {
			t.Fatal(err)
		}
		if (got.Path == nil) != (c.Path == nil) {
			t.Fatal("path presence lost")
		}
	}
}

func TestProposalDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		v    wire.Unmarshaler
		want error
	}{
		{"proposal type 0", []byte{0, 0}, new(Proposal), ErrUnknownProposalType},
		{"proposal type 8", []byte{0, 8, 0, 0, 0, 0}, new(Proposal), ErrUnknownProposalType},
		{"grease proposal type", []byte{0x0a, 0x0a, 0}, new(Proposal), ErrUnknownProposalType},
		{"ProposalOrRef type 0", []byte{0, 0}, new(ProposalOrRef), ErrUnknownProposalOrRefType},
		{"ProposalOrRef type 3", []byte{3, 0}, new(ProposalOrRef), ErrUnknownProposalOrRefType},
		{"commit bad optional", []byte{0, 2}, new(Commit), wire.ErrInvalidOptional},
		{"psk type 0", []byte{0, 0}, new(PreSharedKey), wire.ErrInvalidValue},
		{"remove truncated", []byte{0, 0, 1}, new(Remove), wire.ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := wire.Unmarshal(tt.data, tt.v); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEncodeIncomplete(t *testing.T) {
	for _, v := range []wire.Marshaler{
		&Proposal{ProposalType: tree.ProposalTypeAdd},
		&Proposal{ProposalType: 0x0a0a},
		&ProposalOrRef{Type: ProposalOrRefTypeProposal},
		&ProposalOrRef{},
	} {
		if _, err := wire.Marshal(v); !errors.Is(err, ErrIncompleteValue) {
			t.Errorf("%T %+v: got %v", v, v, err)
		}
	}
}

func FuzzProposal(f *testing.F) {
	for _, p := range sampleProposals() {
		f.Add(wire.MustMarshal(&p))
	}
	// The vectors hold proposal bodies; prefix each with its type.
	for _, c := range messageVectors(f) {
		for i, field := range []string{"add_proposal", "update_proposal", "remove_proposal",
			"pre_shared_key_proposal", "re_init_proposal", "external_init_proposal",
			"group_context_extensions_proposal"} {
			f.Add(append([]byte{0, byte(i + 1)}, c[field]...))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip[Proposal](t, data) })
}

func FuzzCommit(f *testing.F) {
	fuzzSeeds(f, "commit")
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip[Commit](t, data) })
}

func FuzzKeyPackage(f *testing.F) {
	fuzzSeeds(f, "add_proposal") // an Add is exactly one KeyPackage
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip[KeyPackage](t, data) })
}
