package main

import (
	"bufio"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	cases := []struct {
		name      string
		in        string
		failed    bool
		want, not []string
	}{
		{
			name: "passing run",
			in: `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"p","Test":"TestA","Output":"chatter\n"}
{"Action":"pass","Package":"p","Test":"TestA","Elapsed":2.5}
{"Action":"skip","Package":"p","Test":"TestB","Elapsed":0}
{"Action":"pass","Package":"p","Test":"TestC","Elapsed":9}
{"Action":"output","Package":"p","Output":"PASS\n"}
{"Action":"output","Package":"p","Output":"ok  \tp\t11.5s\n"}
{"Action":"pass","Package":"p","Elapsed":11.5}`,
			want: []string{"ok  \tp\t11.5s", "slowest tests:\n         9s  p TestC\n       2.5s  p TestA", "2 passed, 0 failed, 1 skipped"},
			not:  []string{"chatter", "PASS\n"},
		},
		{
			name: "failing subtest",
			in: `{"Action":"output","Package":"p","Test":"TestW/sqlite","Output":"    w_test.go:9: boom\n"}
{"Action":"fail","Package":"p","Test":"TestW/sqlite","Elapsed":1}
{"Action":"fail","Package":"p","Test":"TestW","Elapsed":1}
{"Action":"output","Package":"p","Output":"FAIL\tp\t1.0s\n"}
{"Action":"fail","Package":"p","Elapsed":1}`,
			failed: true,
			want:   []string{"--- output of p TestW/sqlite (FAIL, 1s)\n    w_test.go:9: boom", "failed packages: p", "0 passed, 2 failed, 0 skipped"},
		},
		{
			name:   "build failure outside json",
			in:     "# p\n./x.go:1:1: syntax error\nFAIL\tp [build failed]",
			failed: true,
			want:   []string{"./x.go:1:1: syntax error", "0 passed, 0 failed, 0 skipped"},
		},
		{
			name: "build failure as events",
			in: `{"ImportPath":"p","Action":"build-output","Output":"./x.go:2: undefined: y\n"}
{"ImportPath":"p","Action":"build-fail"}`,
			failed: true,
			want:   []string{"./x.go:2: undefined: y"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out strings.Builder
			r := newReport(&out)
			sc := bufio.NewScanner(strings.NewReader(c.in))
			for sc.Scan() {
				r.line(sc.Bytes())
			}
			r.close(5)
			got := out.String()
			if r.failed != c.failed {
				t.Errorf("failed = %v, want %v\n%s", r.failed, c.failed, got)
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			for _, n := range c.not {
				if strings.Contains(got, n) {
					t.Errorf("output has %q:\n%s", n, got)
				}
			}
		})
	}
}
