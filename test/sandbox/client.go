package sandbox

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/dorismanager/dorismanager/test/deadline"
)

// Client calls the manager's REST API the way an outside client does.
type Client struct {
	URL   string
	Token string
	HTTP  *http.Client
}

// Client returns an API client for the running manager: HTTPS, trusting
// the manager's CA bundle (read now, so a client made after a CA
// rotation trusts the new CA).
func (s *Sandbox) Client() *Client {
	pool := x509.NewCertPool()
	if b, err := s.CABundle(); err == nil {
		pool.AppendCertsFromPEM(b)
	}
	return &Client{URL: s.URL, Token: s.Token, HTTP: &http.Client{Timeout: deadline.D(60 * time.Second),
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
}

// Reply is one API answer.
type Reply struct {
	Status int             // HTTP status
	Code   int             `json:"code"`
	Msg    string          `json:"msg"`
	Data   json.RawMessage `json:"data"`
}

// Decode unmarshals Data into v.
func (r Reply) Decode(v any) error { return json.Unmarshal(r.Data, v) }

// Call sends body (a string is sent as is, anything else as JSON).
func (c *Client) Call(ctx context.Context, method, path string, body any) (Reply, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return Reply{}, err
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, rd)
	if err != nil {
		return Reply{}, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return Reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Reply{}, err
	}
	r := Reply{Status: resp.StatusCode}
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("%s %s: answer is not an envelope (%d): %s", method, path, resp.StatusCode, raw)
	}
	r.Status = resp.StatusCode
	return r, nil
}

// OK is Call that wants code 0.
func (c *Client) OK(ctx context.Context, method, path string, body any) (Reply, error) {
	r, err := c.Call(ctx, method, path, body)
	if err != nil {
		return r, err
	}
	if r.Code != 0 {
		return r, fmt.Errorf("%s %s: code %d (HTTP %d): %s", method, path, r.Code, r.Status, r.Msg)
	}
	return r, nil
}

// Task is a task as currentTasks and task/info show it.
type Task struct {
	ID          int64   `json:"id"`
	ProcessID   int64   `json:"processId"`
	Host        string  `json:"host"`
	ProcessType string  `json:"processType"`
	TaskType    string  `json:"taskType"`
	Status      string  `json:"status"`
	StartTime   *string `json:"startTime"`
	EndTime     *string `json:"endTime"`
	ExecutorID  *string `json:"executorId"`
	Result      *string `json:"result"`
	Finish      string  `json:"finish"`
	TaskRole    *string `json:"taskRole"`
	Response    *string `json:"response"`
	Skip        string  `json:"skip"`
}

// Str dereferences an optional string field.
func Str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Process is currentProcess's data.
type Process struct {
	ID          int64  `json:"id"`
	ClusterID   int64  `json:"clusterId"`
	ProcessType string `json:"processType"`
	ProcessStep int    `json:"processStep"`
	Finish      string `json:"finish"`
	Status      string `json:"status"`
	// PackageUpstreamBytes: what the manager pulled from package URLs.
	PackageUpstreamBytes int64 `json:"packageUpstreamBytes"`
}

// CurrentTasks lists the current step's tasks.
func (c *Client) CurrentTasks(ctx context.Context, processID int64) ([]Task, error) {
	r, err := c.OK(ctx, http.MethodGet, fmt.Sprintf("/api/process/%d/currentTasks", processID), nil)
	if err != nil {
		return nil, err
	}
	var ts []Task
	return ts, r.Decode(&ts)
}

// WaitStep polls currentTasks (as any client of this API does) until every
// task of the current step has ended, calling onChange for each task whose
// status changed. It returns the final tasks.
func (c *Client) WaitStep(ctx context.Context, processID int64, onChange func(Task)) ([]Task, error) {
	seen := map[int64]string{}
	since := time.Now()
	for {
		ts, err := c.CurrentTasks(ctx, processID)
		if err != nil {
			return nil, err
		}
		done := len(ts) > 0
		for _, t := range ts {
			if seen[t.ID] != t.Status {
				seen[t.ID] = t.Status
				if onChange != nil {
					onChange(t)
				}
			}
			if t.Status != "SUCCESS" && t.Status != "FAILURE" {
				done = false
			}
		}
		if done {
			return ts, nil
		}
		select {
		case <-ctx.Done():
			return ts, waitedErr(ctx, fmt.Sprintf("waiting for every task of process %d's current step to end", processID), since, ts)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Failed returns the tasks that ended in FAILURE and were not skipped.
func Failed(ts []Task) []Task {
	var out []Task
	for _, t := range ts {
		if t.Status == "FAILURE" && t.Skip != "YES" {
			out = append(out, t)
		}
	}
	return out
}

// Describe formats tasks for an error message.
func Describe(ts []Task) string {
	var b bytes.Buffer
	for _, t := range ts {
		fmt.Fprintf(&b, "\n  task %d %s on %s: %s: %s", t.ID, t.TaskType, t.Host, t.Status, trimLines(Str(t.Response), 15))
	}
	return b.String()
}
