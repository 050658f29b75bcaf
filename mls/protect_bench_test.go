package mls

import (
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
)

// benchEnv is a two-member epoch for protecting application messages.
type benchEnv struct {
	s      *suite.Suite
	signer *suite.Signer
	ctx    *GroupContext
	encSec []byte
	sdSec  []byte
}

func newBenchEnv(b *testing.B, id suite.ID) *benchEnv {
	s := suite.MustNew(id)
	priv, _, err := s.GenerateSignatureKeyPair(nil)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := s.NewSigner(priv)
	if err != nil {
		b.Fatal(err)
	}
	rnd := func() []byte { x := make([]byte, s.HashSize()); rand.Read(x); return x }
	return &benchEnv{s: s, signer: signer, encSec: rnd(), sdSec: rnd(), ctx: &GroupContext{
		Version: tree.ProtocolVersionMLS10, CipherSuite: id, GroupID: []byte("bench-group"),
		Epoch: 7, TreeHash: rnd(), ConfirmedTranscriptHash: rnd(),
	}}
}

func (e *benchEnv) keys(b *testing.B) PrivateKeys {
	st, err := schedule.NewSecretTree(e.s, e.encSec, 2, schedule.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return PrivateKeys{SecretTree: st, SenderDataSecret: e.sdSec}
}

func (e *benchEnv) protect(b *testing.B, keys PrivateKeys, body []byte) *PrivateMessage {
	fc := &FramedContent{GroupID: e.ctx.GroupID, Epoch: e.ctx.Epoch, Sender: MemberSender(0),
		ContentType: ContentTypeApplication, ApplicationData: body}
	ac, err := SignContent(e.signer, WireFormatPrivateMessage, fc, e.ctx)
	if err != nil {
		b.Fatal(err)
	}
	pm, err := protectPrivate(e.s, ac, keys, 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	return pm
}

// floorStep runs, once, the primitives RFC 9420 requires per message: one
// signature (send) or verification (receive), and two AEAD calls (content
// and sender data), and returns how long they took.
type floorStep struct {
	e          *benchEnv
	key, nonce []byte
	body, sig  []byte
	ct, sd     []byte
}

func (e *benchEnv) newFloor(body []byte) *floorStep {
	f := &floorStep{e: e, key: make([]byte, e.s.AEADKeySize()), nonce: make([]byte, e.s.AEADNonceSize()), body: body}
	f.sig, _ = e.signer.SignWithLabel("FramedContentTBS", body)
	f.ct, _ = e.s.Seal(f.key, f.nonce, nil, body)
	f.sd, _ = e.s.Seal(f.key, f.nonce, nil, make([]byte, 12))
	return f
}

func (f *floorStep) run(send bool) time.Duration {
	e := f.e
	start := time.Now()
	if send {
		e.signer.SignWithLabel("FramedContentTBS", f.body)
		e.s.Seal(f.key, f.nonce, nil, f.body)
		e.s.Seal(f.key, f.nonce, nil, make([]byte, 12))
	} else {
		e.s.VerifyWithLabel(e.signer.PublicKey(), "FramedContentTBS", f.body, f.sig)
		e.s.Open(f.key, f.nonce, nil, f.ct)
		e.s.Open(f.key, f.nonce, nil, f.sd)
	}
	return time.Since(start)
}

// The benchmarks interleave one floor step with each operation, so machine
// noise lands on both alike; ns/op counts the operation only.

// BenchmarkProtectApplication: a 200-byte application message as a
// PrivateMessage, with the crypto floor measured just before in the same run
// (metrics floor-ns/op and ratio).
func BenchmarkProtectApplication(b *testing.B) {
	body := make([]byte, 200)
	for _, id := range []suite.ID{1, 2, 3} {
		b.Run(fmt.Sprintf("suite=%d", id), func(b *testing.B) {
			e := newBenchEnv(b, id)
			keys := e.keys(b)
			fl := e.newFloor(body)
			var m pairedMedian
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				f := fl.run(true)
				b.StartTimer()
				t0 := time.Now()
				e.protect(b, keys, body)
				m.add(time.Since(t0), f)
			}
			b.StopTimer()
			m.report(b)
		})
	}
}

// BenchmarkUnprotectApplication: decrypting and verifying that message.
func BenchmarkUnprotectApplication(b *testing.B) {
	body := make([]byte, 200)
	for _, id := range []suite.ID{1, 2, 3} {
		b.Run(fmt.Sprintf("suite=%d", id), func(b *testing.B) {
			e := newBenchEnv(b, id)
			send, recv := e.keys(b), e.keys(b)
			msgs := make([]*PrivateMessage, b.N)
			for i := range msgs {
				msgs[i] = e.protect(b, send, body)
			}
			pub := e.signer.PublicKey()
			fl := e.newFloor(body)
			var m pairedMedian
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				f := fl.run(false)
				b.StartTimer()
				t0 := time.Now()
				_, err := unprotectPrivate(e.s, msgs[i], recv, func(ac *AuthenticatedContent) error {
					return VerifySignature(e.s, pub, ac, e.ctx)
				})
				m.add(time.Since(t0), f)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			m.report(b)
		})
	}
}

var _ = tree.LeafIndex(0)

// pairedMedian collects per-iteration (operation, floor) durations and
// reports their medians and the ratio of medians: robust to the load spikes
// of a shared machine, which the mean is not.
type pairedMedian struct{ op, floor []time.Duration }

func (m *pairedMedian) add(op, floor time.Duration) {
	m.op = append(m.op, op)
	m.floor = append(m.floor, floor)
}

func median(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2].Nanoseconds())
}

func (m *pairedMedian) report(b *testing.B) {
	if len(m.op) == 0 {
		return
	}
	op, fl := median(m.op), median(m.floor)
	b.ReportMetric(op, "median-ns/op")
	b.ReportMetric(fl, "floor-ns/op")
	b.ReportMetric(op/fl, "ratio")
}
