package relay

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Real MLS groups of test devices, for the relay to verify: members hold
// mls.Group states, send handshakes as PublicMessage, and every commit
// comes with the new epoch's GroupInfo.

var mgCfg = mls.Config{HandshakeAsPublic: true, RatchetTreeInWelcome: true, Credentials: &identity.Validator{}}

// mgroup is one group; g holds the state of the members that follow it.
type mgroup struct {
	t   testing.TB
	gid []byte
	g   map[*ident]*mls.Group
	kps map[*ident]*mls.KeyPackageBundle
}

func (id *ident) certExtension(t testing.TB) tree.Extension {
	t.Helper()
	c, err := identity.ParseCertificate(id.cert)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := c.Extension()
	if err != nil {
		t.Fatal(err)
	}
	return ext
}

// newMGroup creates a group of creator alone.
func newMGroup(t testing.TB, creator *ident, gid []byte) *mgroup {
	t.Helper()
	caps := identity.Capabilities(mls.DefaultCapabilities())
	g, err := mls.CreateGroup(creator.cs, creator.signer, gid, mls.LeafOptions{Credential: tree.NewBasicCredential([]byte(creator.uid())),
		Capabilities: &caps, Extensions: tree.Extensions{creator.certExtension(t)}}, nil, mgCfg)
	if err != nil {
		t.Fatal(err)
	}
	return &mgroup{t: t, gid: g.GroupID(), g: map[*ident]*mls.Group{creator: g}, kps: map[*ident]*mls.KeyPackageBundle{}}
}

// keyPackage is a fresh key package of id that mg can add (and id join with).
func (mg *mgroup) keyPackage(id *ident) *mls.KeyPackage {
	mg.t.Helper()
	kp, priv, err := mls.NewKeyPackage(id.cs, nil, id.signer, tree.NewBasicCredential([]byte(id.uid())),
		mls.KeyPackageOptions{LeafExtensions: tree.Extensions{id.certExtension(mg.t)}})
	if err != nil {
		mg.t.Fatal(err)
	}
	mg.kps[id] = &mls.KeyPackageBundle{KeyPackage: kp, Private: priv, Signer: id.signer}
	return kp
}

// groupInfo is by's current GroupInfo (MLSMessage, with the tree).
func (mg *mgroup) groupInfo(by *ident) []byte {
	mg.t.Helper()
	gi, err := mg.g[by].GroupInfo(true)
	if err != nil {
		mg.t.Fatal(err)
	}
	return mlsBytes(mg.t, gi)
}

// staged is a commit not yet merged: its message, the new epoch's
// GroupInfo, and merge, which makes everyone follow it.
type staged struct {
	commit, groupInfo []byte
	res               *mls.CommitResult
	merge             func()
}

// commit stages a commit of by with o; add lists members to add (their
// fresh key packages).
func (mg *mgroup) commit(by *ident, o mls.CommitOptions, add ...*ident) *staged {
	mg.t.Helper()
	for _, id := range add {
		o.Add = append(o.Add, mg.keyPackage(id))
	}
	res, err := mg.g[by].Commit(o)
	if err != nil {
		mg.t.Fatalf("%s commits: %v", by, err)
	}
	gi, err := res.State.GroupInfo(true)
	if err != nil {
		mg.t.Fatal(err)
	}
	st := &staged{commit: mlsWire(mg.t, res.Commit), groupInfo: mlsBytes(mg.t, gi), res: res}
	st.merge = func() {
		mg.t.Helper()
		for id, g := range mg.g {
			if id == by {
				mg.g[id] = res.State
				continue
			}
			p, err := g.ProcessBytes(st.commit)
			if err != nil {
				mg.t.Fatalf("%s processes %s's commit: %v", id, by, err)
			}
			if p.State.Removed() {
				delete(mg.g, id)
			} else {
				mg.g[id] = p.State
			}
		}
		for _, id := range add {
			b := mg.kps[id]
			mine, err := b.KeyPackage.Ref(id.cs)
			if err != nil {
				mg.t.Fatal(err)
			}
			find := func(ref mls.KeyPackageRef) (*mls.KeyPackageBundle, error) {
				if !bytes.Equal(ref, mine) {
					return nil, mls.ErrKeyPackageNotFound
				}
				return b, nil
			}
			j, err := mls.JoinFromWelcome(res.Welcome, nil, find, mgCfg)
			if err != nil {
				mg.t.Fatalf("%s joins: %v", id, err)
			}
			mg.g[id] = j.Group
		}
	}
	return st
}

// leaf is id's leaf index in by's view.
func (mg *mgroup) leaf(by, id *ident) tree.LeafIndex {
	mg.t.Helper()
	for _, m := range mg.g[by].Members() {
		if bytes.Equal(m.SignatureKey, id.pub()) {
			return m.LeafIndex
		}
	}
	mg.t.Fatalf("%s is not in %s's group", id, by)
	return 0
}

