package simtest

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dorismanager/dorismanager/plugins/be/berole"
	"github.com/dorismanager/dorismanager/plugins/broker/brokerrole"
	"github.com/dorismanager/dorismanager/plugins/fe/ferole"
	"github.com/dorismanager/dorismanager/plugins/internal/doris"
	"github.com/dorismanager/dorismanager/plugins/internal/doris/doristest"
	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/test/freeport"
)

// role is what the plugins implement.
type role interface {
	sdk.Role
	sdk.Member
	sdk.Upgrader
	sdk.Reconfigurer
}

var fast = doris.Backoff{Initial: 50 * time.Millisecond, Max: 300 * time.Millisecond}

func roleFor(name string) (role, doris.Spec) {
	switch name {
	case doris.RoleFE:
		r := ferole.New("1.0.0")
		r.Backoff = fast
		return r, doris.FE
	case doris.RoleBE:
		r := berole.New("1.0.0")
		r.Backoff, r.DecommissionBackoff = fast, fast
		return r, doris.BE
	}
	r := brokerrole.New("1.0.0")
	r.Backoff = fast
	return r, doris.Broker
}

// cluster is a manager's view of a simulated cluster on this machine: every
// node on 127.0.0.1 with its own install dir and ports.
type cluster struct {
	t     *testing.T
	h     *doristest.LocalHost
	sim   *doristest.Sim
	root  string
	nodes []sdk.Node
	confs []string
	extra [][]string
	ports freeport.Ports
}

func newCluster(t *testing.T, sim *doristest.Sim) *cluster {
	c := &cluster{t: t, h: doristest.NewLocalHost(t), sim: sim, root: t.TempDir()}
	t.Cleanup(func() {
		for i := len(c.nodes) - 1; i >= 0; i-- {
			r, _ := roleFor(c.nodes[i].Role)
			_, _ = r.Stop(context.Background(), c.h, c.req(i))
		}
	})
	return c
}

// add plans a node of roleName; extra lines go into its conf.
func (c *cluster) add(roleName string, labels map[string]string, extra ...string) int {
	_, spec := roleFor(roleName)
	i := len(c.nodes)
	dir := filepath.Join(c.root, fmt.Sprintf("n%d", i))
	c.nodes = append(c.nodes, sdk.Node{Host: "127.0.0.1", Role: roleName, InstallDir: dir, Home: path.Join(dir, spec.Dir), Labels: labels})
	c.confs = append(c.confs, "")
	c.extra = append(c.extra, extra)
	c.planPorts(i)
	return i
}

// planPorts gives node i fresh ports in its conf.
func (c *cluster) planPorts(i int) {
	var conf []string
	switch c.nodes[i].Role {
	case doris.RoleFE:
		p := c.ports.Free(c.t, 4)
		conf = []string{fmt.Sprintf("http_port = %d", p[0]), fmt.Sprintf("rpc_port = %d", p[1]), fmt.Sprintf("query_port = %d", p[2]),
			fmt.Sprintf("edit_log_port = %d", p[3]), "priority_networks = 127.0.0.1/32"}
	case doris.RoleBE:
		p := c.ports.Free(c.t, 4)
		conf = []string{fmt.Sprintf("be_port = %d", p[0]), fmt.Sprintf("webserver_port = %d", p[1]),
			fmt.Sprintf("heartbeat_service_port = %d", p[2]), fmt.Sprintf("brpc_port = %d", p[3]), "priority_networks = 127.0.0.1/32"}
	default:
		conf = []string{fmt.Sprintf("broker_ipc_port = %d", c.ports.Free(c.t, 1)[0])}
	}
	c.confs[i] = strings.Join(append(conf, c.extra[i]...), "\n") + "\n"
}

func (c *cluster) req(i int) sdk.Request {
	return sdk.Request{TaskID: 1, Node: c.nodes[i], Cluster: sdk.Cluster{ID: 1, Name: "sim", Nodes: c.nodes}, Conf: c.confs[i],
		Params: map[string]string{doris.ParamJavaHome: c.sim.JavaHome, doris.ParamStartTimeout: "60s", doris.ParamAliveTimeout: "60s",
			doris.ParamStopTimeout: "30s"}}
}

