// Package node is the simulated Doris process: one of FE, BE or broker, chosen
// by the caller. It reads the role's conf file, claims its ports, writes its
// pid file and logs the way the real process does, and speaks a small JSON
// protocol in place of Doris's thrift/bdb traffic between nodes.
package node

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dorismanager/dorismanager/test/dorissim/server/internal/conf"
)

// Environment knobs; see README.md.
const (
	EnvHeartbeatInterval = "DORIS_SIM_HEARTBEAT_INTERVAL"
	EnvJoinRetryInterval = "DORIS_SIM_JOIN_RETRY_INTERVAL"
	EnvCloneInterval     = "DORIS_SIM_CLONE_INTERVAL"
	EnvCloneBatch        = "DORIS_SIM_CLONE_BATCH"
)

// VersionFile sits in <role>/lib and names the Doris version imitated.
const VersionFile = "dorissim.version"

// Options are what every role needs to start.
type Options struct {
	Home    string // DORIS_HOME (BROKER_HOME for the broker)
	Helper  string // FE only: host:edit_log_port given by --helper
	Version string // imitated Doris version, e.g. 2.0.3; read from lib/dorissim.version when empty
	Getenv  func(string) (string, bool)
}

func (o *Options) lookup(name string) (string, bool) {
	if name == "DORIS_HOME" || name == "PALO_HOME" || name == "BROKER_HOME" {
		return o.Home, true
	}
	if o.Getenv != nil {
		return o.Getenv(name)
	}
	return os.LookupEnv(name)
}

func (o *Options) resolveVersion() error {
	if o.Version != "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(o.Home, "lib", VersionFile))
	if err != nil {
		return fmt.Errorf("read imitated version: %w", err)
	}
	o.Version = strings.TrimSpace(string(b))
	return nil
}

// major returns the first number of the imitated version (0 for 0.15).
func major(version string) int {
	m, _ := strconv.Atoi(strings.SplitN(version, ".", 2)[0])
	return m
}

// VersionString is how Doris reports its version in SHOW output and @@version_comment.
func VersionString(version string) string {
	return "doris-" + version
}

func durationEnv(o *Options, name string, def time.Duration) time.Duration {
	v, ok := o.lookup(name)
	if !ok || v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return def
	}
	return d
}

func intEnv(o *Options, name string, def int) int {
	v, ok := o.lookup(name)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return def
	}
	return n
}

// versionInfo is the build information FE /api/fe_version_info and BE
// /api/be_version_info report.
func versionInfo(version string) map[string]any {
	nums := strings.SplitN(version, ".", 4)
	num := func(i int) int {
		if i >= len(nums) {
			return 0
		}
		n, _ := strconv.Atoi(strings.SplitN(nums[i], "-", 2)[0])
		return n
	}
	return map[string]any{
		"dorisBuildVersionPrefix": "doris", "dorisBuildVersionMajor": num(0), "dorisBuildVersionMinor": num(1),
		"dorisBuildVersionPatch": num(2), "dorisBuildVersionRcVersion": "", "dorisBuildVersion": VersionString(version),
		"dorisBuildHash": "dorissim", "dorisBuildShortHash": "dorissim", "dorisBuildTime": "", "dorisBuildInfo": "dorissim",
	}
}

// logger writes one role log file in the role's own line format, leaving
// out lines below the conf's sys_log_level.
type logger struct {
	mu     sync.Mutex
	w      io.Writer
	format func(level, msg string) string
	min    int // rank of the lowest level written
}

// levelRank orders sys_log_level values: the FE says WARN, the BE WARNING.
var levelRank = map[string]int{"INFO": 0, "WARN": 1, "WARNING": 1, "ERROR": 2, "FATAL": 3}

func newLogger(w io.Writer, format func(level, msg string) string, sysLogLevel string) *logger {
	return &logger{w: w, format: format, min: levelRank[strings.ToUpper(strings.TrimSpace(sysLogLevel))]}
}

func (l *logger) printf(level, f string, args ...any) {
	if levelRank[level] < l.min {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.w, l.format(level, fmt.Sprintf(f, args...)))
}

func (l *logger) Infof(f string, args ...any)  { l.printf("INFO", f, args...) }
func (l *logger) Warnf(f string, args ...any)  { l.printf("WARN", f, args...) }
func (l *logger) Errorf(f string, args ...any) { l.printf("ERROR", f, args...) }

