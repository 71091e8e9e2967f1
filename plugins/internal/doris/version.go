package doris

import (
	"context"
	"errors"
	"path"
	"regexp"
	"strings"

	"github.com/dorismanager/dorismanager/sdk"
)

// versionFile in a role home records the Doris version it was installed
// from (the package's name says it), for roles that cannot be asked.
const versionFile = ".doris-manager-version"

var pkgVersionRe = []*regexp.Regexp{
	// apache-doris-2.1.7-bin-x64, apache-doris-fe-2.0.3-bin-x86_64,
	// apache-doris-dependencies-2.0.3-bin-x86_64, apache-doris-2.1.7-bin-arm64
	regexp.MustCompile(`^apache-doris-(?:fe-|be-|dependencies-)?([0-9][0-9A-Za-z.\-]*?)-bin(?:-[A-Za-z0-9_]+)?$`),
	// PALO-0.15.1-rc03-binary
	regexp.MustCompile(`^PALO-([0-9][0-9A-Za-z.\-]*?)-binary$`),
}

// PackageVersion reads the Doris version from a release's top folder name
// ("" when the name does not say).
func PackageVersion(top string) string {
	for _, re := range pkgVersionRe {
		if m := re.FindStringSubmatch(top); m != nil {
			return m[1]
		}
	}
	return ""
}

// ShowVersion turns the Version column of SHOW FRONTENDS/BACKENDS
// ("doris-2.1.7-rc03-443e87e203") into the version fact ("2.1.7-rc03-443e87e203").
func ShowVersion(v string) string {
	v = strings.TrimSpace(v)
	for _, p := range []string{"doris-", "palo-"} {
		if len(v) > len(p) && strings.EqualFold(v[:len(p)], p) {
			return v[len(p):]
		}
	}
	return v
}

// SameVersion reports whether the version a node shows (ShowVersion form)
// is the package version want: equal, or want followed by a non-digit
// suffix ("2.1.8" matches "2.1.8-rc01-abc", not "2.1.80").
func SameVersion(shown, want string) bool {
	if want == "" || !strings.HasPrefix(shown, want) {
		return false
	}
	rest := shown[len(want):]
	return rest == "" || !(rest[0] >= '0' && rest[0] <= '9') && rest[0] != '.'
}

// InstalledVersion reads the version recorded in a role home ("" if none).
func InstalledVersion(ctx context.Context, h sdk.Host, home string) (string, error) {
	b, err := h.ReadFile(ctx, path.Join(home, versionFile), 256)
	if errors.Is(err, sdk.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// safeVersion keeps a version fit for a folder name.
var unsafeVersionChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

func safeVersion(v string) string {
	v = unsafeVersionChars.ReplaceAllString(v, "_")
	if v == "" || strings.Trim(v, ".") == "" {
		return "unknown"
	}
	return v
}
