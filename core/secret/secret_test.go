package secret

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadOrCreateKeepsKeyAndMode(t *testing.T) {
	dir := t.TempDir()
	b1, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || st.Size() != 32 {
		t.Fatalf("key file mode %v size %d", st.Mode().Perm(), st.Size())
	}
	sealed, err := b1.Seal([]byte("ssh key"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("ssh key")) {
		t.Fatal("sealed data contains the plaintext")
	}
	b2, err := LoadOrCreate(dir) // second start reads the same key
	if err != nil {
		t.Fatal(err)
	}
	got, err := b2.Open(sealed)
	if err != nil || string(got) != "ssh key" {
		t.Fatalf("Open: %q %v", got, err)
	}
}

func TestOpenRefusesTamperingAndOtherKeys(t *testing.T) {
	b, _ := LoadOrCreate(t.TempDir())
	other, _ := LoadOrCreate(t.TempDir())
	sealed, _ := b.Seal([]byte("x"))
	bad := append([]byte{}, sealed...)
	bad[len(bad)-1] ^= 1
	for name, in := range map[string][]byte{"tampered": bad, "short": sealed[:5]} {
		if _, err := b.Open(in); err == nil {
			t.Errorf("%s: want error", name)
		}
	}
	if _, err := other.Open(sealed); err == nil {
		t.Error("other key opened the secret")
	}
}

func TestBadKeyFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, KeyFile), []byte("short"), 0o600)
	if _, err := LoadOrCreate(dir); err == nil {
		t.Fatal("want error for a short key file")
	}
}

// The key may live outside the data dir; its folder is created private.
func TestLoadOrCreateFileOutsideDataDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc", "dorismanager", "secret.key")
	b1, err := LoadOrCreateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != want {
			t.Fatalf("%s: %v %v, want mode %v", p, st.Mode().Perm(), err, want)
		}
	}
	sealed, _ := b1.Seal([]byte("x"))
	b2, err := LoadOrCreateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b2.Open(sealed); err != nil || string(got) != "x" {
		t.Fatalf("second load opens %q %v", got, err)
	}
}