// call runs one method on node i and keeps the facts it reports, as the
// manager does.
func (c *cluster) call(i int, method string, mod func(*sdk.Request)) (sdk.Result, error) {
	r, _ := roleFor(c.nodes[i].Role)
	req := c.req(i)
	if mod != nil {
		mod(&req)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var res sdk.Result
	var err error
	switch method {
	case "Install":
		res, err = r.Install(ctx, c.h, req)
	case "Configure":
		res, err = r.Configure(ctx, c.h, req)
	case "Start":
		res, err = r.Start(ctx, c.h, req)
	case "Stop":
		res, err = r.Stop(ctx, c.h, req)
	case "Status":
		res, err = r.Status(ctx, c.h, req)
	case "Remove":
		res, err = r.Remove(ctx, c.h, req)
	case "Register":
		res, err = r.Register(ctx, c.h, req)
	case "Unregister":
		res, err = r.Unregister(ctx, c.h, req)
	case "Upgrade":
		res, err = r.Upgrade(ctx, c.h, req)
	case "Reconfigure":
		res, err = r.Reconfigure(ctx, c.h, req)
	default:
		c.t.Fatalf("unknown method %s", method)
	}
	if err == nil && len(res.Facts) > 0 {
		n := &c.nodes[i]
		if n.Facts == nil {
			n.Facts = sdk.Facts{}
		}
		for k, v := range res.Facts {
			n.Facts[k] = v
		}
		if ps := n.Facts.Ports(); len(ps) > 0 {
			n.Ports = ps
		}
	}
	return res, err
}

func (c *cluster) must(i int, method string, mod func(*sdk.Request)) sdk.Result {
	c.t.Helper()
	res, err := c.call(i, method, mod)
	if err != nil {
		f := sdk.AsFailure(err)
		c.t.Fatalf("%s of %s #%d: %s\n%s", method, c.nodes[i].Role, i, f.Summary, f.Detail)
	}
	return res
}

// deploy installs, configures, starts and registers node i from url.
func (c *cluster) deploy(i int, url string) {
	c.t.Helper()
	withURL := func(r *sdk.Request) { r.PackageURL = url }
	c.must(i, "Install", withURL)
	c.must(i, "Configure", withURL)
	// A port free when it was picked may be taken by another test's
	// process by the time the node starts: pick others once.
	if _, err := c.call(i, "Start", withURL); err != nil {
		if !strings.Contains(err.Error(), "port in use") {
			c.t.Fatalf("Start of %s #%d: %v", c.nodes[i].Role, i, err)
		}
		c.t.Logf("node %d: %v; again with other ports", i, err)
		c.planPorts(i)
		c.must(i, "Configure", withURL)
		c.must(i, "Start", withURL)
	}
	c.must(i, "Register", withURL)
}

// sql runs q on the FE node i.
func (c *cluster) sql(i int, q string) sdk.Rows {
	c.t.Helper()
	rows, err := c.h.Query(context.Background(), doris.Endpoint("127.0.0.1", c.nodes[i].Ports["query_port"]), q)
	if err != nil {
		c.t.Fatalf("%s: %v", q, err)
	}
	return rows
}

// row returns node j's row in the membership table stmt, asked of FE i.
func (c *cluster) row(i int, stmt string, j int, portKey string) (map[string]string, bool) {
	rows := c.sql(i, stmt)
	for k := range rows.Values {
		if doris.Col(rows, k, "Host", "IP") == "127.0.0.1" && doris.Col(rows, k, "HeartbeatPort", "EditLogPort", "Port") == strconv.Itoa(c.nodes[j].Ports[portKey]) {
			m := map[string]string{}
			for n, col := range rows.Columns {
				m[col] = rows.Values[k][n]
			}
			return m, true
		}
	}
	return nil, false
}

// waitFor polls cond for up to a minute.
func (c *cluster) waitFor(what string, cond func() (bool, string)) {
	c.t.Helper()
	deadline := time.Now().Add(time.Minute)
	last := ""
	for time.Now().Before(deadline) {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("timed out waiting for %s; last: %s", what, last)
}

var master = map[string]string{doris.LabelMaster: "true"}
