package httpx

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestDecodeErrorsSayWhatToFix(t *testing.T) {
	type body struct {
		ProcessID    int64    `json:"processId"`
		Hosts        []string `json:"hosts"`
		InstallInfos []struct {
			Role string `json:"role"`
		} `json:"installInfos"`
	}
	cases := []struct {
		name, body string
		status     int
		want       string
	}{
		{"ok", `{"processId":1,"hosts":["a"]}`, 0, ""},
		{"empty", ``, 400, "empty"},
		{"truncated", `{"processId":1,`, 400, "middle of the JSON"},
		{"syntax", `{"processId":}`, 400, "not valid JSON"},
		{"wrong type", `{"processId":"x"}`, 400, `"processId" must be a whole number`},
		{"wrong type list", `{"hosts":"a"}`, 400, `"hosts" must be a list`},
		{"trailing", `{"processId":1} {"x":2}`, 400, "after the JSON"},
		{"too large", `{"hosts":["` + strings.Repeat("a", MaxBody) + `"]}`, 413, "larger than"},
		{"unknown field", `{"processId":1,"instalInfos":[]}`, 400, `unknown field "instalInfos" in request body: did you mean "installInfos"?`},
		{"unknown nested field", `{"installInfos":[{"rolle":"FE"}]}`, 400, `unknown field "rolle" in request body: did you mean "role"?`},
		{"unknown field, nothing close", `{"zzzzzzzz":1}`, 400, `unknown field "zzzzzzzz" in request body`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(c.body))
			var b body
			err := Decode(httptest.NewRecorder(), r, &b)
			if c.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var he *Error
			if !errors.As(err, &he) || he.Status != c.status || !strings.Contains(he.Msg, c.want) {
				t.Fatalf("got %v, want status %d with %q", err, c.status, c.want)
			}
		})
	}
}

func TestUnknownFieldWithoutSuggestion(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"zzzzzzzz":1}`))
	var b struct {
		ProcessID int64 `json:"processId"`
	}
	err := Decode(httptest.NewRecorder(), r, &b)
	if err == nil || err.Error() != `unknown field "zzzzzzzz" in request body` {
		t.Fatalf("got %v; want the field named and no guess", err)
	}
}

// Agents are upgraded apart from the manager: their reports may carry
// fields this manager does not know.
func TestDecodeTolerantIgnoresUnknownFields(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"processId":3,"newerField":true}`))
	var b struct {
		ProcessID int64 `json:"processId"`
	}
	if err := DecodeTolerant(httptest.NewRecorder(), r, &b, MaxBody); err != nil || b.ProcessID != 3 {
		t.Fatalf("got %v, %+v", err, b)
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"abc", "abc", 0}, {"instalinfos", "installinfos", 1}, {"hots", "host", 2}, {"", "ab", 2}, {"kitten", "sitting", 3}} {
		if got := editDistance(c.a, c.b); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestEnvelopes(t *testing.T) {
	w := httptest.NewRecorder()
	Fail(w, errors.New("disk full"))
	var env Envelope
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
		t.Fatal(err)
	}
	if w.Code != 500 || env.Code != 500 || !strings.Contains(env.Msg, "disk full") {
		t.Fatalf("a plain error must keep its cause: %d %+v", w.Code, env)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("content type %q", ct)
	}
	w = httptest.NewRecorder()
	OK(w, nil)
	if got := strings.TrimSpace(w.Body.String()); got != `{"msg":"success","code":0,"data":null}` {
		t.Fatalf("success envelope %s", got)
	}
}

func TestTimeFormat(t *testing.T) {
	at := time.Date(2021, 8, 10, 19, 7, 34, 0, time.FixedZone("CST", 8*3600))
	b, err := json.Marshal(NewTime(&at))
	if err != nil || string(b) != `"2021-08-10T11:07:34.000+00:00"` {
		t.Fatalf("got %s, %v", b, err)
	}
	var back Time
	if err := json.Unmarshal(b, &back); err != nil || !back.Equal(at) {
		t.Fatalf("round trip: %v, %v", back, err)
	}
	if NewTime(nil) != nil || NewTime(&time.Time{}) != nil {
		t.Fatal("a missing time must be null")
	}
}
