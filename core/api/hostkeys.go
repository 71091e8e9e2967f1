package api

import (
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/dorismanager/dorismanager/core/httpx"
	"github.com/dorismanager/dorismanager/core/process"
	"github.com/dorismanager/dorismanager/core/store"
)

// HostKeyView is an SSH host key a cluster recorded for one of its hosts.
type HostKeyView struct {
	Host        string `json:"host"`
	Port        int    `json:"port"`
	Fingerprint string `json:"fingerprint"`
	// KeyType is null after a change until the host presents the new key.
	KeyType    *string     `json:"keyType"`
	CreateTime *httpx.Time `json:"createTime"`
	UpdateTime *httpx.Time `json:"updateTime"`
}

func hostKeyView(k store.HostKey) HostKeyView {
	v := HostKeyView{Host: k.Host, Port: k.Port, Fingerprint: k.Fingerprint, KeyType: nullable(k.KeyType), CreateTime: httpx.NewTime(&k.CreatedAt)}
	if !k.UpdatedAt.IsZero() {
		v.UpdateTime = httpx.NewTime(&k.UpdatedAt)
	}
	return v
}

// listHostKeys answers GET /api/cluster/{clusterId}/hostKeys.
func (a *api) listHostKeys(w http.ResponseWriter, r *http.Request) {
	id, err := a.clusterID(r, pathID)
	if err != nil {
		fail(w, err)
		return
	}
	ks, err := a.st.HostKeysOf(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	out := make([]HostKeyView, 0, len(ks))
	for _, k := range ks {
		out = append(out, hostKeyView(k))
	}
	httpx.OK(w, out)
}

type changeHostKeyReq struct {
	Host           string `json:"host"`
	Port           *ID    `json:"port"`
	OldFingerprint string `json:"oldFingerprint"`
	NewFingerprint string `json:"newFingerprint"`
}

// changeHostKey answers POST /api/cluster/{clusterId}/hostKeys: the
// cluster's recorded key of a host is replaced by newFingerprint, only when
// oldFingerprint is the one recorded. The host's next installAgent must
// present the new key.
func (a *api) changeHostKey(w http.ResponseWriter, r *http.Request) {
	id, err := a.clusterID(r, pathID)
	if err != nil {
		fail(w, err)
		return
	}
	var req changeHostKeyReq
	if err := httpx.Decode(w, r, &req); err != nil {
		fail(w, err)
		return
	}
	if err := process.CheckHost("host", req.Host); err != nil {
		fail(w, err)
		return
	}
	for field, fp := range map[string]string{"oldFingerprint": req.OldFingerprint, "newFingerprint": req.NewFingerprint} {
		if !process.IsFingerprint(fp) {
			fail(w, httpx.BadRequest("%s %q is not a fingerprint like ssh-keygen -l prints (SHA256: and 43 characters)", field, truncate(fp, 60)))
			return
		}
	}
	if req.OldFingerprint == req.NewFingerprint {
		fail(w, httpx.BadRequest("newFingerprint is oldFingerprint: nothing to change"))
		return
	}
	ctx := r.Context()
	port := 0
	if req.Port != nil {
		if port = int(*req.Port); port < 1 || port > 65535 {
			fail(w, httpx.BadRequest("port %d is out of range 1..65535", port))
			return
		}
	} else if port, err = a.onlyHostKeyPort(r, id, req.Host); err != nil {
		fail(w, err)
		return
	}
	ok, err := a.st.ChangeHostKey(ctx, id, req.Host, port, req.OldFingerprint, req.NewFingerprint)
	switch {
	case errors.Is(err, store.ErrNotFound):
		fail(w, httpx.NotFound("cluster %d has no host key recorded for %s port %d: nothing to change (installAgent records the key it first sees, or the one pinned in hostKeyFingerprints)", id, req.Host, port))
		return
	case err != nil:
		fail(w, err)
		return
	case !ok:
		fail(w, httpx.Conflict("oldFingerprint is not the fingerprint cluster %d recorded for %s port %d (GET /api/cluster/%d/hostKeys shows it): nothing changed", id, req.Host, port, id))
		return
	}
	a.log.Info("host key changed", "cluster", id, "host", req.Host, "port", port, "old", req.OldFingerprint, "new", req.NewFingerprint, "user", user(r))
	k, err := a.st.HostKeyOf(ctx, id, req.Host, port)
	if err != nil {
		fail(w, err)
		return
	}
	httpx.OK(w, hostKeyView(k))
}

// onlyHostKeyPort is the port of the cluster's one key for host; a
// request must name the port when there are several.
func (a *api) onlyHostKeyPort(r *http.Request, clusterID int64, host string) (int, error) {
	ks, err := a.st.HostKeysOf(r.Context(), clusterID)
	if err != nil {
		return 0, err
	}
	var ports []string
	port := 0
	for _, k := range ks {
		if k.Host == host {
			port = k.Port
			ports = append(ports, strconv.Itoa(k.Port))
		}
	}
	switch len(ports) {
	case 0:
		return 0, httpx.NotFound("cluster %d has no host key recorded for %s: nothing to change (installAgent records the key it first sees, or the one pinned in hostKeyFingerprints)", clusterID, host)
	case 1:
		return port, nil
	}
	sort.Strings(ports)
	return 0, httpx.BadRequest("cluster %d has host keys for %s on ports %s: say which in port", clusterID, host, strings.Join(ports, ", "))
}
