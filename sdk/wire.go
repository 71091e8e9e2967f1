package sdk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	rolepb "github.com/dorismanager/dorismanager/sdk/proto"
)

// Conversions between the sdk types and their protobuf messages.

func infoToPB(i Info) *rolepb.InfoResponse {
	params := make([]*rolepb.Param, len(i.Params))
	for k, p := range i.Params {
		params[k] = &rolepb.Param{Name: p.Name, Type: p.Type, Default: p.Default, Description: p.Description}
	}
	return &rolepb.InfoResponse{
		Name: i.Name, Role: i.Role, Version: i.Version,
		ApiMajor: int32(i.APIMajor), ApiMinor: int32(i.APIMinor),
		Capabilities: i.Capabilities, Home: i.Home, Params: params,
		Order:   &rolepb.Order{After: i.Order.After, OneAtATime: i.Order.OneAtATime},
		PidFile: i.PidFile, Description: i.Description,
	}
}

func infoFromPB(p *rolepb.InfoResponse) Info {
	var params []Param
	for _, q := range p.GetParams() {
		params = append(params, Param{Name: q.GetName(), Type: q.GetType(), Default: q.GetDefault(), Description: q.GetDescription()})
	}
	return Info{
		Name: p.GetName(), Role: p.GetRole(), Version: p.GetVersion(),
		APIMajor: int(p.GetApiMajor()), APIMinor: int(p.GetApiMinor()),
		Capabilities: p.GetCapabilities(), Home: p.GetHome(), Params: params,
		Order:   Order{After: p.GetOrder().GetAfter(), OneAtATime: p.GetOrder().GetOneAtATime()},
		PidFile: p.GetPidFile(), Description: p.GetDescription(),
	}
}

func nodeToPB(n Node) *rolepb.Node {
	var ports map[string]int32
	if len(n.Ports) > 0 {
		ports = make(map[string]int32, len(n.Ports))
		for k, v := range n.Ports {
			ports[k] = int32(v)
		}
	}
	return &rolepb.Node{
		Host: n.Host, Role: n.Role, InstallDir: n.InstallDir, Home: n.Home,
		Labels: n.Labels, Ports: ports, Facts: n.Facts, Skipped: n.Skipped,
	}
}

func nodeFromPB(p *rolepb.Node) Node {
	var ports map[string]int
	if len(p.GetPorts()) > 0 {
		ports = make(map[string]int, len(p.GetPorts()))
		for k, v := range p.GetPorts() {
			ports[k] = int(v)
		}
	}
	return Node{
		Host: p.GetHost(), Role: p.GetRole(), InstallDir: p.GetInstallDir(), Home: p.GetHome(),
		Labels: p.GetLabels(), Ports: ports, Facts: p.GetFacts(), Skipped: p.GetSkipped(),
	}
}

func nodesToPB(ns []Node) []*rolepb.Node {
	if ns == nil {
		return nil
	}
	out := make([]*rolepb.Node, len(ns))
	for i, n := range ns {
		out[i] = nodeToPB(n)
	}
	return out
}

func nodesFromPB(ps []*rolepb.Node) []Node {
	if ps == nil {
		return nil
	}
	out := make([]Node, len(ps))
	for i, p := range ps {
		out[i] = nodeFromPB(p)
	}
	return out
}

func requestToPB(r Request) *rolepb.Request {
	return &rolepb.Request{
		TaskId:     r.TaskID,
		Node:       nodeToPB(r.Node),
		Cluster:    &rolepb.Cluster{Id: r.Cluster.ID, Name: r.Cluster.Name, Nodes: nodesToPB(r.Cluster.Nodes)},
		PackageUrl: r.PackageURL, PackageSha256: r.PackageSHA256, PackageSha512: r.PackageSHA512,
		Conf: r.Conf, AutoFix: r.AutoFix,
		Targets: nodesToPB(r.Targets),
		Params:  r.Params,
		Force:   r.Force, Purge: r.Purge, DryRun: r.DryRun,
	}
}

