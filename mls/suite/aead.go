package suite

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// aeadAlg builds a cipher.AEAD from a key of keySize bytes.
type aeadAlg struct {
	keySize int
	make    func(key []byte) (cipher.AEAD, error)
}

func (a aeadAlg) new(key []byte) (cipher.AEAD, error) {
	if len(key) != a.keySize {
		return nil, fmt.Errorf("%w: AEAD key of %d bytes", ErrLength, len(key))
	}
	return a.make(key)
}

func aesGCM(keySize int) aeadAlg {
	return aeadAlg{keySize: keySize, make: func(key []byte) (cipher.AEAD, error) {
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	}}
}

func chacha() aeadAlg {
	return aeadAlg{keySize: chacha20poly1305.KeySize, make: chacha20poly1305.New}
}
