package mls

import (
	"github.com/spacepanda/spacepanda/mls/schedule"
	"github.com/spacepanda/spacepanda/mls/suite"
	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// GroupSecrets is the plaintext HPKE-encrypted to each new member of a
// Welcome (RFC 9420 §12.4.3.1).
//
//	struct { opaque path_secret<V>; } PathSecret;
//
//	struct {
//	  opaque joiner_secret<V>;
//	  optional<PathSecret> path_secret;
//	  PreSharedKeyID psks<V>;
//	} GroupSecrets;
//
// PathSecret is nil when absent; a present path secret decodes to a non-nil
// slice (possibly empty), so presence survives a round trip.
type GroupSecrets struct {
	JoinerSecret []byte
	PathSecret   []byte
	PSKs         []schedule.PreSharedKeyID
}

// MarshalMLS implements wire.Marshaler.
func (g *GroupSecrets) MarshalMLS(b *wire.Builder) {
	b.AddOpaque(g.JoinerSecret)
	b.AddOptional(g.PathSecret != nil, func(b *wire.Builder) { b.AddOpaque(g.PathSecret) })
	b.AddVector(func(b *wire.Builder) {
		for i := range g.PSKs {
			g.PSKs[i].MarshalMLS(b)
		}
	})
}

// UnmarshalMLS implements wire.Unmarshaler.
func (g *GroupSecrets) UnmarshalMLS(r *wire.Reader) {
	*g = GroupSecrets{PSKs: []schedule.PreSharedKeyID{}}
	g.JoinerSecret = r.OpaqueCopy()
	r.Optional(func(r *wire.Reader) { g.PathSecret = r.OpaqueCopy() })
	r.VectorEach(func(r *wire.Reader) {
		var p schedule.PreSharedKeyID
		p.UnmarshalMLS(r)
		g.PSKs = append(g.PSKs, p)
	})
}

// EncryptedGroupSecrets is GroupSecrets encrypted to one new member
// (RFC 9420 §12.4.3.1).
//
//	struct {
//	  KeyPackageRef new_member;
//	  HPKECiphertext encrypted_group_secrets;
//	} EncryptedGroupSecrets;
type EncryptedGroupSecrets struct {
	NewMember             KeyPackageRef
	EncryptedGroupSecrets tree.HPKECiphertext
}

// MarshalMLS implements wire.Marshaler.
func (e *EncryptedGroupSecrets) MarshalMLS(b *wire.Builder) {
	b.AddOpaque(e.NewMember)
	e.EncryptedGroupSecrets.MarshalMLS(b)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (e *EncryptedGroupSecrets) UnmarshalMLS(r *wire.Reader) {
	e.NewMember = r.OpaqueCopy()
	e.EncryptedGroupSecrets.UnmarshalMLS(r)
}

// Welcome lets new members join a group (RFC 9420 §12.4.3.1).
//
//	struct {
//	  CipherSuite cipher_suite;
//	  EncryptedGroupSecrets secrets<V>;
//	  opaque encrypted_group_info<V>;
//	} Welcome;
type Welcome struct {
	CipherSuite        suite.ID
	Secrets            []EncryptedGroupSecrets
	EncryptedGroupInfo []byte
}

// MarshalMLS implements wire.Marshaler.
func (w *Welcome) MarshalMLS(b *wire.Builder) {
	b.AddUint16(uint16(w.CipherSuite))
	b.AddVector(func(b *wire.Builder) {
		for i := range w.Secrets {
			w.Secrets[i].MarshalMLS(b)
		}
	})
	b.AddOpaque(w.EncryptedGroupInfo)
}

// UnmarshalMLS implements wire.Unmarshaler.
func (w *Welcome) UnmarshalMLS(r *wire.Reader) {
	*w = Welcome{Secrets: []EncryptedGroupSecrets{}}
	w.CipherSuite = suite.ID(r.Uint16())
	r.VectorEach(func(r *wire.Reader) {
		var e EncryptedGroupSecrets
		e.UnmarshalMLS(r)
		w.Secrets = append(w.Secrets, e)
	})
	w.EncryptedGroupInfo = r.OpaqueCopy()
}
