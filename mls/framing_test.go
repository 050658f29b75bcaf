package mls

import (
	"bytes"
	"errors"
	"testing"

	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// TestMessageVectorsFraming decodes the framed-message bodies of
// messages.json (each is an MLSMessage: skip the 4-byte version and
// wire_format header).
func TestMessageVectorsFraming(t *testing.T) {
	cases := messageVectors(t)
	if cases == nil {
		t.Skip("messages.json not found")
	}
	for i, c := range cases {
		for _, f := range []struct {
			field string
			v     codec
		}{
			{"public_message_application", new(PublicMessage)},
			{"public_message_proposal", new(PublicMessage)},
			{"public_message_commit", new(PublicMessage)},
			{"private_message", new(PrivateMessage)},
		} {
			if err := roundTrip(t, c[f.field][4:], f.v); err != nil {
				t.Fatalf("#%d %s: %v", i, f.field, err)
			}
		}
	}
}

func sampleContent(ct ContentType, s Sender) FramedContent {
	fc := FramedContent{GroupID: []byte("group"), Epoch: 3, Sender: s, AuthenticatedData: []byte("ad"), ContentType: ct}
	switch ct {
	case ContentTypeApplication:
		fc.ApplicationData = []byte("hello")
	case ContentTypeProposal:
		fc.Proposal = &Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &Remove{Removed: 1}}
	case ContentTypeCommit:
		fc.Commit = &Commit{}
	}
	return fc
}

var allSenders = []Sender{
	MemberSender(2),
	{SenderType: SenderTypeExternal, SenderIndex: 1},
	{SenderType: SenderTypeNewMemberProposal},
	{SenderType: SenderTypeNewMemberCommit},
}

