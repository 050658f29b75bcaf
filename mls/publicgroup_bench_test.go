package mls

import (
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/mls/wire"
)

// BenchmarkPublicGroupCommit is what a relay does per commit in a group of
// n members: load the public state, verify and apply a full-path commit,
// check the new epoch's GroupInfo (with the tree), save the state.
func BenchmarkPublicGroupCommit(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := gtSuite(b, 1)
			c := gtNewMember(b, s, "creator")
			g, err := CreateGroup(s, c.signer, nil, LeafOptions{Credential: c.cred}, nil, pgCfg)
			if err != nil {
				b.Fatal(err)
			}
			var kps []*KeyPackage
			for i := 1; i < n; i++ {
				kps = append(kps, gtNewMember(b, s, fmt.Sprint("m", i)).kp)
			}
			res, err := g.Commit(CommitOptions{Add: kps})
			if err != nil {
				b.Fatal(err)
			}
			g = res.State
			gi, err := g.GroupInfo(true)
			if err != nil {
				b.Fatal(err)
			}
			pg, err := NewPublicGroup(pgRoundTrip(b, gi), nil, Config{})
			if err != nil {
				b.Fatal(err)
			}
			state, err := pg.MarshalBinary()
			if err != nil {
				b.Fatal(err)
			}
			next, err := g.Commit(CommitOptions{})
			if err != nil {
				b.Fatal(err)
			}
			ngi, err := next.State.GroupInfo(true)
			if err != nil {
				b.Fatal(err)
			}
			msg, info := gtWire(b, next.Commit), gtWireOf(b, ngi)
			b.ResetTimer()
			for b.Loop() {
				pg, err := LoadPublicGroup(state, Config{})
				if err != nil {
					b.Fatal(err)
				}
				m, err := UnmarshalMessage(msg)
				if err != nil {
					b.Fatal(err)
				}
				pc, err := pg.ProcessCommit(m)
				if err != nil {
					b.Fatal(err)
				}
				var gi GroupInfo
				if err := wire.Unmarshal(info, &gi); err != nil {
					b.Fatal(err)
				}
				if err := pc.State.VerifyGroupInfo(&gi); err != nil {
					b.Fatal(err)
				}
				if _, err := pc.State.MarshalBinary(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(state)), "state-bytes")
		})
	}
}
