package sandbox

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Plan is one walk through the install wizard, in the API document's terms.
type Plan struct {
	ClusterID  int64
	SSHKey     []byte
	Hosts      []string // agent hosts
	FEs        []FE     // the first FOLLOWER is the master
	BEs        []string
	Brokers    []string
	Params     map[string]string
	FEConf     string
	BEConf     string
	BrokerConf string
}

// FE is one frontend of a Plan.
type FE struct {
	Host string
	Type string // FOLLOWER or OBSERVER
}

// StandardPlan is the cluster the end-to-end tests and the demo build:
// FE FOLLOWER on hosts 1 and 2, FE OBSERVER on host 3, BE on all three,
// BROKER on host 3.
func (s *Sandbox) StandardPlan() Plan {
	hs := s.Hosts.Hosts
	p := Plan{ClusterID: 1, SSHKey: s.Hosts.Keys.Ed25519,
		Params: map[string]string{"javaHome": JavaHome, "minOpenFiles": "10000", "startTimeout": "120s", "aliveTimeout": "120s"}}
	for i, h := range hs {
		p.Hosts = append(p.Hosts, h.Addr)
		typ := "FOLLOWER"
		if i >= 2 {
			typ = "OBSERVER"
		}
		p.FEs = append(p.FEs, FE{Host: h.Addr, Type: typ})
		p.BEs = append(p.BEs, h.Addr)
	}
	p.Brokers = []string{hs[len(hs)-1].Addr}
	p.FEConf, p.BEConf, p.BrokerConf = s.Confs()
	return p
}

// Confs are the role configs the tests deploy: Doris's defaults plus
// priority_networks for the hosts' subnet.
func (s *Sandbox) Confs() (fe, be, broker string) {
	net := s.Hosts.Subnet
	fe = strings.Join([]string{
		"# Doris FE config deployed by the end-to-end tests",
		"LOG_DIR = ${DORIS_HOME}/log",
		"JAVA_OPTS=\"-Xmx1024m -XX:+UseG1GC\"",
		"sys_log_level = INFO",
		"meta_dir = ${DORIS_HOME}/doris-meta",
		"http_port = 8030",
		"rpc_port = 9020",
		"query_port = 9030",
		"edit_log_port = 9010",
		"priority_networks = " + net,
		"JAVA_HOME = " + JavaHome,
		"",
	}, "\n")
	be = strings.Join([]string{
		"PPROF_TMPDIR=\"$DORIS_HOME/log/\"",
		"sys_log_level = INFO",
		"be_port = 9060",
		"webserver_port = 8040",
		"heartbeat_service_port = 9050",
		"brpc_port = 8060",
		"storage_root_path = ${DORIS_HOME}/storage;${DORIS_HOME}/storage2,SSD",
		"priority_networks = " + net,
		"JAVA_HOME = " + JavaHome,
		"",
	}, "\n")
	broker = strings.Join([]string{
		"broker_ipc_port = 8000",
		"client_expire_seconds = 300",
		"",
	}, "\n")
	return fe, be, broker
}

// Progress receives what the wizard is doing, for the demo's output.
type Progress func(step string, t *Task)

// InstallAgent calls installAgent as the API document shows it (with
// "sshPort") and returns the new process id.
func (c *Client) InstallAgent(ctx context.Context, p Plan, installDir, packageURL string) (int64, error) {
	r, err := c.OK(ctx, http.MethodPost, "/api/server/installAgent", map[string]any{
		"clusterId": fmt.Sprint(p.ClusterID), "packageUrl": packageURL, "installDir": installDir,
		"hosts": p.Hosts, "user": "root", "sshPort": 22, "sshKey": string(p.SSHKey),
	})
	if err != nil {
		return 0, err
	}
	var id int64
	return id, r.Decode(&id)
}

// InstallService calls installService for the plan's roles.
func (c *Client) InstallService(ctx context.Context, pid int64, p Plan, extra map[string]any) error {
	var infos []map[string]any
	for _, fe := range p.FEs {
		infos = append(infos, map[string]any{"host": fe.Host, "role": "FE", "feNodeType": fe.Type})
	}
	for _, h := range p.BEs {
		infos = append(infos, map[string]any{"host": h, "role": "BE"})
	}
	for _, h := range p.Brokers {
		infos = append(infos, map[string]any{"host": h, "role": "BROKER"})
	}
	body := map[string]any{"processId": pid, "installInfos": infos, "params": p.Params, "autoFix": true}
	for k, v := range extra {
		body[k] = v
	}
	_, err := c.OK(ctx, http.MethodPost, "/api/agent/installService", body)
	return err
}