// log4jLine is the FE and broker layout: "2024-06-03 14:54:41,478 INFO (main|1) [Class.method():0] msg".
func log4jLine(class string) func(level, msg string) string {
	return func(level, msg string) string {
		now := time.Now()
		return fmt.Sprintf("%s,%03d %s (main|1) [%s] %s", now.Format("2006-01-02 15:04:05"),
			now.Nanosecond()/1e6, level, class, msg)
	}
}

// glogLine is the BE layout: "I20240603 14:54:41.478123 12345 doris_main.cpp:0] msg".
func glogLine(level, msg string) string {
	now := time.Now()
	return fmt.Sprintf("%c%s.%06d %d doris_main.cpp:0] %s", level[0], now.Format("20060102 15:04:05"),
		now.Nanosecond()/1e3, os.Getpid(), msg)
}

func openLog(dir, name string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return f, nil
}

// logDir follows the scripts: LOG_DIR from the environment or conf, else <home>/log.
func logDir(o *Options, c *conf.Conf, confKey string) string {
	if v, ok := o.lookup("LOG_DIR"); ok && v != "" {
		return v
	}
	if c != nil {
		if v := c.String(confKey, ""); v != "" {
			return v
		}
	}
	return filepath.Join(o.Home, "log")
}

// pidDir follows the scripts: PID_DIR from the environment, else <home>/bin.
func pidDir(o *Options) string {
	if v, ok := o.lookup("PID_DIR"); ok && v != "" {
		return v
	}
	return filepath.Join(o.Home, "bin")
}

// lockPidFile writes and locks the pid file as the real daemons do; a second
// process of the same role in the same home fails here.
func lockPidFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open pid file %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("pid file %s is already locked, another process may be running", path)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// setComm renames the process as ps shows it (comm), so stop scripts that
// check for "java" or "doris_be" accept it as the real scripts do.
func setComm(name string) {
	p := fmt.Sprintf("/proc/self/task/%d/comm", os.Getpid())
	_ = os.WriteFile(p, []byte(name), 0o644)
}

// namedPort is one port of a role and its conf key.
type namedPort struct {
	key  string
	port int
}

// listenAll binds every port on all interfaces, as Doris does; on failure it
// closes what it opened and names the port that is taken.
func listenAll(ports []namedPort) (map[string]net.Listener, error) {
	out := map[string]net.Listener{}
	for _, p := range ports {
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", p.port))
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, &portError{key: p.key, port: p.port, err: err}
		}
		out[p.key] = l
	}
	return out, nil
}

type portError struct {
	key  string
	port int
	err  error
}

func (e *portError) Error() string {
	reason := e.err.Error()
	if errors.Is(e.err, syscall.EADDRINUSE) {
		reason = "Address already in use"
	}
	return fmt.Sprintf("Failed to bind %s %d: %s", e.key, e.port, reason)
}

// host resolves the announced address from priority_networks as the
// imitated release does (conf.ChooseHost: releases before 2.0 fall back to
// the loopback address).
func host(c *conf.Conf, version string) (string, error) {
	addrs, err := conf.LocalAddrs()
	if err != nil {
		return "", err
	}
	return conf.ChooseHost(c.String("priority_networks", ""), addrs, major(version) < 2)
}

// call sends one JSON request line to addr and decodes one JSON response line.
func call(addr string, timeout time.Duration, req, resp any) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := c.Write(append(b, '\n')); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read reply from %s: %w", addr, err)
	}
	return json.Unmarshal(line, resp)
}

// serveJSON answers one JSON request line per connection with handle.
func serveJSON(l net.Listener, handle func(raw json.RawMessage) any) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			line, err := bufio.NewReader(c).ReadBytes('\n')
			if err != nil {
				return
			}
			b, err := json.Marshal(handle(json.RawMessage(line)))
			if err != nil {
				return
			}
			_, _ = c.Write(append(b, '\n'))
		}()
	}
}

// serveSilent accepts and closes connections: a port that is open but whose
// protocol (thrift, brpc) nobody in the tests speaks.
func serveSilent(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return "NULL"
	}
	return t.Format("2006-01-02 15:04:05")
}
