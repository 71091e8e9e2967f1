package plugintrust

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DirName is the trusted keys' folder inside the manager's data dir.
const DirName = "plugin-keys"

// keyExt ends the name of a trusted key file; other files are ignored.
const keyExt = ".pub"

// ErrNotTrusted: untrust of a key that is not trusted.
var ErrNotTrusted = errors.New("key is not trusted")

// Key is a trusted public key.
type Key struct {
	Fingerprint string            `json:"fingerprint"`
	Public      ed25519.PublicKey `json:"-"`
	File        string            `json:"file"`
}

// Keys are the trusted keys read from a data dir at one moment. The zero
// value (or nil) trusts nothing.
type Keys struct {
	dir      string
	keys     []Key
	err      error
	problems []string
}

// KeysDir is <dataDir>/plugin-keys.
func KeysDir(dataDir string) string { return filepath.Join(dataDir, DirName) }

// Load reads the trusted keys of a data dir. A missing folder trusts
// nothing. The folder, the data dir and every folder above must be owned by
// root or the manager's user and not writable by group or others (folders
// with the sticky bit, like /tmp, excepted above the data dir); each key
// file must be a regular file with the same owners, not writable by group
// or others. If the folders fail this nothing is trusted (Err says why);
// a key file that fails it is skipped (Problems says why).
func Load(dataDir string) *Keys {
	dir := KeysDir(dataDir)
	k := &Keys{dir: dir}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return k
	}
	if err != nil {
		k.err = fmt.Errorf("read trusted keys: %w", err)
		return k
	}
	owners, err := allowedOwners(dataDir)
	if err != nil {
		k.err = err
		return k
	}
	if err := checkFolders(dir, dataDir, owners); err != nil {
		k.err = err
		return k
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, keyExt) || strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		pub, err := readKeyFile(path, owners)
		if err != nil {
			k.problems = append(k.problems, err.Error())
			continue
		}
		k.keys = append(k.keys, Key{Fingerprint: Fingerprint(pub), Public: pub, File: path})
	}
	sort.Slice(k.keys, func(i, j int) bool { return k.keys[i].File < k.keys[j].File })
	return k
}

// Dir is the folder the keys were read from.
func (k *Keys) Dir() string {
	if k == nil {
		return ""
	}
	return k.dir
}

// List returns the trusted keys, by file name.
func (k *Keys) List() []Key {
	if k == nil {
		return nil
	}
	return append([]Key(nil), k.keys...)
}

// Err says why the folder could not be used (nothing is trusted then).
func (k *Keys) Err() error {
	if k == nil {
		return nil
	}
	return k.err
}

// Problems lists the key files that were skipped, and why.
func (k *Keys) Problems() []string {
	if k == nil {
		return nil
	}
	return append([]string(nil), k.problems...)
}

// Trusted returns the trusted key with this public key.
func (k *Keys) Trusted(pub ed25519.PublicKey) (Key, bool) {
	if k == nil {
		return Key{}, false
	}
	for _, t := range k.keys {
		if bytes.Equal(t.Public, pub) {
			return t, true
		}
	}
	return Key{}, false
}

// Verify checks the signature file's content (nil when there is none) over
// the checksum file's bytes and returns the trusted key that made it. The
// error wraps ErrUnsigned, ErrBadSignature or ErrUntrusted and says what
// to do.
func (k *Keys) Verify(sum, sigFile []byte) (Key, error) {
	pub, err := check(sum, sigFile)
	if err != nil {
		return Key{}, err
	}
	if t, ok := k.Trusted(pub); ok {
		return t, nil
	}
	fp := Fingerprint(pub)
	switch {
	case k.Err() != nil:
		return Key{}, fmt.Errorf("%w %s (no key is trusted: %v)", ErrUntrusted, fp, k.Err())
	case len(k.List()) == 0:
		return Key{}, fmt.Errorf("%w %s (no key is trusted yet; if it is yours: dorismanager plugins trust PUBLIC-KEY)", ErrUntrusted, fp)
	}
	return Key{}, fmt.Errorf("%w %s (if it is yours: dorismanager plugins trust PUBLIC-KEY)", ErrUntrusted, fp)
}

