package rest

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestErrorsShowTheManagersWords: a non-zero code is an *Error whose text
// carries the manager's code and message verbatim.
func TestErrorsShowTheManagersWords(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		body       string
		want       string // exact error text; "" for success
		noEndpoint bool
	}{
		{"success", 200, `{"msg":"success","code":0,"data":7}`, "", false},
		{"conflict", 409, `{"msg":"you already have unfinished process 3 (cluster 1, at DEPLOY_CONFIG): continue it","code":409,"data":null}`,
			"POST /api/server/installAgent: the manager answered 409: you already have unfinished process 3 (cluster 1, at DEPLOY_CONFIG): continue it", false},
		{"bad request", 400, `{"msg":"installInfos[0].role \"FX\" is not installable: installed roles are BE, BROKER, FE","code":400,"data":null}`,
			`POST /api/server/installAgent: the manager answered 400: installInfos[0].role "FX" is not installable: installed roles are BE, BROKER, FE`, false},
		{"no route", 404, `{"msg":"no endpoint POST /api/server/installAgent","code":404,"data":null}`,
			"POST /api/server/installAgent: the manager answered 404: no endpoint POST /api/server/installAgent", true},
		{"unknown id", 404, `{"msg":"process 9 does not exist","code":404,"data":null}`,
			"POST /api/server/installAgent: the manager answered 404: process 9 does not exist", false},
		{"not an envelope", 502, `<html>bad gateway</html>`, "POST /api/server/installAgent: HTTP 502 and no API answer (is SERVER a Doris Manager?): <html>bad gateway</html>", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var gotAuth, gotType string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotAuth, gotType = r.Header.Get("Authorization"), r.Header.Get("Content-Type")
				w.WriteHeader(c.status)
				_, _ = w.Write([]byte(c.body))
			}))
			defer srv.Close()
			cl, err := New(Config{Server: srv.URL, Getenv: env(map[string]string{EnvToken: "dm_secret"})})
			if err != nil {
				t.Fatal(err)
			}
			id, err := cl.InstallAgent(context.Background(), InstallAgent{ClusterID: 1})
			if gotAuth != "Bearer dm_secret" || gotType != "application/json" {
				t.Errorf("headers: Authorization %q, Content-Type %q", gotAuth, gotType)
			}
			if c.want == "" {
				if err != nil || id != 7 {
					t.Fatalf("InstallAgent = %d, %v; want 7", id, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; want %q", c.want)
			}
			want := strings.ReplaceAll(c.want, "SERVER", srv.URL)
			if err.Error() != want {
				t.Errorf("error\n got %q\nwant %q", err.Error(), want)
			}
			if IsNoEndpoint(err) != c.noEndpoint {
				t.Errorf("IsNoEndpoint = %v, want %v", IsNoEndpoint(err), c.noEndpoint)
			}
			var re *Error
			if c.status != 502 && (!errors.As(err, &re) || re.Status != c.status) {
				t.Errorf("want an *Error with status %d, got %#v", c.status, err)
			}
		})
	}
}

