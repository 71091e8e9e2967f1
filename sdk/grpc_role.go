package sdk

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	rolepb "github.com/dorismanager/dorismanager/sdk/proto"
)

// roleServer serves a Role on the plugin side.
type roleServer struct {
	rolepb.UnimplementedRoleServer
	impl   Role
	broker *plugin.GRPCBroker
}

type roleMethod func(Role, context.Context, Host, Request) (Result, error)

func (s *roleServer) Info(ctx context.Context, _ *rolepb.InfoRequest) (out *rolepb.InfoResponse, _ error) {
	defer func() {
		if r := recover(); r != nil {
			out = &rolepb.InfoResponse{Failure: failureToPB(panicFailure("Info", r))}
		}
	}()
	info, err := s.impl.Info(ctx)
	if err != nil {
		return &rolepb.InfoResponse{Failure: failureToPB(AsFailure(err))}, nil
	}
	return infoToPB(info), nil
}

func (s *roleServer) call(ctx context.Context, name string, in *rolepb.RoleRequest, m roleMethod) (out *rolepb.RoleResponse, _ error) {
	h := &hostClient{broker: s.broker, id: in.GetHostBrokerId()}
	defer h.close()
	// A panicking role must fail its call, not take the plugin process
	// (and every other call in flight) down with it.
	defer func() {
		if r := recover(); r != nil {
			out = &rolepb.RoleResponse{Failure: failureToPB(panicFailure(name, r))}
		}
	}()
	res, err := m(s.impl, ctx, h, requestFromPB(in.GetRequest()))
	if err != nil {
		return &rolepb.RoleResponse{Failure: failureToPB(AsFailure(err))}, nil
	}
	return &rolepb.RoleResponse{Result: resultToPB(res)}, nil
}

func panicFailure(method string, r any) *Failure {
	return &Failure{Summary: fmt.Sprintf("role plugin panicked in %s: %v", method, r), Detail: string(debug.Stack())}
}

func (s *roleServer) Precheck(ctx context.Context, in *rolepb.RoleRequest) (*rolepb.RoleResponse, error) {
	return s.call(ctx, "Precheck", in, Role.Precheck)
}
func (s *roleServer) Install(ctx context.Context, in *rolepb.RoleRequest) (*rolepb.RoleResponse, error) {
	return s.call(ctx, "Install", in, Role.Install)
}
func (s *roleServer) Configure(ctx context.Context, in *rolepb.RoleRequest) (*rolepb.RoleResponse, error) {
	return s.call(ctx, "Configure", in, Role.Configure)
}
func (s *roleServer) Start(ctx context.Context, in *rolepb.RoleRequest) (*rolepb.RoleResponse, error) {
	return s.call(ctx, "Start", in, Role.Start)
}
func (s *roleServer) Stop(ctx context.Context, in *rolepb.RoleRequest) (*rolepb.RoleResponse, error) {
	return s.call(ctx, "Stop", in, Role.Stop)
}
func (s *roleServer) Status(ctx context.Context, in *rolepb.RoleRequest) (*rolepb.RoleResponse, error) {
	return s.call(ctx, "Status", in, Role.Status)
}
func (s *roleServer) Remove(ctx context.Context, in *rolepb.RoleRequest) (*rolepb.RoleResponse, error) {
	return s.call(ctx, "Remove", in, Role.Remove)
}
func (s *roleServer) Register(ctx context.Context, in *rolepb.RoleRequest) (*rolepb.RoleResponse, error) {
	return s.call(ctx, "Register", in, optional(CapMembership, "Register", func(m Member) roleMethod { return adapt(m.Register) }))
}
func (s *roleServer) Unregister(ctx context.Context, in *rolepb.RoleRequest) (*rolepb.RoleResponse, error) {
	return s.call(ctx, "Unregister", in, optional(CapMembership, "Unregister", func(m Member) roleMethod { return adapt(m.Unregister) }))
}
func (s *roleServer) Upgrade(ctx context.Context, in *rolepb.RoleRequest) (*rolepb.RoleResponse, error) {
	return s.call(ctx, "Upgrade", in, optional(CapUpgrade, "Upgrade", func(u Upgrader) roleMethod { return adapt(u.Upgrade) }))
}
func (s *roleServer) Reconfigure(ctx context.Context, in *rolepb.RoleRequest) (*rolepb.RoleResponse, error) {
	return s.call(ctx, "Reconfigure", in, optional(CapReconfigure, "Reconfigure", func(r Reconfigurer) roleMethod { return adapt(r.Reconfigure) }))
}

type boundMethod func(context.Context, Host, Request) (Result, error)

func adapt(m boundMethod) roleMethod {
	return func(_ Role, ctx context.Context, h Host, req Request) (Result, error) { return m(ctx, h, req) }
}

// optional serves a method of an optional interface T: a role that does not
// implement it answers a Failure naming the capability.
func optional[T any](capability, method string, bind func(T) roleMethod) roleMethod {
	return func(r Role, ctx context.Context, h Host, req Request) (Result, error) {
		impl, ok := r.(T)
		if !ok {
			return Result{}, Failf("%s is not supported by the %s plugin (it does not announce capability %q)", method, req.Node.Role, capability)
		}
		return bind(impl)(r, ctx, h, req)
	}
}

