package process

import (
	"context"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/store"
)

// installService without packageSha256 takes the checksum published
// beside the package; without one it is refused unless the request allows
// an unverified package; a published file for another file is refused
// always; messages never show a URL's password.
func TestInstallServicePackageChecksum(t *testing.T) {
	ctx := context.Background()
	withPassword := strings.Replace(repo(), "http://", "http://bob:pw-secret@", 1)
	given := strings.Repeat("ab", 32)
	cases := []struct {
		name      string
		url       string
		sha256    string
		allow     bool
		noLookups bool
		refused   []string // what the refusal says; nil: accepted
		want      func(t *testing.T, sha256, sha512, from, unverified string)
	}{
		{name: "published SHA-512", url: packageURL(), want: func(t *testing.T, sha256, sha512, from, unverified string) {
			if sha512 != pkgSHA512 || sha256 != "" || from != packageURL()+".sha512" || unverified != "" {
				t.Errorf("sums %q %q from %q (%q); want the published SHA-512", sha256, sha512, from, unverified)
			}
		}},
		{name: "packageSha256 given: no look-up", url: repo() + "/other.tar.gz", sha256: given, want: func(t *testing.T, sha256, sha512, from, unverified string) {
			if sha256 != given || sha512 != "" || from != "" || unverified != "" {
				t.Errorf("sums %q %q from %q (%q); want the given SHA-256 only", sha256, sha512, from, unverified)
			}
		}},
		{name: "none published", url: repo() + "/other.tar.gz",
			refused: []string{"packageSha256 is required", "other.tar.gz.sha512 or .sha256", "allowUnverifiedPackage"}},
		{name: "none published, allowed", url: repo() + "/other.tar.gz", allow: true, want: func(t *testing.T, sha256, sha512, from, unverified string) {
			if sha256 != "" || sha512 != "" || !strings.Contains(unverified, "neither") {
				t.Errorf("sums %q %q (%q); want none, and why", sha256, sha512, unverified)
			}
		}},
		{name: "published for another file", url: repo() + "/bad.tar.gz", allow: true,
			refused: []string{"is refused", `"evil.tar.gz", not of "bad.tar.gz"`, "packageSha256"}},
		{name: "unreachable repository", url: "http://127.0.0.1:1/doris.tar.gz",
			refused: []string{"could not be fetched", "allowUnverifiedPackage"}},
		{name: "manager without look-ups", url: packageURL(), noLookups: true,
			refused: []string{"packageSha256 is required"}},
		{name: "password in the URL", url: withPassword + "/other.tar.gz",
			refused: []string{"bob:***@"}},
		{name: "password in the URL, published", url: withPassword + "/doris.tar.gz", want: func(t *testing.T, sha256, sha512, from, unverified string) {
			if sha512 != pkgSHA512 || strings.Contains(from, "pw-secret") {
				t.Errorf("sum %q from %q; want the published one from a URL without the password", sha512, from)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, "")
			if c.noLookups {
				f.e.sums = nil
			}
			r := agentReq(t, "h1", "h2")
			r.PackageURL = c.url
			pid, err := f.e.InstallAgent(ctx, 1, r)
			if err != nil {
				t.Fatal(err)
			}
			f.finishStep(pid, 0, store.StatusSuccess)
			err = f.e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: pid, PackageSha256: c.sha256, AllowUnverifiedPackage: c.allow,
				InstallInfos: []InstallInfo{{Host: "h1", Role: "FE"}, {Host: "h2", Role: "BE"}}})
			if c.refused != nil {
				wantKind(t, err, KindInvalid)
				for _, s := range c.refused {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("refusal %q does not say %q", err, s)
					}
				}
				if strings.Contains(err.Error(), "pw-secret") {
					t.Errorf("refusal %q shows the password", err)
				}
				if n := len(f.tasks(pid, 1)); n != 0 {
					t.Errorf("a refused installService made %d tasks", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ts := f.tasks(pid, 1)
			if len(ts) != 2 {
				t.Fatalf("%d tasks", len(ts))
			}
			for _, tk := range ts {
				in := inputOf(t, tk)
				c.want(t, in.PackageSHA256, in.PackageSHA512, in.PackageSumFrom, in.PackageUnverified)
			}
			// Later steps do not carry the package.
			f.finishStep(pid, 1, store.StatusSuccess)
			if err := f.e.DeployConfig(ctx, 1, DeployConfigRequest{ProcessID: pid, DeployConfigs: []DeployConfig{
				{Hosts: []string{"h1"}, Role: "FE", Conf: "a=1"}, {Hosts: []string{"h2"}, Role: "BE", Conf: "a=1"}}}); err != nil {
				t.Fatal(err)
			}
			for _, tk := range f.tasks(pid, 2) {
				if in := inputOf(t, tk); in.PackageURL+in.PackageSHA256+in.PackageSHA512+in.PackageSumFrom+in.PackageUnverified != "" {
					t.Errorf("DEPLOY task carries the package: %+v", in)
				}
			}
		})
	}
}
