package provider_test

import (
	"bytes"
	"testing"

	"github.com/spacepanda/spacepanda/mls/tree"
	"github.com/spacepanda/spacepanda/provider"
)

// FuzzParseDisplayName: any bytes a leaf carries either decode to a name
// that passes CheckDisplayName and encodes back to exactly those bytes, or
// are refused with ErrInvalidDisplayName; never a panic.
func FuzzParseDisplayName(f *testing.F) {
	for _, s := range []string{"Alice", "Zoë 🐼", "", "\u202e"} {
		if e, err := provider.DisplayNameExtension(s); err == nil {
			f.Add(e.ExtensionData)
		}
	}
	f.Add([]byte{1, 0x40, 0})
	f.Add([]byte{2, 1, 'a'})
	f.Fuzz(func(t *testing.T, data []byte) {
		name, err := provider.ParseDisplayName(data)
		ln := &tree.LeafNode{Extensions: tree.Extensions{{ExtensionType: provider.ExtensionTypeDisplayName, ExtensionData: data}}}
		if err != nil {
			if provider.LeafDisplayName(ln) != "" {
				t.Fatal("a refused name is shown")
			}
			return
		}
		if provider.CheckDisplayName(name) != nil || provider.LeafDisplayName(ln) != name {
			t.Fatalf("accepted %q", name)
		}
		e, err := provider.DisplayNameExtension(name)
		if err != nil || !bytes.Equal(e.ExtensionData, data) {
			t.Fatalf("%q does not encode back to %x: %x %v", name, data, e.ExtensionData, err)
		}
	})
}
