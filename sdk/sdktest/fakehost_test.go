package sdktest

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/dorismanager/dorismanager/sdk"
)

func TestFakeHostExecPrefixes(t *testing.T) {
	f := NewFakeHost()
	f.ExecOK("any", "sh")
	f.ExecExit(3, "specific", "sh", "-c")
	ctx := context.Background()
	tests := []struct {
		argv []string
		code int
		out  string
	}{
		{[]string{"sh", "-c", "true"}, 3, "specific"},
		{[]string{"sh", "x"}, 0, "any"},
		{[]string{"java", "-version"}, 127, ""},
	}
	for _, tc := range tests {
		res, err := f.Exec(ctx, sdk.Command{Argv: tc.argv})
		if err != nil {
			t.Fatalf("%v: %v", tc.argv, err)
		}
		if res.ExitCode != tc.code || (tc.out != "" && res.Output != tc.out) {
			t.Errorf("%v: got %d %q, want %d %q", tc.argv, res.ExitCode, res.Output, tc.code, tc.out)
		}
	}
	if got := f.Execs(); len(got) != 3 || !reflect.DeepEqual(got[2], []string{"java", "-version"}) {
		t.Errorf("recorded execs %v", got)
	}
}

func TestFakeHostFiles(t *testing.T) {
	f := NewFakeHost()
	ctx := context.Background()
	if err := f.WriteFile(ctx, "/a/b.conf", []byte("hello world"), 0o640); err != nil {
		t.Fatal(err)
	}
	got, err := f.ReadFile(ctx, "/a/b.conf", 5)
	if err != nil || string(got) != "world" {
		t.Fatalf("tail read = %q, %v", got, err)
	}
	if fl, ok := f.File("/a/b.conf"); !ok || fl.Mode != 0o640 {
		t.Errorf("file = %+v %v", fl, ok)
	}
	if _, err := f.ReadFile(ctx, "/missing", 0); !errors.Is(err, sdk.ErrNotExist) {
		t.Errorf("missing file error = %v, want ErrNotExist", err)
	}
	boom := errors.New("disk full")
	f.FailPath("/a/b.conf", boom)
	if err := f.WriteFile(ctx, "/a/b.conf", nil, 0o600); !errors.Is(err, boom) {
		t.Errorf("FailPath error = %v", err)
	}
}

func TestFakeHostQueryHTTPAndCancel(t *testing.T) {
	f := NewFakeHost()
	f.QueryRows("show frontends", sdk.Rows{Columns: []string{"Host", "Alive"}, Values: [][]string{{"10.0.0.1", "true"}}})
	ctx := context.Background()
	rows, err := f.Query(ctx, "10.0.0.1:9030", "  SHOW FRONTENDS")
	if err != nil || rows.Col(0, "Alive") != "true" {
		t.Fatalf("query = %+v, %v", rows, err)
	}
	if _, err := f.Query(ctx, "x:9030", "SHOW BACKENDS"); err == nil {
		t.Error("unscripted query should fail")
	}
	f.HTTPGetResponse("http://10.0.0.1:8030/api/bootstrap", 200, `{"code":0}`)
	resp, err := f.HTTPGet(ctx, "http://10.0.0.1:8030/api/bootstrap?x=1")
	if err != nil || resp.Status != 200 {
		t.Fatalf("http = %+v, %v", resp, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.Exec(cctx, sdk.Command{Argv: []string{"true"}}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled exec err = %v", err)
	}
	f.Logf("x=%d", 1)
	if logs := f.Logs(); len(logs) != 1 || logs[0] != "x=1" {
		t.Errorf("logs %v", logs)
	}
}