// DeployConfig sends the plan's confs, with processId as a string as the
// document's example does.
func (c *Client) DeployConfig(ctx context.Context, pid int64, p Plan) error {
	var fes []string
	for _, fe := range p.FEs {
		fes = append(fes, fe.Host)
	}
	cfgs := []map[string]any{{"hosts": fes, "role": "FE", "conf": p.FEConf}}
	if len(p.BEs) > 0 {
		cfgs = append(cfgs, map[string]any{"hosts": p.BEs, "role": "BE", "conf": p.BEConf})
	}
	if len(p.Brokers) > 0 {
		cfgs = append(cfgs, map[string]any{"hosts": p.Brokers, "role": "BROKER", "conf": p.BrokerConf})
	}
	_, err := c.OK(ctx, http.MethodPost, "/api/agent/deployConfig", map[string]any{"processId": fmt.Sprint(pid), "deployConfigs": cfgs})
	return err
}

// StartService starts every role of the plan.
func (c *Client) StartService(ctx context.Context, pid int64, p Plan) error {
	var starts []map[string]any
	for _, fe := range p.FEs {
		starts = append(starts, map[string]any{"host": fe.Host, "role": "FE"})
	}
	for _, h := range p.BEs {
		starts = append(starts, map[string]any{"host": h, "role": "BE"})
	}
	for _, h := range p.Brokers {
		starts = append(starts, map[string]any{"host": h, "role": "BROKER"})
	}
	_, err := c.OK(ctx, http.MethodPost, "/api/agent/startService", map[string]any{"processId": fmt.Sprint(pid), "dorisStarts": starts})
	return err
}

// BuildCluster adds the plan's nodes to the cluster.
func (c *Client) BuildCluster(ctx context.Context, pid int64, p Plan) error {
	var fes []string
	for _, fe := range p.FEs {
		fes = append(fes, fe.Host)
	}
	be := p.BEs
	if be == nil {
		be = []string{}
	}
	_, err := c.OK(ctx, http.MethodPost, "/api/agent/buildCluster", map[string]any{"processId": pid, "feHosts": fes, "beHosts": be})
	return err
}

// StepTiming is how long one wizard step took.
type StepTiming struct {
	Step     string
	Duration time.Duration
}

// Walk runs the whole wizard for a plan and returns the process id and
// each step's wall time. It stops at the first step with a failed task.
// installService names no checksum: the manager takes the SHA-512
// published beside the package, as for an Apache release.
func (c *Client) Walk(ctx context.Context, s *Sandbox, p Plan, progress Progress) (int64, []StepTiming, error) {
	var pid int64
	var timings []StepTiming
	step := func(name string, call func() error) error {
		if progress != nil {
			progress(name, nil)
		}
		start := time.Now()
		if err := call(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		ts, err := c.WaitStep(ctx, pid, func(t Task) {
			if progress != nil {
				progress(name, &t)
			}
		})
		if err != nil {
			return err
		}
		timings = append(timings, StepTiming{name, time.Since(start)})
		if f := Failed(ts); len(f) > 0 {
			return fmt.Errorf("%s failed:%s", name, Describe(f))
		}
		return nil
	}
	err := step("INSTALL_AGENT", func() (err error) {
		pid, err = c.InstallAgent(ctx, p, InstallDir, s.PackageURL)
		return err
	})
	if err == nil {
		err = step("INSTALL_SERVICE", func() error { return c.InstallService(ctx, pid, p, nil) })
	}
	if err == nil {
		err = step("DEPLOY_CONFIG", func() error { return c.DeployConfig(ctx, pid, p) })
	}
	if err == nil {
		err = step("START_SERVICE", func() error { return c.StartService(ctx, pid, p) })
	}
	if err == nil {
		err = step("BUILD_CLUSTER", func() error { return c.BuildCluster(ctx, pid, p) })
	}
	if err != nil {
		return pid, timings, err
	}
	_, err = c.OK(ctx, http.MethodPost, fmt.Sprintf("/api/process/installComplete/%d", pid), map[string]any{"processId": pid, "hosts": p.Hosts})
	return pid, timings, err
}
