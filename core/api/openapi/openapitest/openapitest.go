// Package openapitest checks HTTP exchanges against an OpenAPI 3.1
// document, for tests: the operation is found by method and path template,
// its status must be declared, the body must match the schema declared for
// that status and content type, and, for an answer in 2xx, the request's
// parameters and body must match theirs. Schemas are JSON Schema 2020-12
// (what OpenAPI 3.1 uses), compiled with $ref resolved inside the document.
package openapitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// docURL is where the compiler keeps the document; $refs resolve inside it.
const docURL = "mem:///openapi.json"

// Validator holds the compiled operations of one document. It is safe for
// concurrent use.
type Validator struct {
	ops        []*Operation
	components map[string]*jsonschema.Schema
}

// Operation is one method on one path template.
type Operation struct {
	Method string // upper case
	Path   string // the template, /api/cluster/{clusterId}/status
	// Raw is the operation object of the document (for x- fields).
	Raw map[string]any

	segs      []string
	params    []param
	body      *jsonschema.Schema // nil: the operation takes no body
	bodyReq   bool
	responses map[string]map[string]*jsonschema.Schema // status -> media type -> schema (nil: not JSON)
}

type param struct {
	name, in string
	required bool
	typ      string // the schema's type, to read the string as JSON
	schema   *jsonschema.Schema
}

// String is "METHOD /path/{template}".
func (o *Operation) String() string { return o.Method + " " + o.Path }

// Statuses lists the declared response statuses.
func (o *Operation) Statuses() []string {
	out := make([]string, 0, len(o.responses))
	for s := range o.responses {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// New compiles every schema of doc (parameters, request bodies, responses
// and components), so a broken $ref or schema fails here.
func New(doc []byte) (*Validator, error) {
	root, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("read the document: %w", err)
	}
	d, ok := root.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the document is not a JSON object")
	}
	if v, _ := d["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		return nil, fmt.Errorf("openapi %q: only 3.1 documents are read", v)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(docURL, root); err != nil {
		return nil, fmt.Errorf("load the document: %w", err)
	}
	compile := func(ptr ...string) (*jsonschema.Schema, error) {
		esc := make([]string, len(ptr))
		for i, p := range ptr {
			esc[i] = strings.NewReplacer("~", "~0", "/", "~1").Replace(p)
		}
		loc := docURL + "#/" + strings.Join(esc, "/")
		s, err := c.Compile(loc)
		if err != nil {
			return nil, fmt.Errorf("schema at /%s: %w", strings.Join(ptr, "/"), err)
		}
		return s, nil
	}
	v := &Validator{components: map[string]*jsonschema.Schema{}}
	comps, _ := d["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	for name := range schemas {
		if v.components[name], err = compile("components", "schemas", name); err != nil {
			return nil, err
		}
	}
	paths, _ := d["paths"].(map[string]any)
	for path, pi := range paths {
		item, ok := pi.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("paths[%s] is not an object", path)
		}
		for _, m := range methods {
			raw, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			op, err := newOperation(d, compile, strings.ToUpper(m), path, raw)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", strings.ToUpper(m), path, err)
			}
			v.ops = append(v.ops, op)
		}
	}
	sort.Slice(v.ops, func(i, j int) bool { return v.ops[i].String() < v.ops[j].String() })
	return v, nil
}

