package doris

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dorismanager/dorismanager/sdk"
)

// FEHealth: GET http://host:http_port/api/bootstrap answers code 0 once the
// FE has finished starting (0.x answered {"status":"OK"}).
func FEHealth(ctx context.Context, h sdk.Host, host string, d Deployed) (bool, string) {
	url := fmt.Sprintf("http://%s/api/bootstrap", Endpoint(host, d.Ports["http_port"]))
	resp, err := h.HTTPGet(ctx, url)
	if err != nil {
		return false, fmt.Sprintf("GET %s: %v", url, err)
	}
	var body struct {
		Code   *int   `json:"code"`
		Status string `json:"status"`
		Msg    string `json:"msg"`
	}
	if resp.Status != 200 || json.Unmarshal(resp.Body, &body) != nil {
		return false, fmt.Sprintf("GET %s: HTTP %d %s", url, resp.Status, clip(string(resp.Body)))
	}
	if (body.Code != nil && *body.Code == 0) || (body.Code == nil && strings.EqualFold(body.Status, "OK")) {
		return true, "bootstrap done"
	}
	return false, fmt.Sprintf("GET %s: %s", url, clip(string(resp.Body)))
}

// BEHealth: GET http://host:webserver_port/api/health answers status OK.
func BEHealth(ctx context.Context, h sdk.Host, host string, d Deployed) (bool, string) {
	url := fmt.Sprintf("http://%s/api/health", Endpoint(host, d.Ports["webserver_port"]))
	resp, err := h.HTTPGet(ctx, url)
	if err != nil {
		return false, fmt.Sprintf("GET %s: %v", url, err)
	}
	var body struct {
		Status string `json:"status"`
	}
	if resp.Status == 200 && json.Unmarshal(resp.Body, &body) == nil && strings.EqualFold(body.Status, "OK") {
		return true, "health OK"
	}
	return false, fmt.Sprintf("GET %s: HTTP %d %s", url, resp.Status, clip(string(resp.Body)))
}

// BrokerHealth: the broker has no HTTP endpoint; it is healthy once its
// process (checked by the caller) listens on broker_ipc_port.
func BrokerHealth(ctx context.Context, h sdk.Host, host string, d Deployed) (bool, string) {
	port := d.Ports["broker_ipc_port"]
	busy, err := Listening(ctx, h, port)
	if err != nil {
		return false, err.Error()
	}
	if busy[port] {
		return true, fmt.Sprintf("listening on %d", port)
	}
	return false, fmt.Sprintf("nothing listens on broker_ipc_port %d yet", port)
}
