package plugintrust

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func TestParseSignature(t *testing.T) {
	pub, priv := newKey(t)
	sum := []byte(strings.Repeat("ab", 32) + "  doris-role-fe\n")
	good := Sign(priv, sum)
	k := base64.StdEncoding.EncodeToString(pub)
	s := base64.StdEncoding.EncodeToString(ed25519.Sign(priv, sum))
	raw := func(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }
	for _, tc := range []struct {
		name, in, err string
	}{
		{"as written", string(good), ""},
		{"CRLF and spaces", "  ed25519 " + k + "\t" + s + " \r\n", ""},
		{"unpadded base64", "ed25519 " + raw(pub) + " " + raw(ed25519.Sign(priv, sum)), ""},
		{"empty", "", "empty"},
		{"blank", " \n\n", "empty"},
		{"two lines", string(good) + string(good), "more than one line"},
		{"two fields", "ed25519 " + k, "2 fields, want 3"},
		{"four fields", "ed25519 " + k + " " + s + " x", "4 fields, want 3"},
		{"other algorithm", "rsa " + k + " " + s, `algorithm "rsa"`},
		{"key not base64", "ed25519 !!!! " + s, "public key is not base64"},
		{"short key", "ed25519 " + raw(pub[:31]) + " " + s, "public key has 31 bytes, want 32"},
		{"signature not base64", "ed25519 " + k + " ***", "signature is not base64"},
		{"short signature", "ed25519 " + k + " " + raw([]byte("short")), "signature has 5 bytes, want 64"},
		{"raw bytes", string(ed25519.Sign(priv, sum)), ""}, // checked below: never accepted
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSignature([]byte(tc.in))
			if tc.name == "raw bytes" {
				if err == nil {
					t.Fatalf("raw signature bytes accepted: %+v", got)
				}
				return
			}
			if tc.err == "" {
				if err != nil {
					t.Fatalf("ParseSignature: %v", err)
				}
				if !pub.Equal(got.Key) || !ed25519.Verify(got.Key, sum, got.Sig) {
					t.Errorf("parsed %+v does not verify", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestParsePublicKey(t *testing.T) {
	pub, priv := newKey(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER})
	for _, tc := range []struct {
		name, in, err string
	}{
		{"PEM", string(MarshalPublicKey(pub)), ""},
		{"base64", EncodePublicKey(pub) + "\n", ""},
		{"unpadded base64", base64.RawStdEncoding.EncodeToString(pub), ""},
		{"empty", "  ", "empty"},
		{"private key", string(MarshalPrivateKey(priv)), "a private key is never trusted"},
		{"ECDSA", string(ecPEM), "want an Ed25519 key"},
		{"two blocks", string(MarshalPublicKey(pub)) + string(MarshalPublicKey(pub)), "more than one PEM block"},
		{"short", base64.StdEncoding.EncodeToString(pub[:16]), "base64 of 16 bytes"},
		{"garbage", "not a key", "neither PEM nor base64"},
		{"broken PEM", "-----BEGIN PUBLIC KEY-----\nxx", "does not decode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePublicKey([]byte(tc.in))
			if tc.err == "" {
				if err != nil || !pub.Equal(got) {
					t.Fatalf("ParsePublicKey = %v, %v", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestKeyPairFiles(t *testing.T) {
	pub, priv := newKey(t)
	path := filepath.Join(t.TempDir(), "key")
	if err := WriteKeyPair(path, pub, priv); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v, want mode 0600", fi.Mode(), err)
	}
	if err := WriteKeyPair(path, pub, priv); err == nil || !strings.Contains(err.Error(), "never overwritten") {
		t.Errorf("second WriteKeyPair: %v, want a refusal", err)
	}
	got, err := ReadPrivateKeyFile(path)
	if err != nil || !got.Equal(priv) {
		t.Fatalf("ReadPrivateKeyFile: %v", err)
	}
	b, _ := os.ReadFile(path + ".pub")
	if p, err := ParsePublicKey(b); err != nil || !p.Equal(pub) {
		t.Errorf("public key file: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, err := ReadPrivateKeyFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("readable private key: %v, want a refusal saying chmod 600", err)
	}
	os.Chmod(path+".pub", 0o600)
	if _, err := ReadPrivateKeyFile(path + ".pub"); err == nil || !strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("public key as private: %v", err)
	}
}

// dataDir is a private data dir under a fresh temp folder.
func dataDir(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestVerify(t *testing.T) {
	trusted, tpriv := newKey(t)
	_, other := newKey(t)
	data := dataDir(t)
	sum := []byte(strings.Repeat("0", 64) + "  doris-role-fe_v1.0.0_x2.0_linux_amd64\n")

	if _, err := Load(data).Verify(sum, Sign(tpriv, sum)); !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "no key is trusted yet") {
		t.Errorf("nothing trusted: %v", err)
	}
	if _, _, err := Trust(data, trusted); err != nil {
		t.Fatal(err)
	}
	keys := Load(data)
	k, err := keys.Verify(sum, Sign(tpriv, sum))
	if err != nil || k.Fingerprint != Fingerprint(trusted) {
		t.Fatalf("trusted signature: %+v %v", k, err)
	}
	for _, tc := range []struct {
		name string
		sig  []byte
		is   error
		want string
	}{
		{"no signature", nil, ErrUnsigned, "unsigned"},
		{"untrusted key", Sign(other, sum), ErrUntrusted, "signed by an untrusted key " + Fingerprint(other.Public().(ed25519.PublicKey))},
		{"another file's signature", Sign(tpriv, append([]byte("x"), sum...)), ErrBadSignature, "bad signature: it does not match the checksum file for key " + Fingerprint(trusted)},
		{"garbled", []byte("ed25519 x y"), ErrBadSignature, "bad signature: public key"},
		{"empty file", []byte{}, ErrBadSignature, "bad signature: signature file is empty"},
	} {
		_, err := keys.Verify(sum, tc.sig)
		if !errors.Is(err, tc.is) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	var nilKeys *Keys
	if _, err := nilKeys.Verify(sum, Sign(tpriv, sum)); !errors.Is(err, ErrUntrusted) {
		t.Errorf("nil keys: %v", err)
	}
}

func TestTrustUntrust(t *testing.T) {
	a, _ := newKey(t)
	b, _ := newKey(t)
	data := dataDir(t)
	ka, isNew, err := Trust(data, a)
	if err != nil || !isNew || ka.Fingerprint != Fingerprint(a) {
		t.Fatalf("Trust: %+v %v %v", ka, isNew, err)
	}
	if fi, err := os.Stat(ka.File); err != nil || fi.Mode().Perm() != 0o644 || filepath.Dir(ka.File) != KeysDir(data) {
		t.Errorf("key file %s: %v %v", ka.File, fi.Mode(), err)
	}
	if _, isNew, err := Trust(data, a); err != nil || isNew {
		t.Errorf("Trust again: new=%v %v, want an existing key", isNew, err)
	}
	if _, _, err := Trust(data, b); err != nil {
		t.Fatal(err)
	}
	if got := Load(data).List(); len(got) != 2 {
		t.Fatalf("keys %+v, want 2", got)
	}
	if _, err := Untrust(data, Fingerprint(a)); err != nil {
		t.Errorf("untrust by fingerprint: %v", err)
	}
	if _, err := Untrust(data, string(MarshalPublicKey(b))); err != nil {
		t.Errorf("untrust by key: %v", err)
	}
	if _, err := Untrust(data, EncodePublicKey(a)); !errors.Is(err, ErrNotTrusted) {
		t.Errorf("untrust of an untrusted key: %v, want ErrNotTrusted", err)
	}
	if _, err := Untrust(data, "nonsense"); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Errorf("untrust nonsense: %v", err)
	}
	if got := Load(data).List(); len(got) != 0 {
		t.Errorf("keys after untrust %+v", got)
	}
}

// Nobody but root and the manager's user may plant a key: a folder or key
// file others can change, or another user owns, is not trusted.
func TestLoadRefusesWhatOthersCanChange(t *testing.T) {
	pub, _ := newKey(t)
	setup := func(t *testing.T) (string, Key) {
		data := dataDir(t)
		k, _, err := Trust(data, pub)
		if err != nil {
			t.Fatal(err)
		}
		return data, k
	}
	asRoot := os.Geteuid() == 0
	for _, tc := range []struct {
		name     string
		root     bool // needs root (chown)
		change   func(t *testing.T, data string, k Key)
		err      string // Keys.Err
		problem  string // Keys.Problems
		accepted bool
	}{
		{name: "as made", accepted: true},
		{name: "keys folder writable by others", change: func(t *testing.T, data string, k Key) { os.Chmod(KeysDir(data), 0o777) },
			err: "may be changed by group or others (mode 0777)"},
		{name: "keys folder writable by group", change: func(t *testing.T, data string, k Key) { os.Chmod(KeysDir(data), 0o775) },
			err: "mode 0775"},
		{name: "sticky keys folder", change: func(t *testing.T, data string, k Key) { os.Chmod(KeysDir(data), 0o777|os.ModeSticky) },
			err: "may be changed by group or others"},
		{name: "data dir writable by others", change: func(t *testing.T, data string, k Key) { os.Chmod(data, 0o777) },
			err: "may be changed by group or others"},
		{name: "folder above writable by others", change: func(t *testing.T, data string, k Key) { os.Chmod(filepath.Dir(data), 0o777) },
			err: "may be changed by group or others (mode 0777)"},
		{name: "sticky folder above", change: func(t *testing.T, data string, k Key) { os.Chmod(filepath.Dir(data), 0o777|os.ModeSticky) },
			accepted: true},
		{name: "key file writable by others", change: func(t *testing.T, data string, k Key) { os.Chmod(k.File, 0o666) },
			problem: "chmod go-w"},
		{name: "key file a link", change: func(t *testing.T, data string, k Key) {
			target := filepath.Join(t.TempDir(), "k.pub")
			os.Rename(k.File, target)
			os.Symlink(target, k.File)
		}, problem: "not a regular file"},
		{name: "key file of another user", root: true, change: func(t *testing.T, data string, k Key) { os.Chown(k.File, 65534, 65534) },
			problem: "owned by uid 65534"},
		{name: "keys folder of another user", root: true, change: func(t *testing.T, data string, k Key) { os.Chown(KeysDir(data), 65534, 65534) },
			err: "owned by uid 65534"},
		{name: "not a key", change: func(t *testing.T, data string, k Key) { os.WriteFile(k.File, []byte("hello"), 0o644) },
			problem: "neither PEM nor base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && !asRoot {
				t.Skip("needs root to give files to another user")
			}
			data, k := setup(t)
			if tc.change != nil {
				tc.change(t, data, k)
			}
			keys := Load(data)
			_, trusted := keys.Trusted(pub)
			if trusted != tc.accepted {
				t.Errorf("trusted = %v, want %v (err %v, problems %q)", trusted, tc.accepted, keys.Err(), keys.Problems())
			}
			switch {
			case tc.err != "":
				if keys.Err() == nil || !strings.Contains(keys.Err().Error(), tc.err) {
					t.Errorf("Err = %v, want %q", keys.Err(), tc.err)
				}
			case tc.problem != "":
				if p := strings.Join(keys.Problems(), "\n"); !strings.Contains(p, tc.problem) {
					t.Errorf("problems %q, want %q", p, tc.problem)
				}
			default:
				if keys.Err() != nil || len(keys.Problems()) > 0 {
					t.Errorf("Err %v, problems %q", keys.Err(), keys.Problems())
				}
			}
		})
	}
}

// Root trusting a key for a manager that runs as another user gives the
// files to that user, and the manager (as that user) accepts them.
func TestTrustAsRootForAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	pub, _ := newKey(t)
	data := dataDir(t)
	if err := os.Chown(data, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	k, _, err := Trust(data, pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{KeysDir(data), k.File} {
		fi, _ := os.Stat(p)
		if uid, _ := fileOwner(fi); uid != 65534 {
			t.Errorf("%s owned by %d, want the data dir's owner 65534", p, uid)
		}
	}
	if _, ok := Load(data).Trusted(pub); !ok {
		t.Errorf("key not trusted: %v", Load(data).Err())
	}
}