func newOperation(doc map[string]any, compile func(...string) (*jsonschema.Schema, error), method, path string, raw map[string]any) (*Operation, error) {
	op := &Operation{Method: method, Path: path, Raw: raw, segs: split(path), responses: map[string]map[string]*jsonschema.Schema{}}
	m := strings.ToLower(method)
	declared := map[string]bool{}
	list, _ := raw["parameters"].([]any)
	for i, p := range list {
		pm, ok := p.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("parameters[%d] is not an object", i)
		}
		if _, isRef := pm["$ref"]; isRef {
			return nil, fmt.Errorf("parameters[%d]: write parameters inline", i)
		}
		pr := param{}
		pr.name, _ = pm["name"].(string)
		pr.in, _ = pm["in"].(string)
		pr.required, _ = pm["required"].(bool)
		if pr.in != "path" && pr.in != "query" {
			return nil, fmt.Errorf("parameter %s: in %q is not read (path or query)", pr.name, pr.in)
		}
		if pr.in == "path" {
			if !pr.required {
				return nil, fmt.Errorf("path parameter %s must be required", pr.name)
			}
			declared[pr.name] = true
		}
		if sch, ok := pm["schema"].(map[string]any); ok {
			pr.typ, _ = sch["type"].(string)
			var err error
			if pr.schema, err = compile("paths", path, m, "parameters", strconv.Itoa(i), "schema"); err != nil {
				return nil, err
			}
		}
		op.params = append(op.params, pr)
	}
	for _, s := range op.segs {
		if name, ok := templateName(s); ok && !declared[name] {
			return nil, fmt.Errorf("path parameter %s is not declared", name)
		}
	}
	if rb, ok := raw["requestBody"].(map[string]any); ok {
		op.bodyReq, _ = rb["required"].(bool)
		content, _ := rb["content"].(map[string]any)
		if _, ok := content["application/json"]; !ok {
			return nil, fmt.Errorf("requestBody: only application/json bodies are read")
		}
		var err error
		if op.body, err = compile("paths", path, m, "requestBody", "content", "application/json", "schema"); err != nil {
			return nil, err
		}
	}
	resps, _ := raw["responses"].(map[string]any)
	if len(resps) == 0 {
		return nil, fmt.Errorf("no responses")
	}
	for status, r := range resps {
		ptr := []string{"paths", path, m, "responses", status}
		rm, _ := r.(map[string]any)
		if ref, ok := rm["$ref"].(string); ok {
			name, found := strings.CutPrefix(ref, "#/components/responses/")
			comps, _ := doc["components"].(map[string]any)
			all, _ := comps["responses"].(map[string]any)
			if rm, _ = all[name].(map[string]any); !found || rm == nil {
				return nil, fmt.Errorf("responses[%s]: %s does not resolve", status, ref)
			}
			ptr = []string{"components", "responses", name}
		}
		media := map[string]*jsonschema.Schema{}
		content, _ := rm["content"].(map[string]any)
		for mt := range content {
			if !isJSON(mt) {
				media[mt] = nil
				continue
			}
			s, err := compile(append(ptr, "content", mt, "schema")...)
			if err != nil {
				return nil, err
			}
			media[mt] = s
		}
		op.responses[status] = media
	}
	return op, nil
}

func isJSON(mediaType string) bool {
	return mediaType == "application/json" || strings.HasSuffix(mediaType, "+json")
}

func split(path string) []string {
	path = strings.Trim(path, "/")
	if path == "" {
		return nil
	}
	return strings.Split(path, "/")
}

func templateName(seg string) (string, bool) {
	if len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' {
		return seg[1 : len(seg)-1], true
	}
	return "", false
}

// Operations lists every operation, sorted by String.
func (v *Validator) Operations() []*Operation { return v.ops }

// Find returns the operation serving method on path (a request path; a
// trailing slash is ignored) and its path parameters. With no operation,
// pathKnown says whether the path has one for another method.
func (v *Validator) Find(method, path string) (op *Operation, params map[string]string, pathKnown bool) {
	segs := split(path)
	best := -1
	for _, o := range v.ops {
		ps, literal, ok := match(o.segs, segs)
		if !ok {
			continue
		}
		pathKnown = true
		if o.Method == method && literal > best {
			op, params, best = o, ps, literal
		}
	}
	return op, params, pathKnown
}

// match matches a request path against a template; literal counts the
// literal segments, so /a/b wins over /a/{x}.
func match(tmpl, segs []string) (map[string]string, int, bool) {
	if len(tmpl) != len(segs) {
		return nil, 0, false
	}
	ps := map[string]string{}
	literal := 0
	for i, t := range tmpl {
		if name, ok := templateName(t); ok {
			if segs[i] == "" {
				return nil, 0, false
			}
			ps[name] = segs[i]
			continue
		}
		if t != segs[i] {
			return nil, 0, false
		}
		literal++
	}
	return ps, literal, true
}

