package tree

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/spacepanda/spacepanda/internal/testvec"
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

// roundTrip decodes data into v and checks that re-encoding gives data back.
func roundTrip(t testing.TB, data []byte, v interface {
	wire.Marshaler
	wire.Unmarshaler
}) error {
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

func TestMessageVectorsTree(t *testing.T) {
	cases := messageVectors(t)
	if cases == nil {
		t.Skip("messages.json not found")
	}
	for i, c := range cases {
		var tr RatchetTreeNodes
		if err := roundTrip(t, c["ratchet_tree"], &tr); err != nil {
			t.Fatalf("#%d ratchet_tree: %v", i, err)
		}
		// An Update proposal is exactly one LeafNode.
		var ln LeafNode
		if err := roundTrip(t, c["update_proposal"], &ln); err != nil {
			t.Fatalf("#%d update_proposal: %v", i, err)
		}
	}
}

func leaf(src LeafNodeSource) *LeafNode {
	return &LeafNode{
		EncryptionKey:  []byte{1, 2},
		SignatureKey:   []byte{3},
		Credential:     NewBasicCredential([]byte("alice")),
		Capabilities:   Capabilities{Versions: []ProtocolVersion{ProtocolVersionMLS10}, CipherSuites: nil, Extensions: []ExtensionType{0x0a0a}},
		LeafNodeSource: src,
		Lifetime:       Lifetime{NotBefore: 1, NotAfter: 2},
		ParentHash:     []byte{9},
		Extensions:     Extensions{{ExtensionType: 0x0a0a, ExtensionData: []byte("grease")}},
		Signature:      []byte{7, 7},
	}
}

func TestLeafNodeTBS(t *testing.T) {
	for _, src := range []LeafNodeSource{LeafNodeSourceKeyPackage, LeafNodeSourceUpdate, LeafNodeSourceCommit} {
		ln := leaf(src)
		full := wire.MustMarshal(ln)
		tbs, err := ln.MarshalTBS([]byte{0xaa, 0xbb}, 5)
		if err != nil {
			t.Fatal(err)
		}
		// TBS = content (full minus the 3-byte signature) + context.
		content := full[:len(full)-3]
		var want []byte
		want = append(want, content...)
		if src != LeafNodeSourceKeyPackage {
			want = append(want, 2, 0xaa, 0xbb, 0, 0, 0, 5)
		}
		if !bytes.Equal(tbs, want) {
			t.Errorf("%v: tbs %x, want %x", src, tbs, want)
		}
	}
}

func TestCredentialRoundTrip(t *testing.T) {
	for _, c := range []Credential{
		NewBasicCredential([]byte("bob")),
		{CredentialType: CredentialTypeX509, Certificates: [][]byte{{1, 2, 3}, {}}},
		{CredentialType: 0x0a0a, Data: []byte("opaque body")},
	} {
		data := wire.MustMarshal(&c)
		var got Credential
		if err := roundTrip(t, data, &got); err != nil {
			t.Errorf("%v: %v", c.CredentialType, err)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := wire.MustMarshal(leaf(LeafNodeSourceUpdate))
	parent := wire.MustMarshal(&Node{Parent: &ParentNode{EncryptionKey: []byte{1}, UnmergedLeaves: []LeafIndex{1, 2}}})
	leafNode := wire.MustMarshal(&Node{Leaf: leaf(LeafNodeSourceCommit)})
	vec := func(parts ...[]byte) []byte {
		var b wire.Builder
		b.AddVector(func(b *wire.Builder) {
			for _, p := range parts {
				b.AddRaw(p)
			}
		})
		out, _ := b.Bytes()
		return out
	}
	present := func(n []byte) []byte { return append([]byte{1}, n...) }
	blank := []byte{0}

	// Locate the leaf_node_source octet in an encoded update leaf: it
	// follows key(3) + sigkey(2) + credential(2+1+5) + capabilities.
	caps := wire.MustMarshal(&leaf(LeafNodeSourceUpdate).Capabilities)
	srcOff := 3 + 2 + 2 + 1 + 5 + len(caps)
	if LeafNodeSource(good[srcOff]) != LeafNodeSourceUpdate {
		t.Fatalf("bad offset")
	}
	badSrc := bytes.Clone(good)
	badSrc[srcOff] = 9

	dupExt := wire.MustMarshal(&LeafNode{LeafNodeSource: LeafNodeSourceUpdate,
		Extensions: Extensions{{ExtensionType: 7}, {ExtensionType: 7}}})

	tests := []struct {
		name string
		data []byte
		v    wire.Unmarshaler
		want error
	}{
		{"leaf source", badSrc, new(LeafNode), ErrUnknownLeafNodeSource},
		{"duplicate extension", dupExt, new(LeafNode), ErrDuplicateExtension},
		{"node type 0", []byte{0}, new(Node), ErrUnknownNodeType},
		{"node type 3", []byte{3}, new(Node), ErrUnknownNodeType},
		{"empty tree", vec(), new(RatchetTreeNodes), ErrMalformedTree},
		{"trailing blank", vec(present(leafNode), blank), new(RatchetTreeNodes), ErrMalformedTree},
		{"parent at leaf position", vec(present(parent)), new(RatchetTreeNodes), ErrMalformedTree},
		{"leaf at parent position", vec(present(leafNode), present(leafNode), present(leafNode)), new(RatchetTreeNodes), ErrMalformedTree},
		{"bad optional", vec([]byte{2}), new(RatchetTreeNodes), wire.ErrInvalidOptional},
		{"truncated", good[:len(good)-1], new(LeafNode), wire.ErrTruncated},
		{"trailing", append(bytes.Clone(good), 0), new(LeafNode), wire.ErrTrailingData},
		{"odd uint16 vector", []byte{1, 0, 0, 0, 0, 0}, new(Capabilities), wire.ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := wire.Unmarshal(tt.data, tt.v)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	// A valid tree: leaf, blank parent, leaf.
	var tr RatchetTreeNodes
	if err := roundTrip(t, vec(present(leafNode), blank, present(leafNode)), &tr); err != nil {
		t.Fatal(err)
	}
	if len(tr) != 3 || tr[1] != nil || tr[2].Type() != NodeTypeLeaf {
		t.Fatalf("decoded tree %v", tr)
	}
}

func TestEncodeIncomplete(t *testing.T) {
	for _, v := range []wire.Marshaler{
		&Node{},
		&Node{Leaf: &LeafNode{LeafNodeSource: LeafNodeSourceUpdate}, Parent: &ParentNode{}},
		&LeafNode{},
	} {
		if _, err := wire.Marshal(v); err == nil {
			t.Errorf("%T %+v: encoded without error", v, v)
		}
	}
}

func TestExtensionsFind(t *testing.T) {
	es := Extensions{{ExtensionType: ExtensionTypeRatchetTree, ExtensionData: []byte{1}}}
	if e := es.Find(ExtensionTypeRatchetTree); e == nil || e.ExtensionData[0] != 1 {
		t.Fatal("Find missed")
	}
	if es.Find(ExtensionTypeExternalPub) != nil || es.Has(ExtensionTypeExternalPub) {
		t.Fatal("Find found absent type")
	}
}

func fuzzSeeds(f *testing.F, field string) {
	for _, c := range messageVectors(f) {
		f.Add([]byte(c[field]))
	}
}

// fuzzRoundTrip checks decode→encode→decode: the encoding must equal the
// input (decoding is strict, so accepted encodings are canonical).
func fuzzRoundTrip[T any, P interface {
	*T
	wire.Marshaler
	wire.Unmarshaler
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
	w := P(new(T))
	if err := wire.Unmarshal(out, w); err != nil {
		t.Fatalf("re-decode failed: %v", err)
	}
}

func FuzzRatchetTree(f *testing.F) {
	fuzzSeeds(f, "ratchet_tree")
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip[RatchetTreeNodes](t, data) })
}

func FuzzLeafNode(f *testing.F) {
	fuzzSeeds(f, "update_proposal")
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip[LeafNode](t, data) })
}

// FuzzTreeStructs covers the remaining tree-level decoders: Credential,
// Capabilities, Extensions, UpdatePath, ParentNode and the extension bodies.
func FuzzTreeStructs(f *testing.F) {
	for _, c := range messageVectors(f) {
		f.Add([]byte(c["update_proposal"]))
		f.Add([]byte(c["group_context_extensions_proposal"]))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRoundTrip[Credential](t, data)
		fuzzRoundTrip[Capabilities](t, data)
		fuzzRoundTrip[Extensions](t, data)
		fuzzRoundTrip[UpdatePath](t, data)
		fuzzRoundTrip[ParentNode](t, data)
		fuzzRoundTrip[Node](t, data)
		fuzzRoundTrip[ExternalSenders](t, data)
		fuzzRoundTrip[RequiredCapabilities](t, data)
		fuzzRoundTrip[ExternalPub](t, data)
	})
}