func TestPublicMessageRoundTrip(t *testing.T) {
	for _, s := range allSenders {
		for _, ct := range []ContentType{ContentTypeApplication, ContentTypeProposal, ContentTypeCommit} {
			pm := PublicMessage{Content: sampleContent(ct, s), Auth: FramedContentAuthData{Signature: []byte{1}}}
			if ct == ContentTypeCommit {
				pm.Auth.ConfirmationTag = []byte{2}
			}
			if s.SenderType == SenderTypeMember {
				pm.MembershipTag = []byte{3}
			}
			data, err := wire.Marshal(&pm)
			if err != nil {
				t.Fatalf("%v/%v: %v", s.SenderType, ct, err)
			}
			var got PublicMessage
			if err := roundTrip(t, data, &got); err != nil {
				t.Fatalf("%v/%v: %v", s.SenderType, ct, err)
			}
			if got.Content.Sender != s || (got.Auth.ConfirmationTag != nil) != (ct == ContentTypeCommit) ||
				(got.MembershipTag != nil) != (s.SenderType == SenderTypeMember) {
				t.Fatalf("%v/%v: decoded %+v", s.SenderType, ct, got)
			}
			ac := AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: pm.Content, Auth: pm.Auth}
			if err := roundTrip(t, wire.MustMarshal(&ac), new(AuthenticatedContent)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestFramedContentTBS(t *testing.T) {
	gc := &GroupContext{Version: tree.ProtocolVersionMLS10, CipherSuite: 1, GroupID: []byte("group"), Epoch: 3}
	gcBytes := wire.MustMarshal(gc)
	for _, s := range allSenders {
		fc := sampleContent(ContentTypeProposal, s)
		tbs, err := fc.MarshalTBS(WireFormatPublicMessage, gc)
		if err != nil {
			t.Fatal(err)
		}
		want := append([]byte{0, 1, 0, 1}, wire.MustMarshal(&fc)...)
		if needsGroupContext(s.SenderType) {
			want = append(want, gcBytes...)
			if _, err := fc.MarshalTBS(WireFormatPublicMessage, nil); !errors.Is(err, ErrIncompleteValue) {
				t.Errorf("%v: missing context accepted: %v", s.SenderType, err)
			}
		}
		if !bytes.Equal(tbs, want) {
			t.Errorf("%v: tbs %x\nwant %x", s.SenderType, tbs, want)
		}
	}
	// AuthenticatedContentTBM = FramedContentTBS || auth.
	fc := sampleContent(ContentTypeCommit, MemberSender(0))
	auth := FramedContentAuthData{Signature: []byte{1}, ConfirmationTag: []byte{2}}
	tbm := wire.MustMarshal(&AuthenticatedContentTBM{ContentTBS: FramedContentTBS{WireFormat: WireFormatPublicMessage, Content: &fc, Context: gc}, Auth: &auth})
	tbs, _ := fc.MarshalTBS(WireFormatPublicMessage, gc)
	if !bytes.Equal(tbm, append(tbs, 1, 1, 1, 2)) {
		t.Errorf("tbm %x", tbm)
	}
}

func TestPrivateMessageContent(t *testing.T) {
	for _, ct := range []ContentType{ContentTypeApplication, ContentTypeProposal, ContentTypeCommit} {
		for _, pad := range []int{0, 1, 17} {
			fc := sampleContent(ct, MemberSender(0))
			c := privateMessageContent{ContentType: ct, ApplicationData: fc.ApplicationData, Proposal: fc.Proposal,
				Commit: fc.Commit, Auth: FramedContentAuthData{Signature: []byte{9}}, Padding: pad}
			if ct == ContentTypeCommit {
				c.Auth.ConfirmationTag = []byte{8}
			}
			data := wire.MustMarshal(&c)
			got, err := unmarshalPrivateMessageContent(data, ct)
			if err != nil {
				t.Fatalf("%v pad %d: %v", ct, pad, err)
			}
			if got.Padding != pad || !bytes.Equal(wire.MustMarshal(got), data) {
				t.Fatalf("%v pad %d: round trip %+v", ct, pad, got)
			}
			if pad > 0 {
				bad := bytes.Clone(data)
				bad[len(bad)-1] = 1
				if _, err := unmarshalPrivateMessageContent(bad, ct); !errors.Is(err, ErrNonZeroPadding) {
					t.Fatalf("%v: non-zero padding: %v", ct, err)
				}
			}
		}
	}
	if _, err := unmarshalPrivateMessageContent([]byte{0, 0}, 0); !errors.Is(err, ErrUnknownContentType) {
		t.Fatalf("content type 0: %v", err)
	}
}

func TestSenderData(t *testing.T) {
	sd := senderDataPlain{LeafIndex: 5, Generation: 0x01020304, ReuseGuard: [4]byte{9, 8, 7, 6}}
	data := wire.MustMarshal(&sd)
	if !bytes.Equal(data, []byte{0, 0, 0, 5, 1, 2, 3, 4, 9, 8, 7, 6}) {
		t.Fatalf("%x", data)
	}
	var got senderDataPlain
	if err := roundTrip(t, data, &got); err != nil || got != sd {
		t.Fatalf("%v %+v", err, got)
	}
	pm := PrivateMessage{GroupID: []byte{1}, Epoch: 2, ContentType: ContentTypeProposal, AuthenticatedData: []byte{3}}
	if got, want := wire.MustMarshal(pm.senderDataAAD()), []byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 2, 2}; !bytes.Equal(got, want) {
		t.Fatalf("SenderDataAAD %x", got)
	}
	if got, want := wire.MustMarshal(pm.ContentAAD()), []byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 2, 2, 1, 3}; !bytes.Equal(got, want) {
		t.Fatalf("PrivateContentAAD %x", got)
	}
}

func TestFramingDecodeRejects(t *testing.T) {
	fc := sampleContent(ContentTypeApplication, MemberSender(0))
	good := wire.MustMarshal(&fc)
	// content_type octet sits after group_id(6) + epoch(8) + sender(5) + ad(3).
	badCT := bytes.Clone(good)
	badCT[22] = 4
	badSender := bytes.Clone(good)
	badSender[14] = 5
	gc := GroupContext{Version: tree.ProtocolVersionMLS10}
	badGC := wire.MustMarshal(&gc)
	badGC[1] = 2
	tests := []struct {
		name string
		data []byte
		v    wire.Unmarshaler
		want error
	}{
		{"content type", badCT, new(FramedContent), ErrUnknownContentType},
		{"sender type", badSender, new(FramedContent), ErrUnknownSenderType},
		{"sender type 0", []byte{0}, new(Sender), ErrUnknownSenderType},
		{"group context version", badGC, new(GroupContext), ErrUnsupportedVersion},
		{"authenticated content wire format", append([]byte{0, 3}, good...), new(AuthenticatedContent), ErrUnknownWireFormat},
		{"private message content type", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, new(PrivateMessage), ErrUnknownContentType},
		{"sender data short", []byte{0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3}, new(senderDataPlain), wire.ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := wire.Unmarshal(tt.data, tt.v); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	for _, v := range []wire.Marshaler{
		&FramedContent{ContentType: ContentTypeProposal},
		&FramedContent{ContentType: ContentTypeCommit},
		&FramedContent{},
		&PublicMessage{Content: sampleContent(ContentTypeApplication, Sender{SenderType: SenderTypeExternal}), MembershipTag: []byte{}},
		&AuthenticatedContent{Content: sampleContent(ContentTypeApplication, MemberSender(0)), Auth: FramedContentAuthData{ConfirmationTag: []byte{}}},
	} {
		if _, err := wire.Marshal(v); !errors.Is(err, ErrIncompleteValue) {
			t.Errorf("%T: got %v", v, err)
		}
	}
	if _, err := wire.Marshal(&GroupContext{}); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("GroupContext version 0: %v", err)
	}
}

// FuzzFraming covers the framing decoders not reached through MLSMessage:
// AuthenticatedContent, PrivateMessageContent (each content type),
// senderDataPlain and the two AADs.
func FuzzFraming(f *testing.F) {
	for _, c := range messageVectors(f) {
		for _, fld := range []string{"public_message_application", "public_message_proposal", "public_message_commit"} {
			body := c[fld][4:]
			f.Add(append([]byte{0, 1}, body...)) // AuthenticatedContent-shaped
			var pm PublicMessage
			if wire.Unmarshal(body, &pm) == nil {
				pc := privateMessageContent{ContentType: pm.Content.ContentType, ApplicationData: pm.Content.ApplicationData,
					Proposal: pm.Content.Proposal, Commit: pm.Content.Commit, Auth: pm.Auth, Padding: 3}
				f.Add(append([]byte{byte(pc.ContentType)}, wire.MustMarshal(&pc)...))
			}
		}
		f.Add([]byte(c["private_message"][4:]))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRoundTrip[AuthenticatedContent](t, data)
		fuzzRoundTrip[senderDataPlain](t, data)
		fuzzRoundTrip[senderDataAAD](t, data)
		fuzzRoundTrip[privateContentAAD](t, data)
		fuzzRoundTrip[FramedContent](t, data)
		if len(data) == 0 {
			return
		}
		ct, body := ContentType(data[0]), data[1:]
		c, err := unmarshalPrivateMessageContent(body, ct)
		if err != nil {
			return
		}
		out, err := wire.Marshal(c)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(out, body) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", out, body)
		}
	})
}
