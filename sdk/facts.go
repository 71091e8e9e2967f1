package sdk

import (
	"strconv"
	"strings"
)

// Facts are what a role reports about a node, by key. Values are text; the
// Fact* keys below have typed accessors. A role may report keys of its own.
type Facts map[string]string

// Fact keys the manager reads.
const (
	// FactRunning: the role's process runs (bool).
	FactRunning = "running"
	// FactHealthy: the role answers its health check (bool).
	FactHealthy = "healthy"
	// FactRegistered: the node is a member of the cluster (bool).
	FactRegistered = "registered"
	// FactAlive: the cluster itself sees the node alive (bool).
	FactAlive = "alive"
	// FactDecommissioning: the node is being drained (bool).
	FactDecommissioning = "decommissioning"
	// FactRestartNeeded: a changed setting takes effect only at the next
	// start (bool; Reconfigure).
	FactRestartNeeded = "restartNeeded"
	// FactVersion: the version of the role's software that runs.
	FactVersion = "version"
	// portFactPrefix + name: a port the node listens on (PortFact).
	portFactPrefix = "port."
)

// PortFact is the fact key of a named port, "port.<name>". The manager fills
// Node.Ports from these facts.
func PortFact(name string) string { return portFactPrefix + name }

// Bool reads a boolean fact: known is false when the key is missing or not
// "true"/"false".
func (f Facts) Bool(key string) (value, known bool) {
	switch f[key] {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// SetBool records a boolean fact as "true" or "false".
func (f Facts) SetBool(key string, v bool) { f[key] = strconv.FormatBool(v) }

// Ports returns the ports in the facts, by name; facts that are not a port
// number 1-65535 are left out.
func (f Facts) Ports() map[string]int {
	var out map[string]int
	for k, v := range f {
		name, ok := strings.CutPrefix(k, portFactPrefix)
		if !ok || name == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			continue
		}
		if out == nil {
			out = map[string]int{}
		}
		out[name] = n
	}
	return out
}
