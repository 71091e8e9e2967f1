// Package auth issues API tokens (only their SHA-256 is stored) and checks
// the bearer token of every /api/ call.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/store"
	"github.com/dorismanager/dorismanager/internal/netguard"
)

// AdminTokenFile is the admin token's file name inside the data dir.
const AdminTokenFile = "admin.token"

// AdminUser is the user that owns the first token.
const AdminUser = "admin"

// tokenPrefix makes tokens recognisable in configs and secret scanners.
const tokenPrefix = "dm_"

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

// CreateToken adds a token for user (created if new) and returns it. The
// token itself is not kept anywhere.
func CreateToken(ctx context.Context, st *store.Store, user string) (string, error) {
	if err := validUserName(user); err != nil {
		return "", err
	}
	tok, err := NewToken()
	if err != nil {
		return "", err
	}
	u, err := st.EnsureUser(ctx, user)
	if err != nil {
		return "", fmt.Errorf("create user %q: %w", user, err)
	}
	if err := st.AddToken(ctx, u.ID, HashToken(tok)); err != nil {
		return "", fmt.Errorf("store token of %q: %w", user, err)
	}
	return tok, nil
}

func validUserName(name string) error {
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
// one and writes it to <dataDir>/admin.token (mode 0600). If the file exists
// (for example with a new database) its token is registered again. It
// returns the file's path and whether a new token was made.
func EnsureAdmin(ctx context.Context, st *store.Store, dataDir string) (string, bool, error) {
	path := filepath.Join(dataDir, AdminTokenFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		tok := strings.TrimSpace(string(b))
		if !strings.HasPrefix(tok, tokenPrefix) || len(tok) < 20 {
			return path, false, fmt.Errorf("%s does not hold a token: delete it to have a new one made", path)
		}
		if _, err := st.UserByTokenHash(ctx, HashToken(tok)); err == nil {
			return path, false, nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return path, false, fmt.Errorf("look up admin token: %w", err)
		}
		u, err := st.EnsureUser(ctx, AdminUser)
		if err != nil {
			return path, false, fmt.Errorf("create admin user: %w", err)
		}
		if err := st.AddToken(ctx, u.ID, HashToken(tok)); err != nil {
			return path, false, fmt.Errorf("store admin token: %w", err)
		}
		return path, false, nil
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
	u, err := st.EnsureUser(ctx, AdminUser)
	if err != nil {
		return path, false, fmt.Errorf("create admin user: %w", err)
	}
	if err := st.AddToken(ctx, u.ID, HashToken(tok)); err != nil {
		return path, false, fmt.Errorf("store admin token: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return path, false, fmt.Errorf("write %s: %w", path, err)
	}
	return path, true, nil
}

type userKey struct{}

// WithUser returns ctx carrying the authenticated user.
func WithUser(ctx context.Context, u store.User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the authenticated user of a request context.
func UserFrom(ctx context.Context) (store.User, bool) {
	u, ok := ctx.Value(userKey{}).(store.User)
	return u, ok
}

// Middleware refuses requests without a valid "Authorization: Bearer" token
// (401 with an envelope) and puts the token's user in the request context.
// lim (nil for none) counts the refusals per client address and answers a
// client with too many of them 429 until its block ends.
func Middleware(st *store.Store, lim *netguard.AuthLimiter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if msg, blocked := lim.Blocked(w, r); blocked {
				httpx.Fail(w, httpx.Errorf(http.StatusTooManyRequests, "%s", msg))
				return
			}
			h := r.Header.Get("Authorization")
			scheme, tok, ok := strings.Cut(h, " ")
			tok = strings.TrimSpace(tok)
			if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
				lim.Failed(r)
				w.Header().Set("WWW-Authenticate", `Bearer realm="dorismanager"`)
				httpx.Fail(w, httpx.Errorf(http.StatusUnauthorized,
					"missing API token: send the header \"Authorization: Bearer <token>\" (the admin token is in <data-dir>/admin.token)"))
				return
			}
			u, err := st.UserByTokenHash(r.Context(), HashToken(tok))
			if errors.Is(err, store.ErrNotFound) {
				lim.Failed(r)
				w.Header().Set("WWW-Authenticate", `Bearer realm="dorismanager", error="invalid_token"`)
				httpx.Fail(w, httpx.Errorf(http.StatusUnauthorized, "unknown API token"))
				return
			}
			if err != nil {
				httpx.Fail(w, fmt.Errorf("check API token: %w", err))
				return
			}
			next.ServeHTTP(w, r.WithContext(WithUser(r.Context(), u)))
		})
	}
}