func mlsWire(t testing.TB, m *mls.Message) []byte {
	t.Helper()
	b, err := wire.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// postCommit posts a staged commit with its GroupInfo (the raw request).
func (c *client) postCommit(gid []byte, st *staged) resp {
	return c.do("POST", "/v1/groups/"+gidPath(gid)+"/messages", map[string]any{"message": st.commit, "group_info": st.groupInfo})
}

// createGroup registers mg at the relay from by's GroupInfo.
func (c *client) createGroup(mg *mgroup, by *ident) resp {
	return c.do("POST", "/v1/groups", map[string]any{"group_info": mg.groupInfo(by)})
}

// propose has by send p; every member with state processes it.
func (mg *mgroup) propose(by *ident, p *mls.Proposal) []byte {
	mg.t.Helper()
	msg, next, err := mg.g[by].Propose(p)
	if err != nil {
		mg.t.Fatalf("%s proposes: %v", by, err)
	}
	mg.g[by] = next
	b := mlsWire(mg.t, msg)
	for id, g := range mg.g {
		if id == by {
			continue
		}
		pr, err := g.ProcessBytes(b)
		if err != nil {
			mg.t.Fatalf("%s processes %s's proposal: %v", id, by, err)
		}
		mg.g[id] = pr.State
	}
	return b
}

// setupGroup registers a group of creator at the relay through c and,
// when add is not empty, adds those users with one accepted commit.
func setupGroup(t testing.TB, c *client, gid []byte, creator *ident, add ...*ident) *mgroup {
	t.Helper()
	mg := newMGroup(t, creator, gid)
	c.must(200, "POST", "/v1/groups", map[string]any{"group_info": mg.groupInfo(creator)})
	if len(add) > 0 {
		mg.addAt(c, creator, add...)
	}
	return mg
}

// addAt has by add users with a commit that c posts (must be accepted).
func (mg *mgroup) addAt(c *client, by *ident, add ...*ident) {
	mg.t.Helper()
	st := mg.commit(by, mls.CommitOptions{}, add...)
	if r := c.postCommit(mg.gid, st); r.status != 200 {
		mg.t.Fatalf("commit adding %v: %d %s", add, r.status, r.raw)
	}
	st.merge()
}

// sizedCommit stages a commit of by whose MLSMessage is n bytes (its
// authenticated data fills it up).
func (mg *mgroup) sizedCommit(by *ident, n int) *staged {
	mg.t.Helper()
	ad := n - 4096
	for range 3 {
		st := mg.commit(by, mls.CommitOptions{AuthenticatedData: make([]byte, ad)})
		if len(st.commit) == n {
			return st
		}
		ad += n - len(st.commit)
	}
	mg.t.Fatalf("no commit of %d bytes", n)
	return nil
}

// groupInfoNoTree is by's current GroupInfo without the ratchet tree.
func (mg *mgroup) groupInfoNoTree(by *ident) []byte {
	mg.t.Helper()
	gi, err := mg.g[by].GroupInfo(false)
	if err != nil {
		mg.t.Fatal(err)
	}
	return mlsBytes(mg.t, gi)
}

// flipSignature breaks the signature of a PublicMessage (MLSMessage).
func flipSignature(t testing.TB, msg []byte) []byte {
	t.Helper()
	m, err := mls.UnmarshalMessage(msg)
	if err != nil || m.PublicMessage == nil {
		t.Fatalf("not a PublicMessage: %v", err)
	}
	m.PublicMessage.Auth.Signature[0] ^= 1
	return mlsWire(t, m)
}

// forgeEpoch is a commit of by in its current epoch whose signature was
// made over the same content in epoch other.
func (mg *mgroup) forgeEpoch(by *ident, other uint64) []byte {
	mg.t.Helper()
	g := mg.g[by]
	res, err := g.Commit(mls.CommitOptions{})
	if err != nil {
		mg.t.Fatal(err)
	}
	pm := res.Commit.PublicMessage
	fc := pm.Content
	fc.Epoch = other
	ctx := g.Context()
	ctx.Epoch = other
	ac, err := mls.SignContent(by.signer, mls.WireFormatPublicMessage, &fc, &ctx)
	if err != nil {
		mg.t.Fatal(err)
	}
	pm.Auth.Signature = ac.Auth.Signature
	return mlsWire(mg.t, res.Commit)
}

func std64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// noTree is the GroupInfo of a staged commit's new epoch without the tree.
func noTree(t testing.TB, st *staged) []byte {
	t.Helper()
	gi, err := st.res.State.GroupInfo(false)
	if err != nil {
		t.Fatal(err)
	}
	return mlsBytes(t, gi)
}
