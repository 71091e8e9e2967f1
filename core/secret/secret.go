// Package secret seals small secrets (SSH keys and passphrases) at rest with
// AES-256-GCM under a key kept in <data-dir>/secret.key or a file of the
// operator's choosing.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyFile is the key's file name inside the data dir.
const KeyFile = "secret.key"

const keySize = 32

// Box seals and opens secrets with one key. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
}

// LoadOrCreate reads <dataDir>/secret.key, creating it (32 random bytes,
// mode 0600) on first start.
func LoadOrCreate(dataDir string) (*Box, error) {
	return LoadOrCreateFile(filepath.Join(dataDir, KeyFile))
}

// LoadOrCreateFile reads the key at path, creating it (32 random bytes,
// mode 0600, parent folders 0700) if it does not exist. The key may live
// outside the data dir, so that a copy of the data dir alone opens nothing.
func LoadOrCreateFile(path string) (*Box, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create folder of secret key %s: %w", path, err)
		}
		key = make([]byte, keySize)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate secret key: %w", err)
		}
		// O_EXCL: never overwrite a key another process just wrote.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return LoadOrCreateFile(path)
		}
		if err != nil {
			return nil, fmt.Errorf("create secret key %s: %w", path, err)
		}
		if _, err := f.Write(key); err != nil {
			f.Close()
			return nil, fmt.Errorf("write secret key %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("write secret key %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("write secret key %s: %w", path, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("read secret key %s: %w", path, err)
	}
	if len(key) != keySize {
		return nil, fmt.Errorf("secret key %s has %d bytes, want %d: restore it from backup (sealed data cannot be opened without it)", path, len(key), keySize)
	}
	return New(key)
}

// New builds a Box from a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != keySize {
		return nil, fmt.Errorf("secret key must be %d bytes, got %d", keySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext; the result is nonce || ciphertext.
func (b *Box) Seal(plaintext []byte) ([]byte, error) {
	if b == nil {
		return nil, errors.New("seal: no secret key is configured")
	}
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return b.aead.Seal(nonce, nonce, plaintext, nil), nil
}

// Open decrypts what Seal produced.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	if b == nil {
		return nil, errors.New("open sealed secret: no secret key is configured")
	}
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, errors.New("open sealed secret: data too short")
	}
	pt, err := b.aead.Open(nil, sealed[:n], sealed[n:], nil)
	if err != nil {
		return nil, errors.New("open sealed secret: authentication failed (wrong key or corrupted data)")
	}
	return pt, nil
}
