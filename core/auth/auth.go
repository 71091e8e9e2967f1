// Package auth issues API tokens (only their SHA-256 is stored), gives
// them their meaning (a role, the user's granted clusters, an expiry) and
// checks the bearer token of every /api/ call.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dorismanager/dorismanager/core/store"
)

// AdminTokenFile is the admin token's file name inside the data dir.
const AdminTokenFile = "admin.token"

// AdminUser is the user that owns the first token.
const AdminUser = "admin"

// tokenPrefix makes tokens recognisable in configs and secret scanners.
const tokenPrefix = "dm_"

// Role is what a token may do.
type Role string

// The roles, from most to least power. An admin does everything on every
// cluster (plugins, tokens, grants, the audit log too); an operator runs
// and changes the clusters its user is granted; a viewer reads them.
const (
	Admin    Role = store.RoleAdmin
	Operator Role = store.RoleOperator
	Viewer   Role = store.RoleViewer
)

func (r Role) rank() int {
	switch r {
	case Admin:
		return 3
	case Operator:
		return 2
	case Viewer:
		return 1
	}
	return 0
}

// AtLeast reports whether r has every power of need.
func (r Role) AtLeast(need Role) bool { return r.rank() > 0 && r.rank() >= need.rank() }

// ParseRole reads a role name.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if r.rank() == 0 {
		return "", fmt.Errorf("role %q: use admin, operator or viewer", s)
	}
	return r, nil
}

// DefaultLifetime is how long a token of role r lives unless its creator
// says otherwise: operator and viewer tokens 90 days, admin tokens forever
// (0).
func DefaultLifetime(r Role) time.Duration {
	if r == Admin {
		return 0
	}
	return 90 * 24 * time.Hour
}

// MaxLifetime bounds a token's lifetime when one is given.
const MaxLifetime = 10 * 365 * 24 * time.Hour

// ParseLifetime reads a token lifetime: "90d", "12h", "30m" (Go durations
// with days added), or "never" for a token that does not expire (0).
func ParseLifetime(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "never" {
		return 0, nil
	}
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, fmt.Errorf("expiry %q: use a number of days (90d), a duration (12h) or never", s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("expiry %q: use a number of days (90d), a duration (12h) or never", s)
		}
	}
	if d < time.Minute || d > MaxLifetime {
		return 0, fmt.Errorf("expiry %q: between 1m and 3650d, or never", s)
	}
	return d, nil
}

// HashToken is the stored form of a token: hex SHA-256.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewToken returns a fresh random token.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return tokenPrefix + hex.EncodeToString(b), nil
}

// TokenSpec says what a new token is for.
type TokenSpec struct {
	User string
	Role Role
	// Clusters are granted to the user (grants belong to the user and hold
	// for all its tokens); each must exist.
	Clusters []int64
	// Lifetime is how long the token is accepted; 0 for ever.
	Lifetime time.Duration
}

// CreateToken adds a token as spec says (its user created if new, its
// clusters granted to the user) and returns the token, which is kept
// nowhere, and its record.
func CreateToken(ctx context.Context, st *store.Store, spec TokenSpec) (string, store.APIToken, error) {
	if err := ValidUserName(spec.User); err != nil {
		return "", store.APIToken{}, err
	}
	if spec.Role.rank() == 0 {
		return "", store.APIToken{}, fmt.Errorf("role %q: use admin, operator or viewer", spec.Role)
	}
	if spec.Lifetime < 0 || spec.Lifetime > MaxLifetime {
		return "", store.APIToken{}, fmt.Errorf("token lifetime %v: between 1m and 3650d, or 0 for none", spec.Lifetime)
	}
	tok, err := NewToken()
	if err != nil {
		return "", store.APIToken{}, err
	}
	rec := store.APIToken{Hash: HashToken(tok), Role: string(spec.Role)}
	if spec.Lifetime > 0 {
		exp := time.Now().Add(spec.Lifetime).UTC()
		rec.ExpiresAt = &exp
	}
	err = st.Tx(ctx, func(tx *store.Store) error {
		u, err := tx.EnsureUser(ctx, spec.User)
		if err != nil {
			return fmt.Errorf("create user %q: %w", spec.User, err)
		}
		for _, c := range spec.Clusters {
			if err := tx.AddGrant(ctx, u.ID, c); err != nil {
				return err
			}
		}
		rec.UserID = u.ID
		return tx.CreateToken(ctx, &rec)
	})
	if err != nil {
		return "", store.APIToken{}, err
	}
	return tok, rec, nil
}

// ValidUserName checks a user name: 1 to 64 letters, digits and . _ - @.
func ValidUserName(name string) error {
	if name == "" || len(name) > 64 {
		return errors.New("user name must be 1 to 64 characters")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@", r)) {
			return fmt.Errorf("user name %q may only contain letters, digits and . _ - @", name)
		}
	}
	return nil
}

// EnsureAdmin makes sure the admin token exists: on first start it creates
// one (role admin, no expiry) and writes it to <dataDir>/admin.token (mode
// 0600). If the file exists (for example with a new database) its token is
// registered again. It returns the file's path and whether a new token was
// made.
func EnsureAdmin(ctx context.Context, st *store.Store, dataDir string) (string, bool, error) {
	path := filepath.Join(dataDir, AdminTokenFile)
	register := func(tok string) error {
		return st.Tx(ctx, func(tx *store.Store) error {
			u, err := tx.EnsureUser(ctx, AdminUser)
			if err != nil {
				return fmt.Errorf("create admin user: %w", err)
			}
			if err := tx.CreateToken(ctx, &store.APIToken{UserID: u.ID, Hash: HashToken(tok), Role: string(Admin)}); err != nil {
				return fmt.Errorf("store admin token: %w", err)
			}
			return nil
		})
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		tok := strings.TrimSpace(string(b))
		if !strings.HasPrefix(tok, tokenPrefix) || len(tok) < 20 {
			return path, false, fmt.Errorf("%s does not hold a token: delete it to have a new one made", path)
		}
		if _, _, err := st.TokenByHash(ctx, HashToken(tok)); err == nil {
			return path, false, nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return path, false, fmt.Errorf("look up admin token: %w", err)
		}
		return path, false, register(tok)
	case errors.Is(err, fs.ErrNotExist):
	default:
		return path, false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return path, false, fmt.Errorf("create data dir %s: %w", dataDir, err)
	}
	tok, err := NewToken()
	if err != nil {
		return path, false, err
	}
	// Write the file first: a token in the store that nobody can read is useless.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(tok+"\n"), 0o600); err != nil {
		return path, false, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return path, false, err
	}
	if err := register(tok); err != nil {
		return path, false, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return path, false, fmt.Errorf("write %s: %w", path, err)
	}
	return path, true, nil
}