func requestFromPB(p *rolepb.Request) Request {
	c := p.GetCluster()
	return Request{
		TaskID:     p.GetTaskId(),
		Node:       nodeFromPB(p.GetNode()),
		Cluster:    Cluster{ID: c.GetId(), Name: c.GetName(), Nodes: nodesFromPB(c.GetNodes())},
		PackageURL: p.GetPackageUrl(), PackageSHA256: p.GetPackageSha256(), PackageSHA512: p.GetPackageSha512(),
		Conf: p.GetConf(), AutoFix: p.GetAutoFix(),
		Targets: nodesFromPB(p.GetTargets()),
		Params:  p.GetParams(),
		Force:   p.GetForce(), Purge: p.GetPurge(), DryRun: p.GetDryRun(),
	}
}

func resultToPB(r Result) *rolepb.Result {
	var changes []*rolepb.Change
	for _, c := range r.Changes {
		changes = append(changes, &rolepb.Change{Key: c.Key, Old: c.Old, New: c.New, Impact: c.Impact})
	}
	return &rolepb.Result{Summary: r.Summary, Detail: r.Detail, Facts: r.Facts, Changes: changes}
}

func resultFromPB(p *rolepb.Result) Result {
	var changes []Change
	for _, c := range p.GetChanges() {
		changes = append(changes, Change{Key: c.GetKey(), Old: c.GetOld(), New: c.GetNew(), Impact: c.GetImpact()})
	}
	return Result{Summary: p.GetSummary(), Detail: p.GetDetail(), Facts: p.GetFacts(), Changes: changes}
}

func failureToPB(f *Failure) *rolepb.Failure {
	return &rolepb.Failure{Summary: f.Summary, Detail: f.Detail, Retryable: f.Retryable}
}

func failureFromPB(p *rolepb.Failure) *Failure {
	return &Failure{Summary: p.GetSummary(), Detail: p.GetDetail(), Retryable: p.GetRetryable()}
}

func commandToPB(c Command) *rolepb.ExecRequest {
	return &rolepb.ExecRequest{
		Argv: c.Argv, Env: c.Env, Dir: c.Dir, NoFile: c.NoFile,
		TimeoutNanos: int64(c.Timeout), Detach: c.Detach, Stdin: c.Stdin,
	}
}

func commandFromPB(p *rolepb.ExecRequest) Command {
	return Command{
		Argv: p.GetArgv(), Env: p.GetEnv(), Dir: p.GetDir(), NoFile: p.GetNoFile(),
		Timeout: time.Duration(p.GetTimeoutNanos()), Detach: p.GetDetach(), Stdin: p.GetStdin(),
	}
}

func rowsToPB(r Rows) *rolepb.QueryResponse {
	out := &rolepb.QueryResponse{Columns: r.Columns, Rows: make([]*rolepb.Row, len(r.Values))}
	for i, v := range r.Values {
		out.Rows[i] = &rolepb.Row{Values: v}
	}
	return out
}

func rowsFromPB(p *rolepb.QueryResponse) Rows {
	out := Rows{Columns: p.GetColumns()}
	if len(p.GetRows()) > 0 {
		out.Values = make([][]string, len(p.GetRows()))
		for i, r := range p.GetRows() {
			out.Values[i] = r.GetValues()
		}
	}
	return out
}

// hostErrToStatus turns an error of a Host implementation into a gRPC
// status the plugin side maps back with hostErrFromStatus.
func hostErrToStatus(err error) error {
	if err == nil {
		return nil
	}
	code := codes.Unknown
	switch {
	case errors.Is(err, ErrNotExist):
		code = codes.NotFound
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	return status.Error(code, err.Error())
}

// hostErrFromStatus restores the sentinel errors of a Host error so that
// errors.Is works in the plugin as it would against a local Host.
func hostErrFromStatus(op string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("host %s: %w", op, err)
	}
	switch st.Code() {
	case codes.NotFound:
		return &remoteError{msg: st.Message(), is: ErrNotExist}
	case codes.Canceled:
		return &remoteError{msg: st.Message(), is: context.Canceled}
	case codes.DeadlineExceeded:
		return &remoteError{msg: st.Message(), is: context.DeadlineExceeded}
	case codes.Unknown:
		return errors.New(st.Message())
	default:
		return fmt.Errorf("host %s: %s (%s)", op, st.Message(), st.Code())
	}
}

// remoteError keeps the message of the Host's error as it was, and answers
// errors.Is for the sentinel it stood for.
type remoteError struct {
	msg string
	is  error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.is }
