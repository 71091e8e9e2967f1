package sdk

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	rolepb "github.com/dorismanager/dorismanager/sdk/proto"
)

// hostServer serves one call's Host to the plugin (manager side). Every
// handler also ends when the call itself ends, even if the plugin passed a
// context that does not.
type hostServer struct {
	rolepb.UnimplementedHostServer
	host    Host
	callCtx context.Context
}

func (s *hostServer) ctx(in context.Context) (context.Context, func(), error) {
	if s.host == nil {
		return nil, nil, status.Error(codes.FailedPrecondition, "this call has no host")
	}
	ctx, cancel := context.WithCancel(in)
	stop := context.AfterFunc(s.callCtx, cancel)
	return ctx, func() { stop(); cancel() }, nil
}

func (s *hostServer) Exec(in context.Context, req *rolepb.ExecRequest) (*rolepb.ExecResponse, error) {
	ctx, done, err := s.ctx(in)
	if err != nil {
		return nil, err
	}
	defer done()
	res, err := s.host.Exec(ctx, commandFromPB(req))
	if err != nil {
		return nil, hostErrToStatus(err)
	}
	return &rolepb.ExecResponse{ExitCode: int32(res.ExitCode), Output: res.Output, LogPath: res.LogPath,
		Pid: int64(res.Pid), Running: res.Running}, nil
}

func (s *hostServer) WriteFile(in context.Context, req *rolepb.WriteFileRequest) (*rolepb.Empty, error) {
	ctx, done, err := s.ctx(in)
	if err != nil {
		return nil, err
	}
	defer done()
	if err := s.host.WriteFile(ctx, req.GetPath(), req.GetData(), req.GetMode()); err != nil {
		return nil, hostErrToStatus(err)
	}
	return &rolepb.Empty{}, nil
}

func (s *hostServer) ReadFile(in context.Context, req *rolepb.ReadFileRequest) (*rolepb.ReadFileResponse, error) {
	ctx, done, err := s.ctx(in)
	if err != nil {
		return nil, err
	}
	defer done()
	data, err := s.host.ReadFile(ctx, req.GetPath(), req.GetMaxBytes())
	if err != nil {
		return nil, hostErrToStatus(err)
	}
	return &rolepb.ReadFileResponse{Data: data}, nil
}

func (s *hostServer) Download(in context.Context, req *rolepb.DownloadRequest) (*rolepb.DownloadResponse, error) {
	ctx, done, err := s.ctx(in)
	if err != nil {
		return nil, err
	}
	defer done()
	res, err := s.host.Download(ctx, Download{URL: req.GetUrl(), SHA256: req.GetSha256(), SHA512: req.GetSha512(), Dest: req.GetDest(), Unpack: req.GetUnpack()})
	if err != nil {
		return nil, hostErrToStatus(err)
	}
	return &rolepb.DownloadResponse{Path: res.Path, Sha256: res.SHA256, Sha512: res.SHA512, Bytes: res.Bytes, Cached: res.Cached}, nil
}

func (s *hostServer) Query(in context.Context, req *rolepb.QueryRequest) (*rolepb.QueryResponse, error) {
	ctx, done, err := s.ctx(in)
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := s.host.Query(ctx, req.GetFe(), req.GetSql())
	if err != nil {
		return nil, hostErrToStatus(err)
	}
	return rowsToPB(rows), nil
}

func (s *hostServer) HTTPGet(in context.Context, req *rolepb.HTTPGetRequest) (*rolepb.HTTPGetResponse, error) {
	ctx, done, err := s.ctx(in)
	if err != nil {
		return nil, err
	}
	defer done()
	resp, err := s.host.HTTPGet(ctx, req.GetUrl())
	if err != nil {
		return nil, hostErrToStatus(err)
	}
	return &rolepb.HTTPGetResponse{Status: int32(resp.Status), Body: resp.Body}, nil
}

func (s *hostServer) HTTPPost(in context.Context, req *rolepb.HTTPPostRequest) (*rolepb.HTTPGetResponse, error) {
	ctx, done, err := s.ctx(in)
	if err != nil {
		return nil, err
	}
	defer done()
	resp, err := s.host.HTTPPost(ctx, req.GetUrl(), req.GetContentType(), req.GetBody())
	if err != nil {
		return nil, hostErrToStatus(err)
	}
	return &rolepb.HTTPGetResponse{Status: int32(resp.Status), Body: resp.Body}, nil
}

func (s *hostServer) Log(_ context.Context, req *rolepb.LogRequest) (*rolepb.Empty, error) {
	if s.host == nil {
		return nil, status.Error(codes.FailedPrecondition, "this call has no host")
	}
	s.host.Logf("%s", req.GetMessage())
	return &rolepb.Empty{}, nil
}

