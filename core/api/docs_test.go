package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/api/openapi/openapitest"
)

// docsPath is the API reference, written for people.
const docsPath = "../../docs/API.md"

// docSection is what docs/API.md says about one operation.
type docSection struct {
	heading  string
	line     int
	access   string // the text after **Access:**
	errors   []int  // the codes of the **Errors:** line
	examples []docExample
}

// docExample is a fenced JSON block marked "json request" or
// "json response <status>".
type docExample struct {
	line   int
	kind   string // request or response
	status int
	body   []byte
}

var (
	opHeading   = regexp.MustCompile(`^#{2,4} (GET|POST|PUT|DELETE|PATCH) (/\S*)$`)
	anyHeading  = regexp.MustCompile(`^#{1,6} `)
	exampleInfo = regexp.MustCompile(`^json (request|response (\d{3}))$`)
	errorItem   = regexp.MustCompile(`^(\d{3})\b`)
)

// readDocs reads the operation sections of docs/API.md; problems are
// what is malformed.
func readDocs(t *testing.T) (sections []*docSection, problems []string) {
	t.Helper()
	b, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	var cur *docSection
	var fence *docExample
	var fenceBody bytes.Buffer
	inFence := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			if inFence {
				inFence = false
				if fence != nil {
					fence.body = append([]byte(nil), fenceBody.Bytes()...)
					cur.examples = append(cur.examples, *fence)
					fence = nil
				}
				continue
			}
			inFence = true
			info := strings.TrimSpace(strings.TrimPrefix(line, "```"))
			m := exampleInfo.FindStringSubmatch(info)
			switch {
			case m != nil && cur == nil:
				problems = append(problems, fmt.Sprintf("line %d: an example outside an operation's section", n))
			case m != nil:
				fence = &docExample{line: n, kind: strings.Fields(m[1])[0]}
				if m[2] != "" {
					fence.status, _ = strconv.Atoi(m[2])
				}
				fenceBody.Reset()
			case info == "json" && cur != nil:
				problems = append(problems, fmt.Sprintf("line %d: a JSON block in %s is not marked `json request` or `json response <status>`", n, cur.heading))
			}
			continue
		}
		if inFence {
			if fence != nil {
				fenceBody.WriteString(line + "\n")
			}
			continue
		}
		if m := opHeading.FindStringSubmatch(line); m != nil {
			cur = &docSection{heading: m[1] + " " + m[2], line: n}
			sections = append(sections, cur)
			continue
		}
		if anyHeading.MatchString(line) {
			cur = nil
			continue
		}
		if cur == nil {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "**Access:** "); ok {
			cur.access = rest
		}
		if rest, ok := strings.CutPrefix(line, "**Errors:** "); ok {
			for _, item := range strings.Split(rest, ";") {
				m := errorItem.FindStringSubmatch(strings.TrimSpace(item))
				if m == nil {
					problems = append(problems, fmt.Sprintf("line %d: error item %q does not start with its status", n, strings.TrimSpace(item)))
					continue
				}
				code, _ := strconv.Atoi(m[1])
				cur.errors = append(cur.errors, code)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if inFence {
		problems = append(problems, "a code block is not closed")
	}
	return sections, problems
}

// anchor is the fragment GitHub gives a heading: lower case, spaces as
// hyphens, other punctuation dropped.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ' || r == '-':
			b.WriteRune('-')
		case r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Links inside docs/API.md lead to a heading of it.
func TestDocsLinksResolve(t *testing.T) {
	b, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	inFence := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if !inFence && anyHeading.MatchString(line) {
			anchors[anchor(strings.TrimLeft(line, "# "))] = true
		}
	}
	links := regexp.MustCompile(`\]\(#([^)]+)\)`).FindAllStringSubmatch(string(b), -1)
	if len(links) < 5 {
		t.Fatalf("only %d links", len(links))
	}
	for _, l := range links {
		if !anchors[l[1]] {
			t.Errorf("docs/API.md links to #%s, which no heading has", l[1])
		}
	}
}

// docAccess is the access line an operation's x-access asks for.
func docAccess(op *openapitest.Operation) (string, error) {
	var x struct {
		Role    *string `json:"role"`
		Scoped  bool    `json:"scoped"`
		Audited bool    `json:"audited"`
	}
	b, _ := json.Marshal(op.Raw["x-access"])
	if err := json.Unmarshal(b, &x); err != nil {
		return "", err
	}
	if x.Role == nil {
		return "public (no token).", nil
	}
	words := *x.Role
	if x.Scoped {
		words += " of the cluster"
	}
	if x.Audited {
		words += " (audited)"
	}
	return words + ".", nil
}

// impliedErrors are the codes the docs state once for every /api call
// (and 413 for every call whose body the guard reads) instead of in each
// section.
var impliedErrors = map[int]bool{401: true, 413: true, 429: true, 500: true}

