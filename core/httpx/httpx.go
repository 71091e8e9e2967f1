// Package httpx holds the response envelope and request decoding shared by
// every HTTP surface of the manager, so all of them answer alike:
// {"msg": ..., "code": 0, "data": ...} with a JSON content type.
package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// MaxBody is the largest request body accepted.
const MaxBody = 1 << 20

// Envelope is the shape of every response.
type Envelope struct {
	Msg  string `json:"msg"`
	Code int    `json:"code"`
	Data any    `json:"data"`
}

// Error is an error with the HTTP status and code to answer with.
// Code is the HTTP status, so clients can branch on either.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Errorf builds an *Error with the given HTTP status.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// BadRequest, NotFound, Conflict are the common cases.
func BadRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, format, args...)
}
func NotFound(format string, args ...any) *Error { return Errorf(http.StatusNotFound, format, args...) }
func Conflict(format string, args ...any) *Error { return Errorf(http.StatusConflict, format, args...) }

// OK writes a success envelope; data may be nil.
func OK(w http.ResponseWriter, data any) {
	write(w, http.StatusOK, Envelope{Msg: "success", Code: 0, Data: data})
}

// Fail writes an error envelope. An *Error keeps its status and message;
// anything else is a 500 whose message still names the cause.
func Fail(w http.ResponseWriter, err error) {
	var he *Error
	if !errors.As(err, &he) {
		he = &Error{Status: http.StatusInternalServerError, Msg: "internal error: " + err.Error()}
	}
	write(w, he.Status, Envelope{Msg: he.Msg, Code: he.Status, Data: nil})
}

// Respond writes env with status, for answers that are neither a plain
// success nor a plain error (a 503 that still carries data).
func Respond(w http.ResponseWriter, status int, env Envelope) { write(w, status, env) }

func write(w http.ResponseWriter, status int, env Envelope) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(env)
}

// Decode reads a JSON body of at most MaxBody bytes into v, refusing
// unknown fields and trailing data. Errors are *Error with a message that
// says what to fix.
func Decode(w http.ResponseWriter, r *http.Request, v any) error {
	return decode(w, r, v, MaxBody, true)
}

// DecodeLimit is Decode with a body of at most limit bytes.
func DecodeLimit(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	return decode(w, r, v, limit, true)
}

// DecodeTolerant is DecodeLimit that ignores unknown fields. It is for
// reports of agents, which are upgraded apart from the manager: an agent
// may send a field this manager does not know yet. What people send goes
// through Decode, so a misspelt field is refused instead of ignored.
func DecodeTolerant(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	return decode(w, r, v, limit, false)
}

// DecodeOptional is Decode for a body that may be left out: an empty one
// (or only white space) decodes nothing and reports false.
func DecodeOptional(w http.ResponseWriter, r *http.Request, v any) (bool, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return false, nil
	}
	buf, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return false, Errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", MaxBody)
	}
	if err != nil {
		return false, BadRequest("read request body: %v", err)
	}
	if len(bytes.TrimSpace(buf)) == 0 {
		return false, nil
	}
	r.Body = io.NopCloser(bytes.NewReader(buf))
	return true, decode(w, r, v, MaxBody, true)
}

func decode(w http.ResponseWriter, r *http.Request, v any, limit int64, strict bool) error {
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return Errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", limit)
		case errors.Is(err, io.EOF):
			return BadRequest("request body is empty: send a JSON object")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return BadRequest("request body ends in the middle of the JSON: send the whole object")
		case errors.As(err, &se):
			return BadRequest("request body is not valid JSON at byte %d: %v", se.Offset, err)
		case errors.As(err, &te):
			return BadRequest("field %q must be %s, not %s", te.Field, typeWords(te.Type), te.Value)
		default:
			var he *Error
			if errors.As(err, &he) {
				return he
			}
			if name, ok := unknownField(err); ok {
				return BadRequest("unknown field %q in request body%s", name, suggest(name, reflect.TypeOf(v)))
			}
			return BadRequest("request body: %v", err)
		}
	}
	if dec.More() {
		return BadRequest("request body has data after the JSON object")
	}
	return nil
}

// unknownField reads the field name out of encoding/json's refusal of an
// unknown field (it has no error type of its own).
func unknownField(err error) (string, bool) {
	const prefix = "json: unknown field "
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return "", false
	}
	name, uerr := strconv.Unquote(strings.TrimPrefix(msg, prefix))
	if uerr != nil {
		return "", false
	}
	return name, true
}

// suggest names the field of t (at any depth) that name was most likely
// meant to be: the same but for case, or one or two letters off.
func suggest(name string, t reflect.Type) string {
	best, bestDist := "", 3
	for _, f := range jsonFields(t, map[reflect.Type]bool{}) {
		d := editDistance(strings.ToLower(name), strings.ToLower(f))
		if d < bestDist {
			best, bestDist = f, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(": did you mean %q?", best)
}

// jsonFields lists the JSON names of the fields of t and of the structs
// it holds.
func jsonFields(t reflect.Type, seen map[reflect.Type]bool) []string {
	for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map) {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct || seen[t] {
		return nil
	}
	seen[t] = true
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if !f.Anonymous {
			out = append(out, name)
		}
		out = append(out, jsonFields(f.Type, seen)...)
	}
	return out
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// typeWords names a Go type the way a JSON client thinks of it.
func typeWords(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

// TimeLayout is the API's time format: UTC with milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000+00:00"

// Time marshals as TimeLayout in UTC; the zero time as null.
type Time struct{ time.Time }

// NewTime converts a possibly nil time.
func NewTime(t *time.Time) *Time {
	if t == nil || t.IsZero() {
		return nil
	}
	return &Time{*t}
}

func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.UTC().Format(TimeLayout) + `"`), nil
}

func (t *Time) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		t.Time = time.Time{}
		return nil
	}
	v, err := time.Parse(TimeLayout, s)
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}
