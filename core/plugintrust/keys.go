// Package plugintrust decides whether a role plugin file comes from someone
// the admin trusts: Ed25519 keys (making, reading, fingerprints), signatures
// over a plugin's _SHA256SUM file, and the trusted keys kept in
// <data-dir>/plugin-keys/, which must be writable by root and the manager's
// user only.
package plugintrust

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxKeyFile bounds what is read of a key or signature file.
const maxKeyFile = 16 << 10

// Fingerprint names a public key: "SHA256:" and the unpadded base64 of the
// SHA-256 of its 32 bytes.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// GenerateKey makes a new key pair.
func GenerateKey() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate Ed25519 key: %w", err)
	}
	return pub, priv, nil
}

// MarshalPublicKey is the PEM "PUBLIC KEY" (PKIX) form, as openssl writes it.
func MarshalPublicKey(pub ed25519.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err) // an Ed25519 key always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// MarshalPrivateKey is the PEM "PRIVATE KEY" (PKCS#8) form, as openssl
// genpkey -algorithm ed25519 writes it.
func MarshalPrivateKey(priv ed25519.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// EncodePublicKey is the one-line form of a public key: the base64 of its
// 32 bytes.
func EncodePublicKey(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey reads a public key given as PEM "PUBLIC KEY" (PKIX) or as
// the base64 of its 32 bytes.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	text := strings.TrimSpace(string(data))
	if text == "" {
		return nil, errors.New("empty: give a PEM PUBLIC KEY or the base64 of the 32-byte Ed25519 key")
	}
	if strings.HasPrefix(text, "-----BEGIN") {
		block, rest := pem.Decode([]byte(text))
		if block == nil {
			return nil, errors.New("PEM that does not decode")
		}
		if len(strings.TrimSpace(string(rest))) > 0 {
			return nil, errors.New("more than one PEM block: give one public key")
		}
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("PEM %q: want a PUBLIC KEY (a private key is never trusted; give its .pub)", block.Type)
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PUBLIC KEY: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("a %T, want an Ed25519 key", k)
		}
		return pub, nil
	}
	raw, err := decodeBase64(text)
	if err != nil {
		return nil, fmt.Errorf("neither PEM nor base64: %w", err)
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("base64 of %d bytes, an Ed25519 public key has %d", len(raw), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

// ParsePrivateKey reads a PEM "PRIVATE KEY" (PKCS#8) Ed25519 key.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not PEM: want an Ed25519 PRIVATE KEY (dorismanager plugins keygen, or openssl genpkey -algorithm ed25519)")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("PEM %q: want an unencrypted PKCS#8 PRIVATE KEY", block.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("PRIVATE KEY: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, want an Ed25519 key", k)
	}
	return priv, nil
}

// ReadPrivateKeyFile reads a private key file, refusing one that others
// than its owner may read (as ssh does).
func ReadPrivateKeyFile(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("private key %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("private key %s may be read by others (mode %04o): chmod 600 %s", path, perm, path)
	}
	data, err := ReadBounded(path)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	priv, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	return priv, nil
}

// WriteKeyPair writes a new private key to path (0600, never over an
// existing file) and its public key to path+".pub" (0644).
func WriteKeyPair(path string, pub ed25519.PublicKey, priv ed25519.PrivateKey) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists: a key is never overwritten; remove it or choose another file", path)
	}
	if err != nil {
		return fmt.Errorf("write private key: %w", err)
	}
	if _, err := f.Write(MarshalPrivateKey(priv)); err != nil {
		f.Close()
		return fmt.Errorf("write private key %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write private key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write private key %s: %w", path, err)
	}
	if err := os.WriteFile(path+".pub", MarshalPublicKey(pub), 0o644); err != nil {
		return fmt.Errorf("write public key: %w", err)
	}
	return nil
}

// decodeBase64 accepts padded or unpadded standard base64.
func decodeBase64(s string) ([]byte, error) {
	if strings.HasSuffix(s, "=") {
		return base64.StdEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// ReadBounded reads a small file (a key, a SUM or a signature), refusing
// one larger than 16 KiB.
func ReadBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a key, checksum or signature file", path, maxKeyFile)
	}
	return data, nil
}
