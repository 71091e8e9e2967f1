package pluginhost

import (
	"fmt"
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

// Constraint is the version rule of a pin: an exact version ("1.2.3"), a
// partial one ("1.2" = any 1.2.x), a tilde range ("~1.2" = >=1.2.0 <1.3.0,
// "~1" = >=1.0.0 <2.0.0), a caret range ("^1.2" = >=1.2.0 <2.0.0), or
// comparisons (">=1.2 <2", also with commas) that must all hold. A
// pre-release version matches only a rule that names a pre-release of the
// same major.minor.patch.
type Constraint struct {
	text  string
	exact bool
	cmps  []comparator
}

type comparator struct {
	op  string // "=", ">", ">=", "<", "<="
	ver string // full semver
}

var partialRe = regexp.MustCompile(`^(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?$`)

// ParseConstraint reads a pin's version rule; the error says what is wrong
// and what is accepted.
func ParseConstraint(s string) (Constraint, error) {
	text := strings.Join(strings.Fields(strings.ReplaceAll(s, ",", " ")), " ")
	if text == "" {
		return Constraint{}, fmt.Errorf("empty version: give a version (1.2.3) or a rule (~1.2, ^1.2, >=1.2 <2)")
	}
	c := Constraint{text: text}
	clauses := strings.Fields(text)
	for _, cl := range clauses {
		cmps, err := parseClause(cl)
		if err != nil {
			return Constraint{}, fmt.Errorf("version rule %q: %w; accepted: 1.2.3, 1.2, ~1.2, ^1.2, >=1.2 <2 (comparisons =, >, >=, <, <=)", s, err)
		}
		c.cmps = append(c.cmps, cmps...)
	}
	c.exact = len(clauses) == 1 && validSemver(strings.TrimPrefix(clauses[0], "="))
	return c, nil
}

// String is the rule as given, blanks normalised.
func (c Constraint) String() string { return c.text }

// Exact reports whether the rule names one version.
func (c Constraint) Exact() bool { return c.exact }

// Match reports whether a valid semver satisfies every clause.
func (c Constraint) Match(v string) bool {
	if len(c.cmps) == 0 || !validSemver(v) {
		return false
	}
	if pre := prerelease(v); pre != "" {
		allowed := false
		for _, cm := range c.cmps {
			if prerelease(cm.ver) != "" && core(cm.ver) == core(v) {
				allowed = true
			}
		}
		if !allowed {
			return false
		}
	}
	for _, cm := range c.cmps {
		r := compareSemver(v, cm.ver)
		ok := false
		switch cm.op {
		case "=":
			ok = r == 0
		case ">":
			ok = r > 0
		case ">=":
			ok = r >= 0
		case "<":
			ok = r < 0
		case "<=":
			ok = r <= 0
		}
		if !ok {
			return false
		}
	}
	return true
}

// Highest returns the highest of versions that matches, or "".
func (c Constraint) Highest(versions []string) string {
	best := ""
	for _, v := range versions {
		if c.Match(v) && (best == "" || compareSemver(v, best) > 0) {
			best = v
		}
	}
	return best
}

func parseClause(cl string) ([]comparator, error) {
	var op string
	for _, p := range []string{">=", "<=", ">", "<", "=", "~", "^"} {
		if strings.HasPrefix(cl, p) {
			op, cl = p, strings.TrimPrefix(cl, p)
			break
		}
	}
	if cl == "" {
		return nil, fmt.Errorf("%q has no version after it", op)
	}
	if strings.HasPrefix(cl, "v") {
		return nil, fmt.Errorf("%q: write versions without a leading v", cl)
	}
	if validSemver(cl) {
		full := cl
		nums := parts(core(cl))
		switch op {
		case "", "=", ">", ">=", "<", "<=":
			if op == "" {
				op = "="
			}
			return []comparator{{op, full}}, nil
		case "~":
			return []comparator{{">=", full}, {"<", version(nums[0], nums[1]+1, 0)}}, nil
		default: // ^
			return []comparator{{">=", full}, {"<", caretUpper(nums, 3)}}, nil
		}
	}
	m := partialRe.FindStringSubmatch(cl)
	if m == nil {
		return nil, fmt.Errorf("%q is not a version (like 1.2.3 or 1.2)", cl)
	}
	given := 1
	if m[2] != "" {
		given = 2
	}
	nums := []uint64{0, 0, 0}
	for i := 0; i < given; i++ {
		nums[i], _ = strconv.ParseUint(m[i+1], 10, 64)
	}
	low := version(nums[0], nums[1], nums[2])
	next := bump(nums, given) // the first version past the partial one
	switch op {
	case "", "=":
		return []comparator{{">=", low}, {"<", next}}, nil
	case ">":
		return []comparator{{">=", next}}, nil
	case ">=":
		return []comparator{{">=", low}}, nil
	case "<":
		return []comparator{{"<", low}}, nil
	case "<=":
		return []comparator{{"<", next}}, nil
	case "~":
		if given == 1 {
			return []comparator{{">=", low}, {"<", next}}, nil
		}
		return []comparator{{">=", low}, {"<", version(nums[0], nums[1]+1, 0)}}, nil
	default: // ^
		return []comparator{{">=", low}, {"<", caretUpper(nums, given)}}, nil
	}
}

// caretUpper is the first version past a caret range: the left-most
// non-zero component of the given ones is bumped (the last given one when
// all are zero).
func caretUpper(nums []uint64, given int) string {
	for i := 0; i < given; i++ {
		if nums[i] != 0 {
			return bump(nums, i+1)
		}
	}
	return bump(nums, given)
}

// bump increments component given-1 and zeroes those after it.
func bump(nums []uint64, given int) string {
	n := []uint64{nums[0], nums[1], nums[2]}
	n[given-1]++
	for i := given; i < 3; i++ {
		n[i] = 0
	}
	return version(n[0], n[1], n[2])
}

func version(a, b, c uint64) string { return fmt.Sprintf("%d.%d.%d", a, b, c) }

func core(v string) string {
	v, _, _ = strings.Cut(v, "+")
	c, _, _ := strings.Cut(v, "-")
	return c
}

func prerelease(v string) string {
	v, _, _ = strings.Cut(v, "+")
	_, pre, _ := strings.Cut(v, "-")
	return pre
}

func parts(c string) []uint64 {
	out := make([]uint64, 3)
	for i, p := range strings.SplitN(c, ".", 3) {
		out[i], _ = strconv.ParseUint(p, 10, 64)
	}
	return out
}
