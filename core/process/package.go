package process

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dorismanager/dorismanager/core/pkgsum"
	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/internal/redact"
	"github.com/hashicorp/go-hclog"
)

// PackageSums are the checksums the hosts check a package with: the
// operator's packageSha256, or the sum published beside the package (From
// names that file, without a password). None: the operator allowed an
// unverified package, and Unverified says why there is no sum.
type PackageSums struct {
	SHA256, SHA512 string
	From           string
	Unverified     string
}

// PackageChecksums applies the package rule of installService and upgrade:
// the given sha256, else the checksum published beside url (.sha512, then
// .sha256, looked up with sums; nil looks nothing up). Without either the
// request is refused, saying what to do, unless allowUnverified; a
// published file that cannot be used (another file's sum, not a sum) is
// refused always.
func PackageChecksums(ctx context.Context, sums Checksums, log hclog.Logger, url, sha256 string, allowUnverified bool) (PackageSums, error) {
	if sha256 != "" {
		return PackageSums{SHA256: sha256}, nil
	}
	shown := redact.String(url)
	var sum pkgsum.Sum
	err := fmt.Errorf("%w: this manager looks no checksums up", pkgsum.ErrNotPublished)
	if sums != nil {
		sum, err = sums.Lookup(ctx, url)
	}
	const fix = `send packageSha256 with the package's SHA-256, or "allowUnverifiedPackage": true to install it unchecked`
	switch {
	case err == nil:
		log.Info("package checksum found", "algorithm", sum.Algo, "from", sum.From)
		if sum.Algo == pkgsum.SHA512 {
			return PackageSums{SHA512: sum.Hex, From: sum.From}, nil
		}
		return PackageSums{SHA256: sum.Hex, From: sum.From}, nil
	case errors.Is(err, pkgsum.ErrBadFile):
		return PackageSums{}, invalid("the checksum published beside packageUrl %s is refused: %v; fix that file, or send packageSha256 with the package's SHA-256", shown, err)
	case ctx.Err() != nil:
		return PackageSums{}, ctx.Err()
	case allowUnverified:
		log.Warn("an UNVERIFIED package is allowed", "package", shown, "why", err.Error())
		return PackageSums{Unverified: err.Error()}, nil
	case errors.Is(err, pkgsum.ErrNotPublished):
		return PackageSums{}, invalid("packageSha256 is required: no checksum is published beside packageUrl %s (%s.sha512 or .sha256, as Apache publishes them): %s", shown, shown, fix)
	default:
		return PackageSums{}, invalid("packageSha256 is required: the checksum published beside packageUrl %s could not be fetched (%v): %s", shown, err, fix)
	}
}

// SealPackageURL is a package URL as it is stored (in the process and in
// its tasks' input): its password, if it has one, sealed with box
// (core/secret.SealURLPassword). The stored URL must fit its column: a
// very long password can make it too long, and the request is refused.
// The users of a stored URL open it with secret.OpenURLPassword.
func SealPackageURL(box secret.Sealer, field, url string) (string, error) {
	stored, err := secret.SealURLPassword(box, url)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	if len(stored) > maxPackageURL {
		return "", invalid("%s: with its password sealed the URL has %d characters, more than %d: use a shorter password or URL", field, len(stored), maxPackageURL)
	}
	return stored, nil
}

// Describe says, for a task's log, how the hosts check the package at url.
func (s PackageSums) Describe(url string) string {
	shown := redact.String(url)
	var how string
	switch {
	case s.SHA512 != "":
		how = fmt.Sprintf("the host checks its SHA-512 %s, published at %s", s.SHA512, s.From)
	case s.SHA256 != "" && s.From != "":
		how = fmt.Sprintf("the host checks its SHA-256 %s, published at %s", s.SHA256, s.From)
	case s.SHA256 != "":
		return fmt.Sprintf("package %s: the host checks its SHA-256 %s, given as packageSha256", shown, s.SHA256)
	default:
		why := s.Unverified
		if why == "" {
			why = "no checksum was given or published"
		}
		return fmt.Sprintf("WARNING: package %s is UNVERIFIED (%s); the request allowed that (allowUnverifiedPackage): whatever the URL serves is installed and its scripts run on this host", shown, why)
	}
	if strings.HasPrefix(s.From, "http://") {
		how += " (over plain http: this catches a damaged download, not one changed on the way; give packageSha256 from a trusted source, or use https)"
	}
	return fmt.Sprintf("package %s: %s", shown, how)
}
