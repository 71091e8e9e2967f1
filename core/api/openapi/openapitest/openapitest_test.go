package openapitest

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

const doc = `{
  "openapi": "3.1.0",
  "info": {"title": "t", "version": "1"},
  "paths": {
    "/a/{id}": {"get": {
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}},
                     {"name": "q", "in": "query", "required": true, "schema": {"type": "boolean"}}],
      "responses": {
        "200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
        "4XX": {"description": "err", "content": {"application/json": {"schema": {"type": "object", "required": ["msg"]}}}}}}},
    "/a/b": {"get": {"responses": {"200": {"description": "ok", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    "/root/": {"post": {
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {"name": {"type": "string"}}}}}},
      "responses": {"204": {"description": "made"}, "default": {"description": "err", "content": {"application/json": {"schema": {"type": "object"}}}}}}}
  },
  "components": {"schemas": {"Thing": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"], "additionalProperties": false}}}
}`

func exchange(method, target string, status int, ctype, body string) Exchange {
	u, _ := url.Parse(target)
	h := http.Header{}
	if ctype != "" {
		h.Set("Content-Type", ctype)
	}
	return Exchange{Method: method, URL: u, Status: status, Header: h, Body: []byte(body)}
}

func TestCheck(t *testing.T) {
	v, err := New([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(v.Operations()); got != 3 {
		t.Fatalf("%d operations", got)
	}
	withBody := func(x Exchange, body string) Exchange { x.RequestBody = []byte(body); return x }
	cases := []struct {
		name string
		x    Exchange
		op   string // "" when no operation serves it
		ok   bool
	}{
		{"good", exchange("GET", "/a/7?q=true", 200, "application/json; charset=utf-8", `{"id":7}`), "GET /a/{id}", true},
		{"literal wins over template", exchange("GET", "/a/b", 200, "text/plain", "hi"), "GET /a/b", true},
		{"extra field", exchange("GET", "/a/7?q=true", 200, "application/json", `{"id":7,"x":1}`), "GET /a/{id}", false},
		{"wrong type", exchange("GET", "/a/7?q=true", 200, "application/json", `{"id":"7"}`), "GET /a/{id}", false},
		{"not JSON", exchange("GET", "/a/7?q=true", 200, "application/json", `{"id":`), "GET /a/{id}", false},
		{"undeclared content type", exchange("GET", "/a/7?q=true", 200, "text/html", `{"id":7}`), "GET /a/{id}", false},
		{"undeclared status", exchange("GET", "/a/7?q=true", 500, "application/json", `{"msg":"x"}`), "GET /a/{id}", false},
		{"status range", exchange("GET", "/a/7", 404, "application/json", `{"msg":"x"}`), "GET /a/{id}", true},
		{"status range schema", exchange("GET", "/a/7", 404, "application/json", `{}`), "GET /a/{id}", false},
		{"path param refused yet 200", exchange("GET", "/a/0?q=true", 200, "application/json", `{"id":0}`), "GET /a/{id}", false},
		{"path param not a number yet 200", exchange("GET", "/a/x?q=true", 200, "application/json", `{"id":0}`), "GET /a/{id}", false},
		{"missing required query yet 200", exchange("GET", "/a/7", 200, "application/json", `{"id":7}`), "GET /a/{id}", false},
		{"query of the wrong type yet 200", exchange("GET", "/a/7?q=maybe", 200, "application/json", `{"id":7}`), "GET /a/{id}", false},
		{"trailing slash, body", withBody(exchange("POST", "/root", 204, "", ""), `{"name":"n"}`), "POST /root/", true},
		{"content where none declared", withBody(exchange("POST", "/root/", 204, "text/plain", "x"), `{"name":"n"}`), "POST /root/", false},
		{"refused body accepted", withBody(exchange("POST", "/root/", 204, "", ""), `{"name":"n","x":1}`), "POST /root/", false},
		{"required body missing yet accepted", exchange("POST", "/root/", 204, "", ""), "POST /root/", false},
		{"bad body refused", withBody(exchange("POST", "/root/", 400, "application/json", `{"msg":"x"}`), `{"x":1}`), "POST /root/", true},
		{"unknown path", exchange("GET", "/nothing", 404, "", ""), "", true},
		{"unknown method", exchange("DELETE", "/a/7", 405, "", ""), "", true},
	}
	for _, c := range cases {
		op, err := v.Check(c.x)
		name := ""
		if op != nil {
			name = op.String()
		}
		if name != c.op || (err == nil) != c.ok {
			t.Errorf("%s: operation %q, error %v; want %q, ok %v", c.name, name, err, c.op, c.ok)
		}
	}
	if _, _, known := v.Find("DELETE", "/a/7"); !known {
		t.Error("the path of /a/{id} is not known for another method")
	}
	if err := v.CheckSchema("Thing", []byte(`{"id":1}`)); err != nil {
		t.Error(err)
	}
	if err := v.CheckSchema("Thing", []byte(`{}`)); err == nil {
		t.Error("a Thing without id passed")
	}
}

func TestNewRefusesBrokenDocuments(t *testing.T) {
	for name, change := range map[string][2]string{
		"3.0":                   {`"openapi": "3.1.0"`, `"openapi": "3.0.3"`},
		"unresolved ref":        {`#/components/schemas/Thing"`, `#/components/schemas/Nothing"`},
		"undeclared path param": {`"/a/b":`, `"/a/b/{c}":`},
		"bad schema":            {`"type": "boolean"`, `"type": "bool"`},
	} {
		broken := strings.Replace(doc, change[0], change[1], 1)
		if broken == doc {
			t.Fatalf("%s: the change does not apply", name)
		}
		if _, err := New([]byte(broken)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestMiddlewareReportsTheExchange(t *testing.T) {
	var got Exchange
	h := Middleware(func(x Exchange) { got = x })(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 3)
		n, _ := r.Body.Read(b)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusTeapot)
		w.Write(b[:n])
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("PUT", "/x?y=1", strings.NewReader("abc")))
	if got.Method != "PUT" || got.URL.RequestURI() != "/x?y=1" || string(got.RequestBody) != "abc" || got.Status != 418 ||
		got.Header.Get("Content-Type") != "text/plain" || string(got.Body) != "abc" || w.Body.String() != "abc" {
		t.Fatalf("%+v, answer %q", got, w.Body.String())
	}
}
