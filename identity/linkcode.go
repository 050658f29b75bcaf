package identity

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// crockford is Crockford's base32 alphabet: digits and capitals without I,
// L, O and U, so that a code read aloud or typed is hard to get wrong.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// Link code layout: 12 characters of 5 bits. The first 4 (20 bits) are the
// public mailbox the relay routes by; the last 8 (40 bits) are the secret
// the PAKE authenticates. CPace gives an attacker in the middle one guess
// per offer (2^-40) and nothing to test guesses against offline.
const (
	linkCodeChars    = 12
	linkMailboxChars = 4
	linkSecretBytes  = 5
)

// LinkCode is the short code one device shows and the other types. It is a
// secret until the link completes: String redacts it; Text is for showing
// it to the user.
type LinkCode struct {
	v uint64 // 60 bits: mailbox (high 20) || secret (low 40)
}

// newLinkCode draws a random code.
func newLinkCode(rnd io.Reader) (LinkCode, error) {
	var b [8]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return LinkCode{}, fmt.Errorf("identity: link code: %w", err)
	}
	return LinkCode{v: binary.BigEndian.Uint64(b[:]) >> 4}, nil
}

// ParseLinkCode reads a code as a person typed it: case-insensitive, with
// or without dashes and spaces, I and L read as 1, O as 0.
func ParseLinkCode(s string) (LinkCode, error) {
	var v uint64
	n := 0
	for _, r := range strings.ToUpper(s) {
		switch r {
		case '-', ' ':
			continue
		case 'I', 'L':
			r = '1'
		case 'O':
			r = '0'
		}
		i := strings.IndexRune(crockford, r)
		if i < 0 || n == linkCodeChars {
			return LinkCode{}, fmt.Errorf("%w: want %d characters of 0-9 and A-Z without U", ErrLinkCode, linkCodeChars)
		}
		v = v<<5 | uint64(i)
		n++
	}
	if n != linkCodeChars {
		return LinkCode{}, fmt.Errorf("%w: %d characters, want %d", ErrLinkCode, n, linkCodeChars)
	}
	return LinkCode{v: v}, nil
}

// Text is the code to show the user: "XXXX-XXXX-XXXX".
func (c LinkCode) Text() string {
	var sb strings.Builder
	for i := range linkCodeChars {
		if i > 0 && i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(crockford[c.v>>(5*(linkCodeChars-1-i))&31])
	}
	return sb.String()
}

// Mailbox is the code's public part (its first group), where the relay
// carries the exchange.
func (c LinkCode) Mailbox() string { return c.Text()[:linkMailboxChars] }

// String redacts the secret part: "XXXX-****-****".
func (c LinkCode) String() string { return c.Mailbox() + "-****-****" }

// Format implements fmt.Formatter: every verb prints String.
func (c LinkCode) Format(f fmt.State, verb rune) { io.WriteString(f, c.String()) }

// secret is the 40-bit secret part, the CPace password (PRS).
func (c LinkCode) secret() []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], c.v)
	return b[8-linkSecretBytes:]
}

func randReader(rnd io.Reader) io.Reader {
	if rnd == nil {
		return rand.Reader
	}
	return rnd
}
