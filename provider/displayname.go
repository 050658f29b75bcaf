package provider

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/mls/wire"
)

// Display names travel in the leaves: every leaf a device makes carries
// its display name in the private-use LeafNode extension
// ExtensionTypeDisplayName (RFC 9420 §7.2, §13, §17.3), listed in its
// capabilities. The leaf is signed by the device's key, so a name is what
// that device said, as every member sees it, and nobody can change it but
// the device itself; it is still only a claim: shown beside the user id,
// never unique, never trusted. A leaf without one (a plain RFC 9420 peer,
// or a device that set none) has no display name, and so does one whose
// extension does not decode (it is ignored, not refused).

// ExtensionTypeDisplayName is the LeafNode extension carrying the display
// name (private use; 0xF5A0–0xF5A2 are the channel's info and roles and
// the device certificate).
const ExtensionTypeDisplayName tree.ExtensionType = 0xF5A3

// DisplayNameVersion is the version of the display name encoding.
const DisplayNameVersion = 1

// MaxDisplayNameLen bounds a display name, in bytes of UTF-8.
const MaxDisplayNameLen = 64

// ErrInvalidDisplayName: a display name that is not valid UTF-8, is too
// long, or holds control or bidirectional formatting characters (which
// could make one name look like another).
var ErrInvalidDisplayName = errors.New("provider: invalid display name")

// CheckDisplayName reports whether name can be a display name ("" is: no
// name).
func CheckDisplayName(name string) error {
	if len(name) > MaxDisplayNameLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidDisplayName, MaxDisplayNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: not UTF-8", ErrInvalidDisplayName)
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == utf8.RuneError {
			return fmt.Errorf("%w: character %U", ErrInvalidDisplayName, r)
		}
	}
	return nil
}

// DisplayNameExtension encodes name as the LeafNode extension:
//
//	struct {
//	    uint8 version = 1;
//	    opaque display_name<V>;   // UTF-8, 1..64 bytes (CheckDisplayName)
//	} DisplayName;
func DisplayNameExtension(name string) (tree.Extension, error) {
	if err := CheckDisplayName(name); err != nil {
		return tree.Extension{}, err
	}
	if name == "" {
		return tree.Extension{}, fmt.Errorf("%w: empty", ErrInvalidDisplayName)
	}
	b := wire.NewBuilder(len(name) + 2)
	b.AddUint8(DisplayNameVersion)
	b.AddOpaque([]byte(name))
	data, err := b.Bytes()
	if err != nil {
		return tree.Extension{}, err
	}
	return tree.Extension{ExtensionType: ExtensionTypeDisplayName, ExtensionData: data}, nil
}

// ParseDisplayName decodes the extension data strictly.
func ParseDisplayName(data []byte) (string, error) {
	r := wire.NewReader(data)
	if v := r.Uint8(); r.Err() == nil && v != DisplayNameVersion {
		return "", fmt.Errorf("%w: version %d", ErrInvalidDisplayName, v)
	}
	name := r.Opaque()
	if err := r.Finish(); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidDisplayName, err)
	}
	if len(name) == 0 {
		return "", fmt.Errorf("%w: empty", ErrInvalidDisplayName)
	}
	if err := CheckDisplayName(string(name)); err != nil {
		return "", err
	}
	return string(name), nil
}

// LeafDisplayName is the display name a leaf carries: "" when it has none
// or one that does not decode.
func LeafDisplayName(ln *tree.LeafNode) string {
	e := ln.Extensions.Find(ExtensionTypeDisplayName)
	if e == nil {
		return ""
	}
	name, err := ParseDisplayName(e.ExtensionData)
	if err != nil {
		return ""
	}
	return name
}
