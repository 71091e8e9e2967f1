package node

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Frontend is one FE of the cluster as the master records it.
type Frontend struct {
	Name              string
	Host              string
	EditLogPort       int
	HTTPPort          int
	QueryPort         int
	RPCPort           int
	Role              string // FOLLOWER or OBSERVER
	IsHelper          bool
	Joined            bool
	Alive             bool `json:"-"`
	ReplayedJournalID int64
	LastStartTime     time.Time
	LastHeartbeat     time.Time
	ErrMsg            string
	Version           string
}

// Backend is one BE as the master records it.
type Backend struct {
	ID             int64
	Host           string
	HeartbeatPort  int
	BePort         int
	HTTPPort       int
	BrpcPort       int
	Decommissioned bool
	Alive          bool `json:"-"`
	LastStartTime  time.Time
	LastHeartbeat  time.Time
	ErrMsg         string
	Version        string
}

// Broker is one broker process as the master records it.
type Broker struct {
	Name           string
	Host           string
	Port           int
	Alive          bool `json:"-"`
	LastStartTime  time.Time
	LastUpdateTime time.Time
	ErrMsg         string
}

// Meta is what an FE keeps in meta_dir: the cluster it belongs to and, as
// replicated from the master, its membership.
type Meta struct {
	ClusterID int64
	SelfName  string
	IsMaster  bool
	Master    string // host:edit_log_port of the master, for non-masters
	JournalID int64
	NextID    int64
	Frontends []*Frontend
	Backends  []*Backend
	Brokers   []*Broker
	Databases []*Database
	// Passwords are the accounts' mysql_native_password hashes ("*HEX"),
	// by user; a user without one has an empty password.
	Passwords map[string]string `json:",omitempty"`
	// WrittenBy is the version of the FE that last wrote the meta; a newer
	// version reads an older one's meta (fields only ever get added).
	WrittenBy string `json:",omitempty"`
}

func metaPath(metaDir string) string { return filepath.Join(metaDir, "image", "dorissim-meta.json") }

// loadMeta returns nil when the FE has never started with this meta_dir.
func loadMeta(metaDir string) (*Meta, error) {
	b, err := os.ReadFile(metaPath(metaDir))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read meta: %w", err)
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse meta %s: %w", metaPath(metaDir), err)
	}
	return &m, nil
}

// save writes the meta atomically (bdb/ and image/ as a real meta_dir has).
func (m *Meta) save(metaDir string) error {
	for _, d := range []string{"image", "bdb"} {
		if err := os.MkdirAll(filepath.Join(metaDir, d), 0o755); err != nil {
			return fmt.Errorf("create meta subdir: %w", err)
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := metaPath(metaDir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	return os.Rename(tmp, metaPath(metaDir))
}

func (m *Meta) clone() *Meta {
	b, _ := json.Marshal(m)
	var c Meta
	_ = json.Unmarshal(b, &c)
	// Alive is not serialised; carry it over for SHOW on forwarded copies.
	for i, f := range m.Frontends {
		c.Frontends[i].Alive = f.Alive
	}
	for i, be := range m.Backends {
		c.Backends[i].Alive = be.Alive
	}
	for i, br := range m.Brokers {
		c.Brokers[i].Alive = br.Alive
	}
	return &c
}

func (m *Meta) frontend(host string, port int) *Frontend {
	for _, f := range m.Frontends {
		if f.Host == host && f.EditLogPort == port {
			return f
		}
	}
	return nil
}

func (m *Meta) backend(host string, port int) *Backend {
	for _, b := range m.Backends {
		if b.Host == host && b.HeartbeatPort == port {
			return b
		}
	}
	return nil
}

// feNodeName is the 2.x style FE name: fe_<uuid with underscores>.
func feNodeName() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("fe_%s_%s_%s_%s_%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
}

func randomClusterID() int64 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return int64(b[0])<<23 | int64(b[1])<<15 | int64(b[2])<<7 | int64(b[3]>>1) + 1
}
