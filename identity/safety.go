package identity

import (
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"strings"
)

// fingerprintLabel domain-separates fingerprints.
const fingerprintLabel = "SpacePanda v1 fingerprint"

// fingerprintIterations makes each guess of an attacker who searches for an
// identity key with a chosen fingerprint cost this many SHA-512 calls, as
// Signal's safety numbers do (5200 there too): 30 decimal digits carry
// about 99 bits, and the iterations add about 12.
const fingerprintIterations = 5200

// FingerprintDigits is the number of digits of a Fingerprint.
const FingerprintDigits = 30

// Fingerprint is the user's identity key as 30 digits in six groups of
// five, for display ("12345 67890 ..."). Two people compare SafetyNumber,
// which contains both of theirs.
func Fingerprint(k IdentityKey) string { return groupDigits(fingerprintDigits(k)) }

// fingerprintDigits is the 30-digit fingerprint without spaces:
//
//	h = SHA-512(lv("SpacePanda v1 fingerprint") || identity_key)
//	5200 times: h = SHA-512(h || identity_key)
//
// then each of the first six 5-byte chunks of h, read big-endian, mod
// 100000, as five digits.
func fingerprintDigits(k IdentityKey) string {
	h := sha512.New()
	h.Write([]byte{byte(len(fingerprintLabel))})
	h.Write([]byte(fingerprintLabel))
	h.Write(k[:])
	sum := h.Sum(nil)
	for range fingerprintIterations {
		h.Reset()
		h.Write(sum)
		h.Write(k[:])
		sum = h.Sum(sum[:0])
	}
	var sb strings.Builder
	for i := range FingerprintDigits / 5 {
		var chunk [8]byte
		copy(chunk[3:], sum[5*i:5*i+5])
		fmt.Fprintf(&sb, "%05d", binary.BigEndian.Uint64(chunk[:])%100000)
	}
	return sb.String()
}

// SafetyNumber is the number two users compare to check each other's
// identity keys: both fingerprints, the smaller first, so that it is the
// same on both sides — 60 digits in twelve groups of five. It changes when
// either identity key changes, never when a device is added.
func SafetyNumber(a, b IdentityKey) string {
	fa, fb := fingerprintDigits(a), fingerprintDigits(b)
	if fb < fa {
		fa, fb = fb, fa
	}
	return groupDigits(fa + fb)
}

func groupDigits(d string) string {
	var sb strings.Builder
	for i := 0; i < len(d); i += 5 {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(d[i:min(i+5, len(d))])
	}
	return sb.String()
}
