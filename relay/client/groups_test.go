package relayclient_test

import (
	"testing"

	"github.com/spacepanda/spacepanda/identity"
	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// A real group of a test device, for the relay to verify: handshakes as
// PublicMessage, GroupInfos with the tree.

func (d *device) createMLSGroup(t *testing.T, gid []byte) *mls.Group {
	t.Helper()
	cert, _ := identity.ParseCertificate(d.cert)
	ext, _ := cert.Extension()
	caps := identity.Capabilities(mls.DefaultCapabilities())
	g, err := mls.CreateGroup(d.cs, d.signer, gid, mls.LeafOptions{Credential: tree.NewBasicCredential([]byte(d.user.UserID())),
		Capabilities: &caps, Extensions: tree.Extensions{ext}}, nil, mls.Config{HandshakeAsPublic: true})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func groupInfoOf(t *testing.T, g *mls.Group) []byte {
	t.Helper()
	gi, err := g.GroupInfo(true)
	if err != nil {
		t.Fatal(err)
	}
	return marshal(t, gi)
}

// commitAdding commits the addition of d's fresh key package (none when
// d is nil): the commit
// and the new epoch's GroupInfo.
func commitAdding(t *testing.T, g *mls.Group, d *device) (*mls.CommitResult, []byte, []byte) {
	t.Helper()
	o := mls.CommitOptions{}
	if d != nil {
		m, err := mls.UnmarshalMessage(d.keyPackage(t, false))
		if err != nil {
			t.Fatal(err)
		}
		o.Add = []*mls.KeyPackage{m.KeyPackage}
	}
	res, err := g.Commit(o)
	if err != nil {
		t.Fatal(err)
	}
	c, err := wire.Marshal(res.Commit)
	if err != nil {
		t.Fatal(err)
	}
	return res, c, groupInfoOf(t, res.State)
}

// forgedCommit is an honest commit of g with its signature broken.
func forgedCommit(t *testing.T, g *mls.Group) []byte {
	t.Helper()
	res, err := g.Commit(mls.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res.Commit.PublicMessage.Auth.Signature[0] ^= 1
	b, err := wire.Marshal(res.Commit)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
