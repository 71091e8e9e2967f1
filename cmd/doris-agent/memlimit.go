package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// defaultMemoryLimit is the agent's soft memory limit. Idle, the agent's Go
// heap is 2-3 MiB; the one large thing it ever holds is the dictionary of
// an xz stream it unpacks (8 MiB at xz's default -6), while the decoder
// makes about 1.3 bytes of short-lived garbage per byte unpacked. With the
// runtime's default pacing (GOGC=100) that garbage may double the heap
// before a GC runs: 27.5 MiB high-water mark for a 2.x .tar.xz. A soft
// limit makes the GC run as the heap nears it instead: 19 MiB, for ~15%
// more CPU during the unpack (BENCHMARKS.md, "Agent memory"). A lower
// GOGC would scale with the heap instead (a 64 MiB dictionary still lets
// it grow by a multiple of that) and run the GC more often at every heap
// size, where the limit only bites near it. A stream with a larger
// dictionary (64 MiB at -9) raises the limit by its size while it unpacks
// (agent.memLimit): below the live heap the GC would run without pause. What an unpack leaves behind is handed back right after it
// (agent.fetch), not left to this limit.
const defaultMemoryLimit = "16MiB"

// parseBytes reads a size: a number of bytes, optionally with B, KiB, MiB
// or GiB; "0" and "off" mean no limit.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "off" || s == "0" {
		return math.MaxInt64, nil
	}
	units := []struct {
		suffix string
		shift  uint
	}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}
	shift := uint(0)
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, shift = strings.TrimSpace(num), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q is not a size: use a positive number of bytes, optionally with KiB, MiB or GiB (16MiB), or off", s)
	}
	return n << shift, nil
}
