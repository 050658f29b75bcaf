package mls

import (
	"bytes"
	"errors"
	"testing"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

var mlsMessageFields = []struct {
	field string
	wf    WireFormat
}{
	{"mls_welcome", WireFormatWelcome},
	{"mls_group_info", WireFormatGroupInfo},
	{"mls_key_package", WireFormatKeyPackage},
	{"public_message_application", WireFormatPublicMessage},
	{"public_message_proposal", WireFormatPublicMessage},
	{"public_message_commit", WireFormatPublicMessage},
	{"private_message", WireFormatPrivateMessage},
}

func TestMessageVectorsMLSMessage(t *testing.T) {
	cases := messageVectors(t)
	if cases == nil {
		t.Skip("messages.json not found")
	}
	for i, c := range cases {
		for _, f := range mlsMessageFields {
			var m Message
			if err := roundTrip(t, c[f.field], &m); err != nil {
				t.Fatalf("#%d %s: %v", i, f.field, err)
			}
			if m.WireFormat != f.wf || m.body() == nil {
				t.Fatalf("#%d %s: wire format %v", i, f.field, m.WireFormat)
			}
		}
		if err := roundTrip(t, c["group_secrets"], new(GroupSecrets)); err != nil {
			t.Fatalf("#%d group_secrets: %v", i, err)
		}
		var pub Message
		_ = wire.Unmarshal(c["public_message_commit"], &pub)
		if pub.PublicMessage.Content.ContentType != ContentTypeCommit {
			t.Fatalf("#%d public_message_commit has content type %v", i, pub.PublicMessage.Content.ContentType)
		}
	}
}

func sampleGroupInfo() GroupInfo {
	return GroupInfo{
		GroupContext: GroupContext{Version: tree.ProtocolVersionMLS10, CipherSuite: 2, GroupID: []byte("g"), Epoch: 9,
			TreeHash: []byte{1}, ConfirmedTranscriptHash: []byte{2}},
		Extensions:      tree.Extensions{{ExtensionType: 0x4a4a, ExtensionData: []byte{}}},
		ConfirmationTag: []byte{3},
		Signer:          4,
		Signature:       []byte{5, 5},
	}
}

func TestWelcomeGroupInfoRoundTrip(t *testing.T) {
	gi := sampleGroupInfo()
	tbs, err := gi.MarshalTBS()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(tbs, 2, 5, 5), wire.MustMarshal(&gi)) {
		t.Fatal("GroupInfoTBS is not the GroupInfo prefix")
	}
	for _, gs := range []GroupSecrets{
		{JoinerSecret: []byte{1}},
		{JoinerSecret: []byte{1}, PathSecret: []byte{}},
		{JoinerSecret: []byte{1}, PathSecret: []byte{2}, PSKs: []schedule.PreSharedKeyID{{Type: schedule.PSKTypeResumption,
			Usage: schedule.UsageBranch, PSKGroupID: []byte{3}, PSKEpoch: 4, Nonce: []byte{5}}}},
	} {
		var got GroupSecrets
		if err := roundTrip(t, wire.MustMarshal(&gs), &got); err != nil {
			t.Fatal(err)
		}
		if (got.PathSecret == nil) != (gs.PathSecret == nil) {
			t.Fatal("path_secret presence lost")
		}
	}
	kp := sampleKeyPackage()
	w := Welcome{CipherSuite: 1, Secrets: []EncryptedGroupSecrets{{NewMember: KeyPackageRef{1},
		EncryptedGroupSecrets: tree.HPKECiphertext{KEMOutput: []byte{2}, Ciphertext: []byte{3}}}}, EncryptedGroupInfo: []byte{4}}
	for _, body := range []wire.Marshaler{&w, &gi, &kp, &PrivateMessage{ContentType: ContentTypeApplication},
		&PublicMessage{Content: sampleContent(ContentTypeApplication, MemberSender(1)), MembershipTag: []byte{1}}} {
		m, err := NewMessage(body)
		if err != nil {
			t.Fatal(err)
		}
		data := wire.MustMarshal(m)
		got, err := UnmarshalMessage(data)
		if err != nil {
			t.Fatalf("%T: %v", body, err)
		}
		if got.WireFormat != m.WireFormat || !bytes.Equal(wire.MustMarshal(got), data) {
			t.Fatalf("%T: round trip", body)
		}
	}
	if _, err := NewMessage(&Commit{}); !errors.Is(err, ErrIncompleteValue) {
		t.Fatal("NewMLSMessage accepted a Commit")
	}
}

func TestMLSMessageDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"version 0", []byte{0, 0, 0, 1}, ErrUnsupportedVersion},
		{"version 2", []byte{0, 2, 0, 1}, ErrUnsupportedVersion},
		{"wire format 0", []byte{0, 1, 0, 0}, ErrUnknownWireFormat},
		{"wire format 6", []byte{0, 1, 0, 6}, ErrUnknownWireFormat},
		{"private wire format", []byte{0, 1, 0xf0, 0x00}, ErrUnknownWireFormat},
		{"truncated", []byte{0, 1, 0}, wire.ErrTruncated},
		{"empty welcome trailing", []byte{0, 1, 0, 3, 0, 1, 0, 0, 0}, wire.ErrTrailingData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := UnmarshalMessage(tt.data); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := UnmarshalMessage([]byte{0, 1, 0, 3, 0, 1, 0, 0}); err != nil {
		t.Fatalf("minimal welcome: %v", err)
	}
	for _, m := range []*Message{{WireFormat: WireFormatWelcome, Welcome: &Welcome{}},
		{Version: tree.ProtocolVersionMLS10, WireFormat: WireFormatWelcome}} {
		if _, err := wire.Marshal(m); err == nil {
			t.Errorf("encoded %+v", m)
		}
	}
	if _, err := wire.Marshal(&GroupSecrets{PSKs: []schedule.PreSharedKeyID{{}}}); err == nil {
		t.Error("encoded a PSK of type 0")
	}
}

func FuzzMLSMessage(f *testing.F) {
	for _, c := range messageVectors(f) {
		for _, fld := range mlsMessageFields {
			f.Add([]byte(c[fld.field]))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip[Message](t, data) })
}

func FuzzWelcome(f *testing.F) {
	for _, c := range messageVectors(f) {
		f.Add([]byte(c["mls_welcome"][4:]))
		f.Add(append([]byte{0, 1}, c["group_secrets"]...)) // shapes of nested vectors
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRoundTrip[Welcome](t, data)
		fuzzRoundTrip[GroupSecrets](t, data)
	})
}

func FuzzGroupInfo(f *testing.F) {
	for _, c := range messageVectors(f) {
		f.Add([]byte(c["mls_group_info"][4:]))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip[GroupInfo](t, data) })
}
