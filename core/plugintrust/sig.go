package plugintrust

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// SigSuffix ends the name of a signature file, which sits beside the
// checksum file it signs: <plugin>_SHA256SUM.sig.
const SigSuffix = ".sig"

// sigAlgorithm is the first field of a signature file.
const sigAlgorithm = "ed25519"

// Why a plugin file is not trusted; the errors Verify returns wrap one.
var (
	// ErrUnsigned: there is no signature file.
	ErrUnsigned = errors.New("unsigned")
	// ErrUntrusted: a valid signature by a key the admin has not trusted.
	ErrUntrusted = errors.New("signed by an untrusted key")
	// ErrBadSignature: a signature file that does not parse or does not
	// match the checksum file.
	ErrBadSignature = errors.New("bad signature")
)

// Signature is a parsed signature file: the signer's public key and the
// Ed25519 signature over the checksum file's bytes.
type Signature struct {
	Key ed25519.PublicKey
	Sig []byte
}

// Sign signs the bytes of a checksum file and returns the signature file's
// content, one line:
//
//	ed25519 <base64 of the 32-byte public key> <base64 of the 64-byte signature>
//
// The public key is there so that a refusal can name the key; it is
// trusted only when the same key is in the trusted keys.
func Sign(priv ed25519.PrivateKey, sum []byte) []byte {
	sig := ed25519.Sign(priv, sum)
	pub := priv.Public().(ed25519.PublicKey)
	return []byte(sigAlgorithm + " " + base64.StdEncoding.EncodeToString(pub) + " " + base64.StdEncoding.EncodeToString(sig) + "\n")
}

// ParseSignature reads a signature file (see Sign). Surrounding white
// space and a CRLF line end are accepted; anything else is an error saying
// what is wrong.
func ParseSignature(data []byte) (Signature, error) {
	text := strings.TrimSpace(string(data))
	if text == "" {
		return Signature{}, errors.New("signature file is empty")
	}
	if strings.ContainsAny(text, "\r\n") {
		return Signature{}, errors.New("signature file has more than one line")
	}
	f := strings.Fields(text)
	if len(f) != 3 {
		return Signature{}, fmt.Errorf("signature file has %d fields, want 3: %s <public key> <signature>", len(f), sigAlgorithm)
	}
	if f[0] != sigAlgorithm {
		return Signature{}, fmt.Errorf("signature algorithm %q, only %s is accepted", trimFor(f[0]), sigAlgorithm)
	}
	key, err := decodeBase64(f[1])
	if err != nil {
		return Signature{}, fmt.Errorf("public key is not base64: %v", err)
	}
	if len(key) != ed25519.PublicKeySize {
		return Signature{}, fmt.Errorf("public key has %d bytes, want %d", len(key), ed25519.PublicKeySize)
	}
	sig, err := decodeBase64(f[2])
	if err != nil {
		return Signature{}, fmt.Errorf("signature is not base64: %v", err)
	}
	if len(sig) != ed25519.SignatureSize {
		return Signature{}, fmt.Errorf("signature has %d bytes, want %d", len(sig), ed25519.SignatureSize)
	}
	return Signature{Key: ed25519.PublicKey(key), Sig: sig}, nil
}

// check verifies a signature file's content over sum, whoever signed it;
// it returns the signer's key.
func check(sum, sigFile []byte) (ed25519.PublicKey, error) {
	if sigFile == nil {
		return nil, ErrUnsigned
	}
	s, err := ParseSignature(sigFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if !ed25519.Verify(s.Key, sum, s.Sig) {
		return nil, fmt.Errorf("%w: it does not match the checksum file for key %s (changed after signing?)", ErrBadSignature, Fingerprint(s.Key))
	}
	return s.Key, nil
}

func trimFor(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}
