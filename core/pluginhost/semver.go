package pluginhost

import (
	"regexp"
	"strconv"
	"strings"
)

// semverPattern matches a semantic version without a leading "v".
const semverPattern = `(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?`

var semverRe = regexp.MustCompile(`^` + semverPattern + `$`)

func validSemver(v string) bool { return semverRe.MatchString(v) }

// compareSemver orders two valid versions by semver precedence (build
// metadata ignored): -1, 0 or 1.
func compareSemver(a, b string) int {
	a, _, _ = strings.Cut(a, "+")
	b, _, _ = strings.Cut(b, "+")
	ac, apre, _ := strings.Cut(a, "-")
	bc, bpre, _ := strings.Cut(b, "-")
	if c := compareDotted(ac, bc); c != 0 {
		return c
	}
	switch {
	case apre == bpre:
		return 0
	case apre == "": // a release outranks its pre-releases
		return 1
	case bpre == "":
		return -1
	}
	return compareDotted(apre, bpre)
}

func compareDotted(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		an, aerr := strconv.ParseUint(as[i], 10, 64)
		bn, berr := strconv.ParseUint(bs[i], 10, 64)
		switch {
		case aerr == nil && berr == nil:
			if an != bn {
				return cmp(an < bn)
			}
		case aerr == nil: // numeric identifiers rank below alphanumeric ones
			return -1
		case berr == nil:
			return 1
		case as[i] != bs[i]:
			return cmp(as[i] < bs[i])
		}
	}
	if len(as) != len(bs) {
		return cmp(len(as) < len(bs))
	}
	return 0
}

func cmp(less bool) int {
	if less {
		return -1
	}
	return 1
}