// Trust adds a public key to the trusted keys of a data dir, creating the
// folder. It answers the key and whether it was new. The folders must pass
// the checks of Load.
func Trust(dataDir string, pub ed25519.PublicKey) (Key, bool, error) {
	if len(pub) != ed25519.PublicKeySize {
		return Key{}, false, fmt.Errorf("public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return Key{}, false, fmt.Errorf("create data dir %s: %w", dataDir, err)
	}
	dir := KeysDir(dataDir)
	if err := os.Mkdir(dir, 0o755); err == nil {
		if err := chownLikeDataDir(dir, dataDir); err != nil {
			return Key{}, false, err
		}
	} else if !errors.Is(err, os.ErrExist) {
		return Key{}, false, fmt.Errorf("create %s: %w", dir, err)
	}
	keys := Load(dataDir)
	if keys.Err() != nil {
		return Key{}, false, keys.Err()
	}
	if t, ok := keys.Trusted(pub); ok {
		return t, false, nil
	}
	sum := sha256.Sum256(pub)
	path := filepath.Join(dir, "ed25519-"+hex.EncodeToString(sum[:8])+keyExt)
	tmp, err := os.CreateTemp(dir, ".trust-*")
	if err != nil {
		return Key{}, false, fmt.Errorf("trust key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(MarshalPublicKey(pub)); err != nil {
		tmp.Close()
		return Key{}, false, fmt.Errorf("trust key: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return Key{}, false, fmt.Errorf("trust key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return Key{}, false, fmt.Errorf("trust key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return Key{}, false, fmt.Errorf("trust key: %w", err)
	}
	if err := chownLikeDataDir(tmp.Name(), dataDir); err != nil {
		return Key{}, false, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return Key{}, false, fmt.Errorf("trust key: %w", err)
	}
	return Key{Fingerprint: Fingerprint(pub), Public: pub, File: path}, true, nil
}

// Untrust removes every file of the trusted keys that holds the key named
// by ref: its fingerprint ("SHA256:..."), or the key itself (PEM or
// base64). ErrNotTrusted when none does.
func Untrust(dataDir, ref string) (Key, error) {
	ref = strings.TrimSpace(ref)
	match := func(k Key) bool { return k.Fingerprint == ref }
	if !strings.HasPrefix(ref, "SHA256:") {
		pub, err := ParsePublicKey([]byte(ref))
		if err != nil {
			return Key{}, fmt.Errorf("untrust: give a fingerprint (SHA256:...), a public key file or its base64: %w", err)
		}
		fp := Fingerprint(pub)
		match = func(k Key) bool { return k.Fingerprint == fp }
	}
	keys := Load(dataDir)
	var found Key
	for _, k := range keys.List() {
		if !match(k) {
			continue
		}
		if err := os.Remove(k.File); err != nil {
			return Key{}, fmt.Errorf("untrust %s: %w", k.Fingerprint, err)
		}
		found = k
	}
	if found.File == "" {
		if keys.Err() != nil {
			return Key{}, keys.Err()
		}
		return Key{}, fmt.Errorf("%w: %s is not among the keys in %s", ErrNotTrusted, ref, keys.Dir())
	}
	return found, nil
}

// readKeyFile reads one trusted key file after checking who may change it.
func readKeyFile(path string, owners map[uint32]bool) (ed25519.PublicKey, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (a link or folder is never a trusted key)", path)
	}
	if err := checkOwner(path, fi, owners); err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return nil, fmt.Errorf("%s may be changed by group or others (mode %04o): chmod go-w %s", path, perm, path)
	}
	data, err := ReadBounded(path)
	if err != nil {
		return nil, err
	}
	pub, err := ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}

// checkFolders checks the keys folder, the data dir and every folder above
// them: nobody but root and the manager's user may replace what they hold.
// Folders above the data dir may be writable by others when they have the
// sticky bit (others cannot rename or remove what they do not own).
func checkFolders(keysDir, dataDir string, owners map[uint32]bool) error {
	abs, err := filepath.Abs(keysDir)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return fmt.Errorf("trusted keys folder: %w", err)
	}
	absData, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	realData, err := filepath.EvalSymlinks(absData)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	// Links on the way as given must not be replaceable either.
	for p := abs; ; p = filepath.Dir(p) {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			if err := checkOwner(p, fi, owners); err != nil {
				return err
			}
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	for p := real; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a folder", p)
		}
		if err := checkOwner(p, fi, owners); err != nil {
			return err
		}
		mode := fi.Mode()
		above := p != real && p != realData
		if mode.Perm()&0o022 != 0 && !(above && mode&os.ModeSticky != 0) {
			return fmt.Errorf("%s may be changed by group or others (mode %04o), so the trusted plugin keys under it could be replaced: chmod go-w %s", p, mode.Perm(), p)
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	return nil
}

func checkOwner(path string, fi os.FileInfo, owners map[uint32]bool) error {
	uid, ok := fileOwner(fi)
	if !ok || owners[uid] {
		return nil
	}
	return fmt.Errorf("%s is owned by uid %d, not by root or the manager's user (uid %d), so the trusted plugin keys could be replaced: chown it", path, uid, os.Geteuid())
}

// allowedOwners are the users who may own the trusted keys and the folders
// above them: root and the user running this. Root acting on a data dir
// owned by another user (the manager's) allows that user too.
func allowedOwners(dataDir string) (map[uint32]bool, error) {
	euid := uint32(os.Geteuid())
	owners := map[uint32]bool{0: true, euid: true}
	if euid == 0 {
		fi, err := os.Stat(dataDir)
		if err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		if uid, ok := fileOwner(fi); ok {
			owners[uid] = true
		}
	}
	return owners, nil
}
