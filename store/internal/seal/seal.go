// Package seal is the at-rest encryption of store backends: AES-256-GCM
// under a 32-byte data key, a fresh random nonce per write, and additional
// data that binds each sealed value to its table, column and primary key so
// that a value moved to another row fails to open.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/crypto/argon2"
)

// KeySize is the size of a data key.
const KeySize = 32

// version is the first byte of every sealed value, so the format can change.
const version = 1

// Overhead is how much longer a sealed value is than its plaintext.
const Overhead = 1 + 12 + 16

var (
	// ErrOpen: authentication failed (wrong key, tampering, wrong row).
	ErrOpen = errors.New("seal: message authentication failed")
	// ErrKeyFileMode: the key file is group- or world-accessible.
	ErrKeyFileMode = errors.New("seal: key file is accessible by group or others")
	// ErrKeyFileSize: the key file does not hold exactly KeySize bytes.
	ErrKeyFileSize = errors.New("seal: key file has the wrong size")
)

// Box seals and opens values under one data key. It is safe for
// concurrent use.
type Box struct {
	aead cipher.AEAD
	tag  []byte // HMAC key of Tag, derived from the data key
}

// New returns a Box for a KeySize-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("spacepanda/store/v1 tag key"))
	return &Box{aead: aead, tag: m.Sum(nil)}, nil
}

// Tag is a deterministic keyed hash (HMAC-SHA256) of value bound to ad: it
// lets the database enforce uniqueness of a value it never sees (equal
// values have equal tags; nothing else is learnt without the key).
func (b *Box) Tag(ad AD, value []byte) []byte {
	m := hmac.New(sha256.New, b.tag)
	m.Write(appendPart(nil, ad))
	m.Write(value)
	return m.Sum(nil)
}

// Seal encrypts plaintext with a fresh random nonce, bound to ad.
// Random 96-bit nonces keep the collision probability below 2^-32 for up to
// 2^32 writes under one key (NIST SP 800-38D §8.3).
func (b *Box) Seal(ad AD, plaintext []byte) []byte {
	out := make([]byte, 1+b.aead.NonceSize(), 1+b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	out[0] = version
	rand.Read(out[1:]) // never fails (crypto/rand since Go 1.24)
	return b.aead.Seal(out, out[1:], plaintext, ad)
}

// Open decrypts a value made by Seal with the same ad, or returns ErrOpen.
func (b *Box) Open(ad AD, sealed []byte) ([]byte, error) {
	ns := b.aead.NonceSize()
	if len(sealed) < 1+ns+b.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	pt, err := b.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

// AD is the additional data of a sealed value.
type AD []byte

// Bind builds the additional data for a value stored in table.column of the
// row whose primary key is key: each part length-prefixed so no two
// different rows share an AD.
func Bind(table, column string, key ...[]byte) AD {
	ad := []byte("spacepanda/store/v1")
	ad = appendPart(ad, []byte(table))
	ad = appendPart(ad, []byte(column))
	for _, k := range key {
		ad = appendPart(ad, k)
	}
	return ad
}

func appendPart(b, part []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(part)))
	return append(b, part...)
}

// Uint64 encodes a number as a primary-key part for Bind.
func Uint64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// Argon2Params are the Argon2id parameters of a passphrase-derived key.
type Argon2Params struct {
	Time      uint32 // passes
	MemoryKiB uint32
	Threads   uint8
}

// DeriveKey derives a data key from a passphrase with Argon2id (RFC 9106).
func DeriveKey(passphrase, salt []byte, p Argon2Params) []byte {
	return argon2.IDKey(passphrase, salt, p.Time, p.MemoryKiB, p.Threads, KeySize)
}

// RandomBytes returns n random bytes.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// ReadKeyFile reads a KeySize-byte key file, refusing one whose mode lets
// group or others read or write it (not checked on Windows, which has no
// such mode bits).
func ReadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("seal: key file %s is not a regular file", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v, want 0600", ErrKeyFileMode, path, fi.Mode().Perm())
	}
	key, err := io.ReadAll(io.LimitReader(f, KeySize+1))
	if err != nil {
		return nil, err
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w: %s", ErrKeyFileSize, path)
	}
	return key, nil
}

// CreateKeyFile writes a new random key to path with mode 0600; it fails
// with fs.ErrExist if the file exists.
func CreateKeyFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	key := RandomBytes(KeySize)
	if _, err := f.Write(key); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, err
	}
	// Make the new directory entry durable too: a database sealed under a
	// key file that vanishes in a crash would be unreadable.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return key, nil
}
