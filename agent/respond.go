package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/dorismanager/dorismanager/agent/wire"
)

// The agent answers in the manager's envelope ({"msg","code","data"}) but
// keeps its own tiny writer so the daemon does not depend on core packages.

type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func ok(w http.ResponseWriter, data any) {
	writeEnv(w, http.StatusOK, wire.Envelope[any]{Msg: "success", Code: 0, Data: data})
}

func fail(w http.ResponseWriter, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		he = &httpError{http.StatusInternalServerError, err.Error()}
	}
	writeEnv(w, he.status, wire.Envelope[any]{Msg: he.msg, Code: he.status})
}

func writeEnv(w http.ResponseWriter, status int, env any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(env)
}

// decode reads a JSON body of at most limit bytes.
func decode(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", limit)}
		}
		return badRequest("request body: %v", err)
	}
	return nil
}