func TestConfigResolution(t *testing.T) {
	dir := t.TempDir()
	tokFile := writeFile(t, "tok", "dm_fromfile\n")
	envFile := writeFile(t, "envtok", "dm_fromenvfile")
	bad := writeFile(t, "bad", "two tokens\n")
	cases := []struct {
		name    string
		cfg     Config
		env     map[string]string
		server  string
		token   string
		wantErr string
	}{
		{"flag beats env", Config{Server: "https://m:9601/", TokenFile: tokFile}, map[string]string{EnvServer: "http://other", EnvTokenFile: envFile},
			"https://m:9601", "dm_fromfile", ""},
		{"env file", Config{}, map[string]string{EnvServer: "http://m", EnvTokenFile: envFile, EnvToken: "dm_plain"}, "http://m", "dm_fromenvfile", ""},
		{"env token", Config{}, map[string]string{EnvToken: "dm_plain"}, DefaultServer, "dm_plain", ""},
		{"no token", Config{}, nil, "", "", "no API token: give --token-file FILE (or set DORISMANAGER_TOKEN_FILE, or DORISMANAGER_TOKEN), e.g. the manager's <data-dir>/admin.token"},
		{"bad server", Config{Server: "10.0.0.5:9601"}, map[string]string{EnvToken: "x"}, "", "",
			`server "10.0.0.5:9601": give the manager's URL, like https://10.0.0.5:9601 (--server or DORISMANAGER_SERVER)`},
		{"bad token file", Config{TokenFile: bad}, nil, "", "", "token file " + bad + " must hold one token on one line"},
		{"missing token file", Config{TokenFile: filepath.Join(dir, "none")}, nil, "", "", "read the API token: open " + filepath.Join(dir, "none") + ": no such file or directory"},
		{"ca on http", Config{Server: "http://m", CAFile: tokFile}, map[string]string{EnvToken: "x"}, "", "",
			"--ca-file " + tokFile + " is given but the server http://m is plain http: use https://"},
		{"ca not pem", Config{Server: "https://m", CAFile: tokFile}, map[string]string{EnvToken: "x"}, "", "",
			"CA bundle " + tokFile + " holds no PEM certificate (the manager's is <data-dir>/pki/bundle.crt)"},
	}
	// The default token file is relative to the working directory; run
	// where there is none.
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Getenv = env(c.env)
			cl, err := New(c.cfg)
			if c.wantErr != "" {
				if err == nil || err.Error() != c.wantErr {
					t.Fatalf("error %v\nwant %s", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cl.Server() != c.server || cl.token != c.token {
				t.Errorf("server %q token %q; want %q %q", cl.Server(), cl.token, c.server, c.token)
			}
		})
	}
}

// TestTLS: with the manager's CA bundle the client talks TLS; without it
// the error says which flag fixes it.
func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"msg":"success","code":0,"data":[{"id":1,"name":"demo","createTime":"2024-05-01T10:00:00.000+00:00"}]}`))
	}))
	defer srv.Close()
	ca := writeFile(t, "bundle.crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	cl, err := New(Config{Server: srv.URL, CAFile: ca, Getenv: env(map[string]string{EnvToken: "x"})})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := cl.Clusters(context.Background())
	if err != nil || len(cs) != 1 || cs[0].Name != "demo" || cs[0].CreateTime.Year() != 2024 {
		t.Fatalf("Clusters = %+v, %v", cs, err)
	}
	untrusting, err := New(Config{Server: srv.URL, Getenv: env(map[string]string{EnvToken: "x"})})
	if err != nil {
		t.Fatal(err)
	}
	_, err = untrusting.Clusters(context.Background())
	if err == nil || !strings.Contains(err.Error(), "trust the manager's CA with --ca-file <data-dir>/pki/bundle.crt") {
		t.Fatalf("error without the CA: %v", err)
	}
	plain, err := New(Config{Server: strings.Replace(srv.URL, "https", "http", 1), Getenv: env(map[string]string{EnvToken: "x"})})
	if err != nil {
		t.Fatal(err)
	}
	_, err = plain.Clusters(context.Background())
	if err == nil || !strings.Contains(err.Error(), "the manager serves TLS: use https://") {
		t.Fatalf("error of plain http to TLS: %v", err)
	}
}

func TestFindCluster(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"msg":"success","code":0,"data":[{"id":1,"name":"2"},{"id":2,"name":"prod"}]}`))
	}))
	defer srv.Close()
	cl, _ := New(Config{Server: srv.URL, Getenv: env(map[string]string{EnvToken: "x"})})
	for _, c := range []struct {
		arg string
		id  int64
		ok  bool
	}{{"prod", 2, true}, {"2", 1, true}, {"1", 1, true}, {"nope", 0, false}, {"7", 0, false}} {
		got, ok, err := cl.FindCluster(context.Background(), c.arg)
		if err != nil || ok != c.ok || got.ID != c.id {
			t.Errorf("FindCluster(%q) = %d %v %v; want %d %v (a name wins over an id)", c.arg, got.ID, ok, err, c.id, c.ok)
		}
	}
}
