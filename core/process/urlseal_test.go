package process

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/pkgsum"
	"github.com/dorismanager/dorismanager/core/secret"
	"github.com/dorismanager/dorismanager/core/store"
)

func testBox(t *testing.T) *secret.Box {
	t.Helper()
	box, err := secret.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return box
}

// rawRows returns every row of table as text, column by column, as the
// database holds it.
func rawRows(t *testing.T, st *store.Store, table string) []string {
	t.Helper()
	rows, err := st.DB().Raw("SELECT * FROM " + table).Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i, v := range vals {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&b, "%s=%s ", cols[i], v)
			default:
				fmt.Fprintf(&b, "%s=%v ", cols[i], v)
			}
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// A package URL's password is never stored in plain text: installAgent
// (and its re-issue) seals it in the process, installService copies it
// sealed into the tasks, and it opens to the URL that was sent, as the
// role tasks open it (core/roleexec).
func TestPackageURLPasswordSealedAtRest(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		box := testBox(t)
		e := New(Config{Store: f.st, Sealer: box, Catalogue: dorisCatalogue(), Notify: func() {}})
		const first, plain = "https://u:s3cret-first@127.0.0.1:1/x.tar.gz", "https://u:s3cret@127.0.0.1:1/x.tar.gz"
		r := agentReq(t, "h1", "h2")
		r.PackageURL = first
		pid, err := e.InstallAgent(ctx, 1, r)
		if err != nil {
			t.Fatal(err)
		}
		noPassword := func(when string) {
			t.Helper()
			for _, table := range []string{"processes", "tasks"} {
				rows := rawRows(t, f.st, table)
				if len(rows) == 0 {
					t.Fatalf("%s: no %s", when, table)
				}
				for _, row := range rows {
					if strings.Contains(row, "s3cret") {
						t.Errorf("%s: a row of %s holds the password: %s", when, table, row)
					}
				}
			}
		}
		noPassword("after installAgent")
		// installAgent again, with another password: it replaces the first.
		f.finishStep(pid, 0, store.StatusFailure)
		r.ProcessID, r.PackageURL = pid, plain
		if _, err := e.InstallAgent(ctx, 1, r); err != nil {
			t.Fatal(err)
		}
		f.finishStep(pid, 0, store.StatusSuccess)
		if err := e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: pid, AllowUnverifiedPackage: true,
			InstallInfos: []InstallInfo{{Host: "h1", Role: "FE"}, {Host: "h2", Role: "BE"}}}); err != nil {
			t.Fatal(err)
		}
		noPassword("after installService")
		p, err := f.st.GetProcess(ctx, pid)
		if err != nil {
			t.Fatal(err)
		}
		if !secret.IsSealedURL(p.PackageURL) || !strings.HasPrefix(p.PackageURL, "https://u:"+secret.SealedPrefix) {
			t.Fatalf("process package URL %q, want its password sealed", p.PackageURL)
		}
		ts := f.tasks(pid, 1)
		if len(ts) != 2 {
			t.Fatalf("%d INSTALL tasks", len(ts))
		}
		for _, tk := range ts {
			in := inputOf(t, tk)
			got, err := secret.OpenURLPassword(box, in.PackageURL)
			if err != nil || got != plain || !secret.IsSealedURL(in.PackageURL) {
				t.Fatalf("task %d: stored %q opens to %q %v, want %q", tk.ID, in.PackageURL, got, err, plain)
			}
		}
	})
}

// installService looks up the checksum published beside a package whose
// mirror wants the password: the stored URL is opened for the look-up.
func TestPublishedChecksumFetchedWithThePassword(t *testing.T) {
	sum := strings.Repeat("5b", 64)
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/doris.tar.gz.sha512" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "%s  doris.tar.gz\n", sum)
	}))
	defer mirror.Close()
	ctx := context.Background()
	f := newFixture(t, "")
	e := New(Config{Store: f.st, Sealer: testBox(t), Catalogue: dorisCatalogue(), Checksums: pkgsum.New(0), Notify: func() {}})
	r := agentReq(t, "h1")
	r.PackageURL = strings.Replace(mirror.URL, "http://", "http://u:s3cret@", 1) + "/doris.tar.gz"
	pid, err := e.InstallAgent(ctx, 1, r)
	if err != nil {
		t.Fatal(err)
	}
	f.finishStep(pid, 0, store.StatusSuccess)
	if err := e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: pid, InstallInfos: []InstallInfo{{Host: "h1", Role: "FE"}}}); err != nil {
		t.Fatal(err)
	}
	in := inputOf(t, f.tasks(pid, 1)[0])
	if in.PackageSHA512 != sum || strings.Contains(in.PackageSumFrom, "s3cret") || strings.Contains(in.PackageSumFrom, secret.SealedPrefix) {
		t.Fatalf("sums %q from %q, want the published one", in.PackageSHA512, in.PackageSumFrom)
	}
}

// A stored URL that cannot be opened (the key was replaced) stops
// installService with an error that hides the password.
func TestInstallServiceWithAnotherKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "")
	e := New(Config{Store: f.st, Sealer: testBox(t), Catalogue: dorisCatalogue(), Notify: func() {}})
	r := agentReq(t, "h1")
	r.PackageURL = "https://u:s3cret@127.0.0.1:1/x.tar.gz"
	pid, err := e.InstallAgent(ctx, 1, r)
	if err != nil {
		t.Fatal(err)
	}
	f.finishStep(pid, 0, store.StatusSuccess)
	other, _ := secret.New(bytes.Repeat([]byte{8}, 32))
	e = New(Config{Store: f.st, Sealer: other, Catalogue: dorisCatalogue(), Notify: func() {}})
	err = e.InstallService(ctx, 1, InstallServiceRequest{ProcessID: pid, AllowUnverifiedPackage: true, InstallInfos: []InstallInfo{{Host: "h1", Role: "FE"}}})
	if err == nil || !strings.Contains(err.Error(), "u:***@127.0.0.1:1") || !strings.Contains(err.Error(), "secret.key") ||
		strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), secret.SealedPrefix) {
		t.Fatalf("installService with another key: %v", err)
	}
	if n := len(f.tasks(pid, 1)); n != 0 {
		t.Fatalf("%d tasks made", n)
	}
}
