package unpack

import (
	"bytes"
	"os/exec"
	"testing"

	"github.com/ulikunitz/xz"
)

func TestXZDictionary(t *testing.T) {
	tarball := build(t, []entry{{name: "a", body: "a", typ: reg}}, "")
	xzWith := func(dict int) []byte {
		var b bytes.Buffer
		w, err := xz.WriterConfig{DictCap: dict}.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(tarball)
		w.Close()
		return b.Bytes()
	}
	cases := []struct {
		name string
		in   []byte
		want int64
		ok   bool
	}{
		{"xz 8 MiB", xzWith(8 << 20), 8 << 20, true},
		{"xz 64 MiB", xzWith(64 << 20), 64 << 20, true},
		{"xz 3 MiB", xzWith(3 << 20), 3 << 20, true},
		{"gzip", build(t, []entry{{name: "a", body: "a", typ: reg}}, "gz"), 0, false},
		{"tar", tarball, 0, false},
		{"truncated xz", xzWith(8 << 20)[:13], 0, false},
		{"empty", nil, 0, false},
	}
	if _, err := exec.LookPath("xz"); err == nil {
		// The xz tool, with a BCJ filter before LZMA2 and sizes in the
		// block header (multi-threaded mode writes them).
		cmd := exec.Command("xz", "--x86", "--lzma2=preset=6", "-T2", "-c")
		cmd.Stdin = bytes.NewReader(tarball)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct {
			name string
			in   []byte
			want int64
			ok   bool
		}{"xz tool, x86 filter", out, 8 << 20, true})
	}
	for _, c := range cases {
		got, ok := XZDictionary(bytes.NewReader(c.in))
		if got != c.want || ok != c.ok {
			t.Errorf("%s: got %d, %v; want %d, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