// hostClient is the Host a role sees on the plugin side. It dials the
// manager's Host server on first use, so calls that never touch the host
// cost no connection.
type hostClient struct {
	broker *plugin.GRPCBroker
	id     uint32

	mu     sync.Mutex
	conn   *grpc.ClientConn
	client rolepb.HostClient
	err    error
}

var _ Host = (*hostClient)(nil)

func (h *hostClient) get() (rolepb.HostClient, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.client == nil && h.err == nil {
		conn, err := h.broker.Dial(h.id)
		if err != nil {
			h.err = fmt.Errorf("connect to the manager's host service: %w", err)
		} else {
			h.conn, h.client = conn, rolepb.NewHostClient(conn)
		}
	}
	return h.client, h.err
}

func (h *hostClient) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn != nil {
		_ = h.conn.Close()
	}
	h.err = errors.New("host used after its call returned")
	h.client = nil
}

// Exec implements Host.
func (h *hostClient) Exec(ctx context.Context, cmd Command) (ExecResult, error) {
	c, err := h.get()
	if err != nil {
		return ExecResult{}, err
	}
	resp, err := c.Exec(ctx, commandToPB(cmd))
	if err != nil {
		return ExecResult{}, hostErrFromStatus("exec", err)
	}
	return ExecResult{ExitCode: int(resp.GetExitCode()), Output: resp.GetOutput(), LogPath: resp.GetLogPath(),
		Pid: int(resp.GetPid()), Running: resp.GetRunning()}, nil
}

// WriteFile implements Host.
func (h *hostClient) WriteFile(ctx context.Context, path string, data []byte, mode uint32) error {
	c, err := h.get()
	if err != nil {
		return err
	}
	_, err = c.WriteFile(ctx, &rolepb.WriteFileRequest{Path: path, Data: data, Mode: mode})
	return hostErrFromStatus("write file", err)
}

// ReadFile implements Host.
func (h *hostClient) ReadFile(ctx context.Context, path string, maxBytes int64) ([]byte, error) {
	c, err := h.get()
	if err != nil {
		return nil, err
	}
	resp, err := c.ReadFile(ctx, &rolepb.ReadFileRequest{Path: path, MaxBytes: maxBytes})
	if err != nil {
		return nil, hostErrFromStatus("read file", err)
	}
	return resp.GetData(), nil
}

// Download implements Host.
func (h *hostClient) Download(ctx context.Context, d Download) (DownloadResult, error) {
	c, err := h.get()
	if err != nil {
		return DownloadResult{}, err
	}
	resp, err := c.Download(ctx, &rolepb.DownloadRequest{Url: d.URL, Sha256: d.SHA256, Sha512: d.SHA512, Dest: d.Dest, Unpack: d.Unpack})
	if err != nil {
		return DownloadResult{}, hostErrFromStatus("download", err)
	}
	return DownloadResult{Path: resp.GetPath(), SHA256: resp.GetSha256(), SHA512: resp.GetSha512(), Bytes: resp.GetBytes(), Cached: resp.GetCached()}, nil
}

// Query implements Host.
func (h *hostClient) Query(ctx context.Context, fe string, sql string) (Rows, error) {
	c, err := h.get()
	if err != nil {
		return Rows{}, err
	}
	resp, err := c.Query(ctx, &rolepb.QueryRequest{Fe: fe, Sql: sql})
	if err != nil {
		return Rows{}, hostErrFromStatus("query", err)
	}
	return rowsFromPB(resp), nil
}

// HTTPGet implements Host.
func (h *hostClient) HTTPGet(ctx context.Context, url string) (HTTPResponse, error) {
	c, err := h.get()
	if err != nil {
		return HTTPResponse{}, err
	}
	resp, err := c.HTTPGet(ctx, &rolepb.HTTPGetRequest{Url: url})
	if err != nil {
		return HTTPResponse{}, hostErrFromStatus("http get", err)
	}
	return HTTPResponse{Status: int(resp.GetStatus()), Body: resp.GetBody()}, nil
}

// Logf implements Host. A line that cannot be delivered is dropped: the
// task log is best effort, the step's outcome is not.
// HTTPPost implements Host.
func (h *hostClient) HTTPPost(ctx context.Context, url, contentType string, body []byte) (HTTPResponse, error) {
	c, err := h.get()
	if err != nil {
		return HTTPResponse{}, err
	}
	resp, err := c.HTTPPost(ctx, &rolepb.HTTPPostRequest{Url: url, ContentType: contentType, Body: body})
	if err != nil {
		return HTTPResponse{}, hostErrFromStatus("http post", err)
	}
	return HTTPResponse{Status: int(resp.GetStatus()), Body: resp.GetBody()}, nil
}

func (h *hostClient) Logf(format string, args ...any) {
	c, err := h.get()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = c.Log(ctx, &rolepb.LogRequest{Message: fmt.Sprintf(format, args...)})
}
