package relay

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/internal/apitest"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// FuzzRelayPost throws arbitrary request bodies (and group-id path
// segments) at every endpoint that decodes input. The relay must never
// answer 5xx nor panic (the handler turns a panic into a 500, so one check
// covers both); a message it accepts must come back from the log byte for
// byte (decode → store → encode round trip), and a key package it accepts
// must be claimable unchanged.
func FuzzRelayPost(f *testing.F) {
	st, err := OpenSQLite(f.Context(), f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	srv := New(st, Options{Rate: 1e9, Burst: 1 << 30, MaxBody: 1 << 16, MaxWait: time.Millisecond})
	defer srv.Close()
	h := srv.Handler()
	hs := httptest.NewServer(h)
	defer hs.Close()
	alice := newIdent(f, "alice")
	ca := login(f, hs.URL, alice)
	gid := []byte("fuzz-group")
	gp := gidPath(gid)
	mg := setupGroup(f, ca, gid, alice)
	add := mg.commit(alice, mls.CommitOptions{}, newIdent(f, "bob"))

	j := func(v any) []byte { b, _ := json.Marshal(v); return b }
	f.Add(uint8(0), gp, j(map[string]any{"message": privMsg(f, gid, 0, mls.ContentTypeApplication), "kind": "application", "epoch": 0}))
	f.Add(uint8(0), gp, j(map[string]any{"message": add.commit, "group_info": add.groupInfo}))
	f.Add(uint8(0), gp, j(map[string]any{"message": add.commit, "group_info": mg.groupInfo(alice)}))
	f.Add(uint8(0), gp, j(map[string]any{"message": mg.propose(alice, &mls.Proposal{ProposalType: tree.ProposalTypeRemove, Remove: &mls.Remove{Removed: 0}})}))
	f.Add(uint8(0), gp, []byte(`{"message":"AAEAAQ==","kind":"proposal","epoch":18446744073709551615}`))
	f.Add(uint8(1), "", j(map[string]any{"key_packages": [][]byte{alice.keyPackage(f, false)}, "last_resort": alice.keyPackage(f, true)}))
	f.Add(uint8(2), "", j(map[string]any{"recipients": []string{alice.uid()}, "welcome": welcomeMsg(f), "group_id": gid}))
	f.Add(uint8(3), gp, j(map[string]any{"group_info": groupInfoMsg(f, gid, 0), "epoch": 0}))
	f.Add(uint8(4), gp, []byte(`{"after": 3}`))
	f.Add(uint8(5), "", []byte(`{"group_id":"AQID","epoch":3}`))
	f.Add(uint8(5), "", j(map[string]any{"group_info": newMGroup(f, alice, []byte("another")).groupInfo(alice)}))
	f.Add(uint8(6), "", j(map[string]any{"user_id": alice.uid()}))
	f.Add(uint8(7), "", j(map[string]any{"certificate": alice.cert}))
	f.Add(uint8(8), "", j(map[string]any{"certificate": alice.cert, "challenge": []byte("c"), "signature": []byte("s")}))
	f.Add(uint8(9), gp, []byte("after=1&limit=5&wait=0&max_bytes=10"))
	f.Add(uint8(10), "7", []byte(nil))
	f.Add(uint8(0), "%2F%2B", []byte(`{"message":null}`))
	f.Add(uint8(11), "", j(map[string]any{"revocation": alice.another(f, "other").revocation(f)}))
	f.Add(uint8(12), "AB12", j(map[string]any{"from": "join", "message": []byte{1, 2, 3}}))
	f.Add(uint8(12), "AB12", j(map[string]any{"from": "offer", "message": []byte{1, 1, 3}}))
	f.Add(uint8(13), "AB12", []byte("from=offer&after=0&wait=0"))
	f.Add(uint8(14), "AB12", []byte(nil))

	doc := relayDoc(f)
	f.Fuzz(func(t *testing.T, sel uint8, path string, body []byte) {
		if strings.ContainsAny(path, "/?#") {
			path = base64.RawURLEncoding.EncodeToString([]byte(path))
		}
		var method, target string
		switch sel % 16 {
		case 0:
			method, target = "POST", "/v1/groups/"+path+"/messages"
		case 1:
			method, target = "POST", "/v1/key-packages"
		case 2:
			method, target = "POST", "/v1/welcomes"
		case 3:
			method, target = "PUT", "/v1/groups/"+path+"/group-info"
		case 4:
			method, target = "PUT", "/v1/groups/"+path+"/cursor"
		case 5:
			method, target = "POST", "/v1/groups"
		case 6:
			method, target = "POST", "/v1/key-packages/claim"
		case 7:
			method, target = "POST", "/v1/auth/challenge"
		case 8:
			method, target = "POST", "/v1/auth/login"
		case 9:
			// The body is the query string of a read (MaxWait is 1 ms here).
			method, target, body = "GET", "/v1/groups/"+path+"/messages?"+string(body), nil
		case 10:
			method, target, body = "DELETE", "/v1/welcomes/"+path, nil
		case 11:
			method, target = "POST", "/v1/devices/revocations"
		case 12:
			method, target = "POST", "/v1/link/"+path+"/messages"
		case 13:
			method, target, body = "GET", "/v1/link/"+path+"/messages?"+string(body), nil
		case 14:
			method, target, body = "PUT", "/v1/link/"+path, nil
		case 15:
			method, target, body = "GET", "/v1/users/"+path+"/devices", nil
		}
		req, err := http.NewRequest(method, "http://relay.test"+target, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		req.Header.Set("Authorization", "Bearer "+ca.token)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		// Whatever the input, the answer is one the document describes.
		apitest.Handler(t, doc, h).ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, target, body, rec.Code, rec.Body)
		}
		if rec.Code == 200 && sel%16 == 0 {
			var out struct{ Seq int64 }
			var in struct{ Message []byte }
			json.Unmarshal(rec.Body.Bytes(), &out)
			json.Unmarshal(body, &in)
			rgid, _ := decodePathGroupID(path)
			ms, err := st.Messages(t.Context(), rgid, alice.uid(), out.Seq-1, 1, 1)
			if err != nil || len(ms) != 1 || !bytes.Equal(ms[0].Data, in.Message) {
				t.Fatalf("accepted seq %d does not round-trip: %v %v", out.Seq, ms, err)
			}
			if _, err := mls.UnmarshalMessage(ms[0].Data); err != nil {
				t.Fatalf("accepted a message that does not decode: %v", err)
			}
		}
		if rec.Code == 200 && sel%16 == 1 {
			var in struct {
				KeyPackages [][]byte `json:"key_packages"`
			}
			json.Unmarshal(body, &in)
			for range in.KeyPackages {
				kps, err := st.ClaimKeyPackages(t.Context(), alice.uid())
				if err != nil || len(kps) != 1 {
					t.Fatal(kps, err)
				}
				if m, err := mls.UnmarshalMessage(kps[0].Data); err != nil || m.KeyPackage == nil {
					t.Fatalf("stored key package does not decode: %v", err)
				}
			}
		}
	})
}
