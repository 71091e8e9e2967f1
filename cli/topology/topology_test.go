package topology

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/cli/rest"
)

const testKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"

// keyDir is a folder with the key files the test topologies name.
func keyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"id": 0o600, "open": 0o644, "pass": 0o600} {
		content := testKey
		if name == "pass" {
			content = "s3cret\n"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "notkey"), []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// good is a valid topology; the cases below change one thing in it.
const good = `cluster: demo
ssh:
  user: root
  keyFile: id
package:
  url: http://repo/apache-doris-2.0.3-bin-x64.tar.gz
installDir: /opt/doris
params:
  javaHome: /opt/jdk
hosts:
  - name: h1
    address: 10.0.0.11
  - name: h2
    address: 10.0.0.12
  - address: 10.0.0.13
fe:
  - host: h1
  - host: h2
    type: observer
be:
  - host: h1
  - host: 10.0.0.13
broker:
  - host: h2
`

func TestParseRefusesWithTheFieldAndLine(t *testing.T) {
	dir := keyDir(t)
	cases := []struct {
		name     string
		from, to string // replace from with to in good ("" from: to is the whole file)
		want     string
	}{
		{"typo in a field", "  keyFile: id", "  keyfile: id",
			"line 4: keyfile: unknown field in ssh; known fields: user, port, keyFile, passphraseFile, hostKeys, strictHostKeys"},
		{"unknown top-level field", "installDir: /opt/doris", "installDir: /opt/doris\ninstalDir: /opt/doris",
			"line 8: instalDir: unknown field in the top level; known fields: cluster, ssh, package, installDir, autoFix, params, hosts, fe, be, broker, config"},
		{"sha512 is not taken", "tar.gz\n", "tar.gz\n  sha512: abc\n",
			"line 7: sha512: unknown field in package; known fields: url, sha256, allowUnverified"},
		{"typo in a list item", "  - host: h1\n  - host: h2", "  - host: h1\n    mastr: true\n  - host: h2",
			"line 18: mastr: unknown field in fe[0]; known fields: host, type, master"},
		{"port as text", "  user: root\n", "  user: root\n  port: twenty-two\n",
			`line 4: ssh.port: text "twenty-two" where a whole number is expected`},
		{"hosts not a list", "hosts:\n  - name: h1\n    address: 10.0.0.11\n  - name: h2\n    address: 10.0.0.12\n  - address: 10.0.0.13\n", "hosts: 10.0.0.11\n",
			`line 10: hosts: text "10.0.0.11" where a list is expected`},
		{"not yaml", "", "cluster: [demo\n", "line 1: not valid YAML: did not find expected ',' or ']'"},
		{"empty", "", "", "the file is empty: see examples/topology.yaml"},
		{"two documents", "", good + "---\ncluster: other\n", "line 25: a second YAML document: one file describes one cluster"},
		{"no cluster", "cluster: demo\n", "",
			"cluster: required: the cluster's name (created when the manager has none of that name)"},
		{"bad cluster name", "cluster: demo", "cluster: my cluster",
			`line 1: cluster: "my cluster": up to 128 letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{"no user", "  user: root\n", "", "line 2: ssh.user: required: the SSH user on the hosts (root, or one with sudo)"},
		{"missing key", "keyFile: id", "keyFile: nokey", "line 4: ssh.keyFile: " + filepath.Join(dir, "nokey") + " cannot be read: no such file or directory"},
		{"open key", "keyFile: id", "keyFile: open",
			"line 4: ssh.keyFile: " + filepath.Join(dir, "open") + " is readable by others (mode 0644): chmod 600 " + filepath.Join(dir, "open")},
		{"not a key", "keyFile: id", "keyFile: notkey", "line 4: ssh.keyFile: notkey is not a PEM private key (-----BEGIN ... PRIVATE KEY-----)"},
		{"bad ssh port", "  user: root\n", "  user: root\n  port: 70000\n", "line 4: ssh.port: 70000 is not a port (1-65535)"},
		{"bad host key", "  keyFile: id\n", "  keyFile: id\n  hostKeys:\n    h1: md5:aa\n",
			`line 6: ssh.hostKeys.h1: "md5:aa" is not a fingerprint as ssh-keygen -l prints it (SHA256:...)`},
		{"host key of no host", "  keyFile: id\n", "  keyFile: id\n  hostKeys:\n    h9: SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\n",
			`line 6: ssh.hostKeys.h9: "h9" is not a host of hosts (names or addresses)`},
		{"no url", "  url: http://repo/apache-doris-2.0.3-bin-x64.tar.gz\n", "  sha256: " + strings.Repeat("a", 64) + "\n",
			"line 5: package.url: required: the Doris release to install (http or https URL of apache-doris-...-bin-....tar.gz)"},
		{"ftp url", "url: http://repo", "url: ftp://repo", `line 6: package.url: "ftp://repo/apache-doris-2.0.3-bin-x64.tar.gz" is not an http or https URL`},
		{"url password hidden", "url: http://repo", "url: ftp://me:pw@repo", `line 6: package.url: "ftp://me:***@repo/apache-doris-2.0.3-bin-x64.tar.gz" is not an http or https URL`},
		{"bad sha256", "tar.gz\n", "tar.gz\n  sha256: 1234\n", `line 7: package.sha256: "1234" is not a SHA-256 (64 hex digits, as sha256sum prints)`},
		{"no installDir", "installDir: /opt/doris\n", "", "installDir: required: the folder the roles are installed in on every host, e.g. /opt/doris"},
		{"relative installDir", "installDir: /opt/doris", "installDir: opt/doris", `line 7: installDir: "opt/doris" must be an absolute path, e.g. /opt/doris`},
		{"unclean installDir", "installDir: /opt/doris", "installDir: /opt//doris/", `line 7: installDir: "/opt//doris/" is not a clean path: write /opt/doris`},
		{"bad param name", "  javaHome: /opt/jdk", "  java-home: /opt/jdk", "line 9: params.java-home: parameter names are letters, digits and '_' (javaHome, startTimeout...)"},
		{"no address", "  - address: 10.0.0.13", "  - name: h3", "line 15: hosts[2].address: required: the host's IP address (or DNS name)"},
		{"loopback", "address: 10.0.0.13", "address: 127.0.0.1", "line 15: hosts[2].address: 127.0.0.1 is not an address other hosts reach: give the host's own address"},
		{"duplicate address", "address: 10.0.0.13", "address: 10.0.0.12", "line 15: hosts[2].address: 10.0.0.12 is hosts[1] already"},
		{"bad address", "address: 10.0.0.13", "address: 10.0.0.300", `line 15: hosts[2].address: "10.0.0.300" is neither an IP address nor a host name`},
		{"name without networks", "address: 10.0.0.13", "address: db3.example",
			`line 15: hosts[2].priorityNetworks: required when address "db3.example" is a name: the CIDR holding the address Doris should use on this host (e.g. 10.0.0.0/24), since priority_networks cannot be derived from a name`},
		{"bad networks", "  - address: 10.0.0.13", "  - address: 10.0.0.13\n    priorityNetworks: 10.0.0.0/33",
			`line 16: hosts[2].priorityNetworks: "10.0.0.0/33" is not a CIDR like 10.0.0.0/24 (several: separated by ';')`},
		{"other ssh port", "  - address: 10.0.0.13", "  - address: 10.0.0.13\n    sshPort: 2222",
			"line 16: hosts[2].sshPort: 2222 differs from ssh.port 22: one deploy reaches every host on one SSH port (installAgent takes one); set ssh.port, or deploy these hosts with another file and cluster scale-out"},
		{"name is another's address", "name: h2", "name: 10.0.0.11", `line 13: hosts[1].name: "10.0.0.11" names another host already (a name or address of 10.0.0.11)`},
		{"unknown host", "  - host: 10.0.0.13", "  - host: h9", `line 22: be[1].host: "h9" is not a host of hosts; known: h1, h2, 10.0.0.13`},
		{"empty host", "  - host: 10.0.0.13", "  - host: ''", "line 22: be[1].host: required: a host of hosts (its name or address)"},
		{"two FEs on a host", "    type: observer\n", "    type: observer\n  - host: 10.0.0.11\n",
			"line 20: fe[2].host: 10.0.0.11 has an FE already (fe[0]): one FE a host"},
		{"two BEs on a host", "  - host: 10.0.0.13\nbroker", "  - host: 10.0.0.13\n  - host: h1\nbroker",
			"line 23: be[2].host: h1 has a BE already (be[0]): one a host"},
		{"bad FE type", "type: observer", "type: learner", `line 19: fe[1].type: "learner": FOLLOWER or OBSERVER`},
		{"observer master", "type: observer", "type: observer\n    master: true", "line 20: fe[1].master: an OBSERVER cannot be the master: mark a FOLLOWER"},
		{"two masters", "  - host: h1\n  - host: h2\n    type: observer", "  - host: h1\n    master: true\n  - host: h2\n    master: true",
			"line 20: fe[1].master: a second master: mark one FOLLOWER master (default: the first)"},
		{"only observers", "  - host: h1\n  - host: h2\n    type: observer", "  - host: h1\n    type: OBSERVER",
			"line 16: fe: no FOLLOWER: a cluster needs a FOLLOWER to be its master (observers only replicate)"},
		{"idle host", "  - host: 10.0.0.13\nbroker", "broker", "line 15: hosts[2]: 10.0.0.13 runs no role: place an FE, BE or broker on it, or remove it"},
		{"bad conf key", "", good + "config:\n  fe:\n    bad key: 1\n", "line 27: config.fe.bad key: not a conf key (letters, digits, '_' and '.')"},
		{"bad conf networks", "", good + "config:\n  be:\n    priority_networks: 10.0.0.0/24;nope\n",
			`line 27: config.be.priority_networks: "nope" is not a CIDR like 10.0.0.0/24 (several: separated by ';')`},
		{"unknown role in config", "", good + "config:\n  fee:\n    x: 1\n",
			"line 26: fee: unknown field in config; known fields: fe, be, broker"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := c.to
			if c.from != "" {
				if !strings.Contains(good, c.from) {
					t.Fatalf("the case's text %q is not in the good file", c.from)
				}
				data = strings.Replace(good, c.from, c.to, 1)
			}
			_, err := Parse([]byte(data), dir)
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Parse = %v; want Problems\n%s", err, data)
			}
			// Every problem is listed; the case's one must be among them
			// word for word (a problem may bring others, like a host left
			// without a role).
			for _, p := range ps {
				if p.String() == c.want {
					return
				}
			}
			t.Errorf("problems:\n%v\nwant among them:\n%s", err, c.want)
		})
	}
}

func TestEveryProblemInLineOrder(t *testing.T) {
	data := strings.Replace(strings.Replace(good, "installDir: /opt/doris", "installDir: opt", 1), "cluster: demo", "cluster: my cluster", 1)
	_, err := Parse([]byte(data), keyDir(t))
	want := "line 1: cluster: \"my cluster\": up to 128 letters, digits, '.', '_' or '-', starting with a letter or digit\n" +
		"line 7: installDir: \"opt\" must be an absolute path, e.g. /opt/doris"
	if err == nil || err.Error() != want {
		t.Fatalf("error\n%v\nwant\n%s", err, want)
	}
}

func TestParseGood(t *testing.T) {
	dir := keyDir(t)
	top, err := Parse([]byte(strings.Replace(good, "keyFile: id", "keyFile: id\n  passphraseFile: pass", 1)), dir)
	if err != nil {
		t.Fatal(err)
	}
	if top.SSHKey != testKey || top.Passphrase != "s3cret" || top.SSH.Port != 22 {
		t.Errorf("key %q passphrase %q port %d", top.SSHKey, top.Passphrase, top.SSH.Port)
	}
	if top.FE[0].Type != "FOLLOWER" || top.FE[1].Type != "OBSERVER" {
		t.Errorf("FE types %q %q; want FOLLOWER (default) and OBSERVER (upper-cased)", top.FE[0].Type, top.FE[1].Type)
	}
}

func TestRender(t *testing.T) {
	dir := keyDir(t)
	src := good + "config:\n  fe:\n    query_port: 19030\n    qe_max_connection: 2048\n  broker:\n    broker_ipc_port: 18000\n"
	top, err := Parse([]byte(strings.Replace(src, "  - address: 10.0.0.13", "  - address: 10.0.0.13\n    priorityNetworks: 10.0.0.0/24", 1)), dir)
	if err != nil {
		t.Fatal(err)
	}
	p := top.Render(nil)
	wantAgent := rest.InstallAgent{Hosts: []string{"10.0.0.11", "10.0.0.12", "10.0.0.13"}, User: "root", SSHPort: 22, SSHKey: testKey,
		PackageURL: "http://repo/apache-doris-2.0.3-bin-x64.tar.gz", InstallDir: "/opt/doris"}
	if !reflect.DeepEqual(p.Agent, wantAgent) {
		t.Errorf("installAgent\n got %+v\nwant %+v", p.Agent, wantAgent)
	}
	wantInfos := []rest.InstallInfo{{Host: "10.0.0.11", Role: "FE", FENodeType: "FOLLOWER"}, {Host: "10.0.0.12", Role: "FE", FENodeType: "OBSERVER"},
		{Host: "10.0.0.11", Role: "BE"}, {Host: "10.0.0.13", Role: "BE"}, {Host: "10.0.0.12", Role: "BROKER"}}
	if !reflect.DeepEqual(p.Install.InstallInfos, wantInfos) || p.Install.Params["javaHome"] != "/opt/jdk" {
		t.Errorf("installService %+v", p.Install)
	}
	if !reflect.DeepEqual(p.FEHosts, []string{"10.0.0.11", "10.0.0.12"}) || !reflect.DeepEqual(p.BEHosts, []string{"10.0.0.11", "10.0.0.13"}) {
		t.Errorf("buildCluster FEs %v BEs %v", p.FEHosts, p.BEHosts)
	}
	if len(p.Starts) != 5 {
		t.Errorf("startService %v", p.Starts)
	}
	wantFE := `# FE conf rendered by dorismanager cluster deploy
LOG_DIR = ${DORIS_HOME}/log
JAVA_OPTS = "-Xss4m -Xmx8192m -XX:+UseG1GC -XX:+HeapDumpOnOutOfMemoryError"
JAVA_OPTS_FOR_JDK_9 = "-Xss4m -Xmx8192m -XX:+UseG1GC -XX:+HeapDumpOnOutOfMemoryError"
JAVA_OPTS_FOR_JDK_17 = "-Xss4m -Xmx8192m -XX:+UseG1GC -XX:+HeapDumpOnOutOfMemoryError"
sys_log_level = INFO
meta_dir = ${DORIS_HOME}/doris-meta
http_port = 8030
rpc_port = 9020
query_port = 19030
edit_log_port = 9010
priority_networks = 10.0.0.11/32
JAVA_HOME = /opt/jdk
qe_max_connection = 2048
`
	wantBE13 := `# BE conf rendered by dorismanager cluster deploy
PPROF_TMPDIR = "$DORIS_HOME/log/"
sys_log_level = INFO
storage_root_path = ${DORIS_HOME}/storage
be_port = 9060
webserver_port = 8040
heartbeat_service_port = 9050
brpc_port = 8060
priority_networks = 10.0.0.0/24
JAVA_HOME = /opt/jdk
`
	wantBroker := `# BROKER conf rendered by dorismanager cluster deploy
broker_ipc_port = 18000
client_expire_seconds = 300
`
	var got []string
	for _, d := range p.Configs {
		got = append(got, d.Role+" "+strings.Join(d.Hosts, ","))
		switch {
		case d.Role == "FE" && d.Hosts[0] == "10.0.0.11" && d.Conf != wantFE:
			t.Errorf("FE conf of 10.0.0.11:\n%s\nwant\n%s", d.Conf, wantFE)
		case d.Role == "BE" && d.Hosts[0] == "10.0.0.13" && d.Conf != wantBE13:
			t.Errorf("BE conf of 10.0.0.13:\n%s\nwant\n%s", d.Conf, wantBE13)
		case d.Role == "BROKER" && d.Conf != wantBroker:
			t.Errorf("broker conf:\n%s\nwant\n%s", d.Conf, wantBroker)
		}
	}
	// Each host's priority_networks differs, so each FE and BE has its own conf.
	wantGroups := []string{"FE 10.0.0.11", "FE 10.0.0.12", "BE 10.0.0.11", "BE 10.0.0.13", "BROKER 10.0.0.12"}
	if !reflect.DeepEqual(got, wantGroups) {
		t.Errorf("deployConfig groups %v, want %v", got, wantGroups)
	}
}

func TestRenderGroupsEqualConfs(t *testing.T) {
	dir := keyDir(t)
	top, err := Parse([]byte(good+"config:\n  be:\n    priority_networks: 10.0.0.0/24\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range top.Render(nil).Configs {
		if d.Role == "BE" && !reflect.DeepEqual(d.Hosts, []string{"10.0.0.11", "10.0.0.13"}) {
			t.Errorf("BE confs with one priority_networks: hosts %v in one entry, want both", d.Hosts)
		}
	}
}

// TestRenderScaleOut: nodes the cluster has are left out, and the file's
// master mark is not sent (new FEs join the running master).
func TestRenderScaleOut(t *testing.T) {
	dir := keyDir(t)
	top, err := Parse([]byte(strings.Replace(good, "  - host: h1\n  - host: h2", "  - host: h1\n    master: true\n  - host: h2", 1)), dir)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{"10.0.0.11/FE": true, "10.0.0.11/BE": true}
	p := top.Render(func(h, r string) bool { return !have[h+"/"+r] })
	want := []rest.InstallInfo{{Host: "10.0.0.12", Role: "FE", FENodeType: "OBSERVER"}, {Host: "10.0.0.13", Role: "BE"}, {Host: "10.0.0.12", Role: "BROKER"}}
	if !reflect.DeepEqual(p.Install.InstallInfos, want) {
		t.Errorf("scale-out installInfos %+v, want %+v", p.Install.InstallInfos, want)
	}
	if !reflect.DeepEqual(p.Agent.Hosts, []string{"10.0.0.12", "10.0.0.13"}) {
		t.Errorf("scale-out installs agents on %v", p.Agent.Hosts)
	}
	full := top.Render(nil)
	if !full.Install.InstallInfos[0].Master {
		t.Error("a new cluster's marked master is not sent")
	}
}

// TestExampleFile: the example in the repository is valid and renders the
// README's cluster.
func TestExampleFile(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), []byte(testKey), 0o600); err != nil {
		t.Fatal(err)
	}
	top, err := Load("../../examples/topology.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := top.Render(nil)
	if p.Cluster != "demo" || len(p.Agent.Hosts) != 3 || len(p.Nodes) != 7 || len(p.FEHosts) != 3 || len(p.BEHosts) != 3 {
		t.Errorf("example renders %+v", p)
	}
}

func TestLoadSaysWhichFile(t *testing.T) {
	dir := keyDir(t)
	path := filepath.Join(dir, "top.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(good, "cluster: demo", "cluster: my cluster\nautoFix: maybe", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	want := path + " is not usable, fix:\n  line 2: autoFix: text \"maybe\" where true or false is expected"
	if err == nil || err.Error() != want {
		t.Fatalf("Load error\n%v\nwant\n%s", err, want)
	}
}