// RoleClient is the manager's side of a role plugin: a Role whose calls
// cross the gRPC boundary. For each call it serves the given Host through
// the GRPCBroker until the call returns.
//
// A plugin-reported failure comes back as *Failure. Any other error is a
// transport error (the plugin exited, the context ended).
type RoleClient struct {
	client rolepb.RoleClient
	broker *plugin.GRPCBroker
	exited context.Context
}

var _ Remote = (*RoleClient)(nil)

// Exited is closed when the plugin process has exited.
func (c *RoleClient) Exited() <-chan struct{} { return c.exited.Done() }

// Info implements Role.
func (c *RoleClient) Info(ctx context.Context) (Info, error) {
	resp, err := c.client.Info(ctx, &rolepb.InfoRequest{})
	if err != nil {
		return Info{}, fmt.Errorf("role plugin Info: %w", err)
	}
	if f := resp.GetFailure(); f != nil {
		return Info{}, failureFromPB(f)
	}
	return infoFromPB(resp), nil
}

type roleRPC func(context.Context, *rolepb.RoleRequest, ...grpc.CallOption) (*rolepb.RoleResponse, error)

func (c *RoleClient) call(ctx context.Context, name string, rpc roleRPC, h Host, req Request) (Result, error) {
	id := c.broker.NextId()
	hs := &hostServe{host: h, callCtx: ctx}
	go c.broker.AcceptAndServe(id, hs.newServer)
	defer hs.stop()
	resp, err := rpc(ctx, &rolepb.RoleRequest{HostBrokerId: id, Request: requestToPB(req)})
	if err != nil {
		return Result{}, fmt.Errorf("role plugin %s: %w", name, err)
	}
	if f := resp.GetFailure(); f != nil {
		return Result{}, failureFromPB(f)
	}
	return resultFromPB(resp.GetResult()), nil
}

// Precheck implements Role.
func (c *RoleClient) Precheck(ctx context.Context, h Host, req Request) (Result, error) {
	return c.call(ctx, "Precheck", c.client.Precheck, h, req)
}

// Install implements Role.
func (c *RoleClient) Install(ctx context.Context, h Host, req Request) (Result, error) {
	return c.call(ctx, "Install", c.client.Install, h, req)
}

// Configure implements Role.
func (c *RoleClient) Configure(ctx context.Context, h Host, req Request) (Result, error) {
	return c.call(ctx, "Configure", c.client.Configure, h, req)
}

// Start implements Role.
func (c *RoleClient) Start(ctx context.Context, h Host, req Request) (Result, error) {
	return c.call(ctx, "Start", c.client.Start, h, req)
}

// Stop implements Role.
func (c *RoleClient) Stop(ctx context.Context, h Host, req Request) (Result, error) {
	return c.call(ctx, "Stop", c.client.Stop, h, req)
}

// Status implements Role.
func (c *RoleClient) Status(ctx context.Context, h Host, req Request) (Result, error) {
	return c.call(ctx, "Status", c.client.Status, h, req)
}

// Remove implements Role.
func (c *RoleClient) Remove(ctx context.Context, h Host, req Request) (Result, error) {
	return c.call(ctx, "Remove", c.client.Remove, h, req)
}

// Register implements Member.
func (c *RoleClient) Register(ctx context.Context, h Host, req Request) (Result, error) {
	return c.call(ctx, "Register", c.client.Register, h, req)
}

// Unregister implements Member.
func (c *RoleClient) Unregister(ctx context.Context, h Host, req Request) (Result, error) {
	return c.call(ctx, "Unregister", c.client.Unregister, h, req)
}

// Upgrade implements Upgrader.
func (c *RoleClient) Upgrade(ctx context.Context, h Host, req Request) (Result, error) {
	return c.call(ctx, "Upgrade", c.client.Upgrade, h, req)
}

// Reconfigure implements Reconfigurer.
func (c *RoleClient) Reconfigure(ctx context.Context, h Host, req Request) (Result, error) {
	return c.call(ctx, "Reconfigure", c.client.Reconfigure, h, req)
}

// hostServe is the Host server of one call. stop may come before the
// broker has built the server (a plugin that never dialled): the server is
// then stopped as soon as it exists, so AcceptAndServe returns.
type hostServe struct {
	host    Host
	callCtx context.Context

	mu      sync.Mutex
	srv     *grpc.Server
	stopped bool
}

func (s *hostServe) newServer(opts []grpc.ServerOption) *grpc.Server {
	srv := grpc.NewServer(opts...)
	rolepb.RegisterHostServer(srv, &hostServer{host: s.host, callCtx: s.callCtx})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		srv.Stop()
	} else {
		s.srv = srv
	}
	return srv
}

func (s *hostServe) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.srv != nil {
		s.srv.Stop()
	}
}