// docs/API.md has a section for every operation of the OpenAPI document
// and none for anything else; each says the access its rule gives, the
// error codes the document declares, and shows examples that validate
// against the document.
func TestDocsAreTheDocument(t *testing.T) {
	v := mustSpec(t)
	sections, problems := readDocs(t)
	for _, p := range problems {
		t.Errorf("docs/API.md %s", p)
	}
	byName := map[string]*docSection{}
	for _, s := range sections {
		if byName[s.heading] != nil {
			t.Errorf("docs/API.md line %d: %s has a second section", s.line, s.heading)
		}
		byName[s.heading] = s
	}
	ops := map[string]*openapitest.Operation{}
	for _, op := range v.Operations() {
		ops[op.String()] = op
		if byName[op.String()] == nil {
			t.Errorf("docs/API.md has no section \"### %s\"", op)
		}
	}
	checkedExamples := 0
	for _, s := range sections {
		op := ops[s.heading]
		if op == nil {
			t.Errorf("docs/API.md line %d: %s is not an operation of the OpenAPI document", s.line, s.heading)
			continue
		}
		want, err := docAccess(op)
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		if s.access != want && !strings.HasPrefix(s.access, want+" ") {
			t.Errorf("docs/API.md line %d: %s: access line %q, want it to start %q", s.line, s.heading, s.access, want)
		}
		// The error codes: those listed, with the implied ones the
		// operation declares, are exactly the declared non-2xx codes.
		declared := map[int]bool{}
		for _, st := range op.Statuses() {
			if code, err := strconv.Atoi(st); err == nil && code >= 300 {
				declared[code] = true
			}
		}
		got := map[int]bool{}
		for _, c := range s.errors {
			if !declared[c] {
				t.Errorf("docs/API.md line %d: %s lists error %d, which the document does not declare", s.line, s.heading, c)
			}
			got[c] = true
		}
		var missing []int
		for c := range declared {
			if !got[c] && !(impliedErrors[c] && strings.HasPrefix(op.Path, "/api/")) {
				missing = append(missing, c)
			}
		}
		sort.Ints(missing)
		if len(missing) > 0 {
			t.Errorf("docs/API.md line %d: %s does not list errors %v, which the document declares", s.line, s.heading, missing)
		}
		// Examples: each validates, a success is shown, and so is a
		// request when the operation needs a body.
		shown := map[string]bool{}
		for _, ex := range s.examples {
			var err error
			switch ex.kind {
			case "request":
				err = op.CheckRequest(ex.body)
				shown["request"] = true
			case "response":
				err = op.CheckResponse(ex.status, "application/json", ex.body)
				if ex.status/100 == 2 {
					shown["success"] = true
				}
			}
			if err != nil {
				t.Errorf("docs/API.md line %d: %s example %s %d: %v", ex.line, s.heading, ex.kind, ex.status, err)
			}
			checkedExamples++
		}
		if !shown["success"] && jsonSuccess(op) {
			t.Errorf("docs/API.md line %d: %s shows no successful answer (a `json response 200` block)", s.line, s.heading)
		}
		if rb, _ := op.Raw["requestBody"].(map[string]any); rb != nil && rb["required"] == true && !shown["request"] {
			t.Errorf("docs/API.md line %d: %s shows no request body (a `json request` block)", s.line, s.heading)
		}
	}
	if checkedExamples < 50 {
		t.Errorf("only %d examples checked", checkedExamples)
	}
}

// The reader of docs/API.md is wrong-footed if it says less than the
// document: a broken example or a missing section must fail the test.
func TestDocsCheckFails(t *testing.T) {
	v := mustSpec(t)
	var op *openapitest.Operation
	for _, o := range v.Operations() {
		if o.String() == "POST /api/cluster" {
			op = o
		}
	}
	if op == nil {
		t.Fatal("POST /api/cluster is not in the document")
	}
	if err := op.CheckResponse(200, "application/json", []byte(`{"msg":"success","code":0,"data":{"id":1,"name":"x"}}`)); err == nil {
		t.Error("an answer without createTime passed")
	}
	if err := op.CheckRequest([]byte(`{"name":"x","size":3}`)); err == nil {
		t.Error("a request with an unknown field passed")
	}
	if got, _ := docAccess(op); got != "operator (audited)." {
		t.Errorf("access words of POST /api/cluster: %q", got)
	}
}

// jsonSuccess reports whether op answers success as JSON (not /metrics'
// text, nor the console's page and assets).
func jsonSuccess(op *openapitest.Operation) bool {
	resp, _ := op.Raw["responses"].(map[string]any)
	ok, _ := resp["200"].(map[string]any)
	content, _ := ok["content"].(map[string]any)
	_, isJSON := content["application/json"]
	return isJSON
}
