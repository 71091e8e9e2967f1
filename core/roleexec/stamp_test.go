package roleexec

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTaskLogLinesAreStamped(t *testing.T) {
	clock := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	cases := []struct {
		name   string
		writes []string
		want   string
	}{
		{"one line", []string{"a\n"}, "03:04:05.006 a\n"},
		{"lines in one write", []string{"a\nb\n"}, "03:04:05.006 a\n03:04:05.006 b\n"},
		{"line split over writes", []string{"ab", "c\nd", "\n"}, "03:04:05.006 abc\n03:04:05.006 d\n"},
		{"unfinished last line", []string{"a\nb"}, "03:04:05.006 a\n03:04:05.006 b"},
		{"empty line", []string{"\n"}, "03:04:05.006 \n"},
		{"empty write", []string{""}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var log strings.Builder
			h := &agentHost{log: &log, logMu: &sync.Mutex{}, now: func() time.Time { return clock }}
			for _, w := range c.writes {
				n, err := h.logWriter().Write([]byte(w))
				if err != nil || n != len(w) {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if log.String() != c.want {
				t.Errorf("log = %q, want %q", log.String(), c.want)
			}
		})
	}
}

func TestLogfStampsAndRawDoesNot(t *testing.T) {
	var log strings.Builder
	h := &agentHost{log: &log, logMu: &sync.Mutex{}, now: func() time.Time { return time.Date(2026, 1, 2, 23, 59, 59, 0, time.UTC) }}
	h.Logf("starting %s", "FE")
	fmt.Fprintln(h.rawLogWriter(), "2026-01-02T23:59:59.000Z [INFO] plugin line")
	want := "23:59:59.000 starting FE\n2026-01-02T23:59:59.000Z [INFO] plugin line\n"
	if log.String() != want {
		t.Errorf("log = %q, want %q", log.String(), want)
	}
}
