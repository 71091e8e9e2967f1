// Package loadgen simulates many agents against a manager: each has its
// own certificate from the manager's CA and its own mutual-TLS connection,
// registers, then heartbeats with the agent/wire types at a fixed interval.
// Beside it a REST prober measures API latency, and Proc reads a process's
// CPU time and RSS from /proc. bench_test.go (build tag loadbench) drives
// the benchmark of BENCHMARKS.md with them.
package loadgen

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/dorismanager/dorismanager/core/agents"
	"github.com/dorismanager/dorismanager/core/pki"
	"github.com/dorismanager/dorismanager/core/store"
)

// Identity is one simulated agent: what installAgent would have put on its
// host (UUID, host name, certificate with key).
type Identity struct {
	ClusterID int64
	UUID      string
	Host      string
	Cert      tls.Certificate
}

// Provision creates perCluster agents in each of clusters the way
// installAgent does, through agents.Registry.Prepare: a key and certificate
// from the CA, and the agent's record with the certificate's serial. Hosts
// are made-up addresses 10.x.y.z (never dialled: agents without roles get
// no calls). parallel bounds the certificates issued at once.
func Provision(ctx context.Context, st *store.Store, ca *pki.Authority, clusters []int64, perCluster, parallel int) ([]Identity, error) {
	reg, err := agents.New(agents.Config{Store: st, PKI: ca})
	if err != nil {
		return nil, err
	}
	defer reg.Close()
	out := make([]Identity, len(clusters)*perCluster)
	idx := make(chan int)
	errs := make(chan error, parallel)
	var wg sync.WaitGroup
	for range max(parallel, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				id, err := provisionOne(ctx, reg, clusters[i/perCluster], i)
				if err != nil {
					errs <- err
					return
				}
				out[i] = id
			}
		}()
	}
	var firstErr error
feed:
	for i := range out {
		select {
		case idx <- i:
		case firstErr = <-errs:
			break feed
		case <-ctx.Done():
			firstErr = ctx.Err()
			break feed
		}
	}
	close(idx)
	wg.Wait()
	if firstErr == nil {
		select {
		case firstErr = <-errs:
		default:
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

func provisionOne(ctx context.Context, reg *agents.Registry, clusterID int64, i int) (Identity, error) {
	uuid, err := newUUID()
	if err != nil {
		return Identity{}, err
	}
	host := fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255)
	cr, err := reg.Prepare(ctx, clusterID, host, 9602, "/opt/doris", uuid)
	if err != nil {
		return Identity{}, fmt.Errorf("provision agent %d: %w", i, err)
	}
	cert, err := tls.X509KeyPair(cr.CertAndKey, cr.CertAndKey)
	if err != nil {
		return Identity{}, fmt.Errorf("provision agent %d: %w", i, err)
	}
	return Identity{ClusterID: clusterID, UUID: uuid, Host: host, Cert: cert}, nil
}

// newUUID is a random version-4 UUID, the form of a real agent's id.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("agent id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}