// Exchange is one request and its answer.
type Exchange struct {
	Method      string
	URL         *url.URL
	RequestBody []byte
	Status      int
	Header      http.Header
	Body        []byte
}

// Check validates x against the document. It returns the operation (nil
// when none serves the request: the caller judges such answers, see
// CheckSchema) and what does not match.
func (v *Validator) Check(x Exchange) (*Operation, error) {
	op, params, _ := v.Find(x.Method, x.URL.Path)
	if op == nil {
		return nil, nil
	}
	if err := op.CheckResponse(x.Status, x.Header.Get("Content-Type"), x.Body); err != nil {
		return op, err
	}
	if x.Status < 200 || x.Status > 299 {
		return op, nil
	}
	// A request the server accepted must be one the document describes.
	if err := op.CheckParams(params, x.URL.Query()); err != nil {
		return op, fmt.Errorf("answered %d to a request the document does not allow: %w", x.Status, err)
	}
	if err := op.CheckRequest(x.RequestBody); err != nil {
		return op, fmt.Errorf("answered %d to a request the document does not allow: %w", x.Status, err)
	}
	return op, nil
}

// CheckResponse validates one answer of the operation.
func (o *Operation) CheckResponse(status int, contentType string, body []byte) error {
	media, ok := o.responses[strconv.Itoa(status)]
	if !ok {
		media, ok = o.responses[strconv.Itoa(status/100)+"XX"]
	}
	if !ok {
		media, ok = o.responses["default"]
	}
	if !ok {
		return fmt.Errorf("status %d is not declared (declared: %s)", status, strings.Join(o.Statuses(), ", "))
	}
	if len(media) == 0 {
		if len(body) > 0 {
			return fmt.Errorf("status %d declares no content, but the answer has %d bytes", status, len(body))
		}
		return nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("status %d: content type %q: %w", status, contentType, err)
	}
	sch, ok := media[mt]
	if !ok {
		kinds := make([]string, 0, len(media))
		for k := range media {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		return fmt.Errorf("status %d: content type %s is not declared (declared: %s)", status, mt, strings.Join(kinds, ", "))
	}
	if sch == nil {
		return nil
	}
	if err := validate(sch, body); err != nil {
		return fmt.Errorf("status %d body: %w", status, err)
	}
	return nil
}

// CheckParams validates the path and query parameters of a request.
func (o *Operation) CheckParams(path map[string]string, query url.Values) error {
	for _, p := range o.params {
		var s string
		var present bool
		switch p.in {
		case "path":
			s, present = path[p.name]
		case "query":
			if vs, ok := query[p.name]; ok && len(vs) > 0 {
				s, present = vs[0], true
			}
		}
		if !present {
			if p.required {
				return fmt.Errorf("%s parameter %s is required", p.in, p.name)
			}
			continue
		}
		if p.schema == nil {
			continue
		}
		if err := p.schema.Validate(paramValue(p.typ, s)); err != nil {
			return fmt.Errorf("%s parameter %s %q: %w", p.in, p.name, s, err)
		}
	}
	return nil
}

// paramValue reads a parameter's text as the JSON value its schema's type
// expects; text that does not parse stays a string (and fails the type).
func paramValue(typ, s string) any {
	switch typ {
	case "integer", "number":
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return json.Number(s)
		}
	case "boolean":
		if b, err := strconv.ParseBool(s); err == nil {
			return b
		}
	}
	return s
}

// CheckRequest validates a request body. An operation without a request
// body takes whatever is sent (nothing reads it).
func (o *Operation) CheckRequest(body []byte) error {
	if o.body == nil {
		return nil
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if o.bodyReq {
			return fmt.Errorf("the request body is required")
		}
		return nil
	}
	if err := validate(o.body, body); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

// CheckSchema validates body against the component schema of that name.
func (v *Validator) CheckSchema(name string, body []byte) error {
	s, ok := v.components[name]
	if !ok {
		return fmt.Errorf("no schema %s in components", name)
	}
	return validate(s, body)
}

func validate(s *jsonschema.Schema, body []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := s.Validate(inst); err != nil {
		return err
	}
	return nil
}
