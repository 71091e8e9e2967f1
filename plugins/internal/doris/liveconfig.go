package doris

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/dorismanager/dorismanager/sdk"
)

// FELive changes an FE's settings over SQL on the FE itself (its
// query_port): SHOW FRONTEND CONFIG (ADMIN SHOW FRONTEND CONFIG before 2.1)
// says which keys are mutable, ADMIN SET FRONTEND CONFIG changes one (a
// MasterOnly key lands on the master, which Doris forwards it to).
type FELive struct{}

func feAddr(host string, d Deployed) string { return Endpoint(host, d.Ports["query_port"]) }

// Current implements LiveConfig.
func (FELive) Current(ctx context.Context, h sdk.Host, host string, d Deployed) (map[string]LiveItem, error) {
	addr := feAddr(host, d)
	rows, err := h.Query(ctx, addr, "SHOW FRONTEND CONFIG")
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var err2 error
		if rows, err2 = h.Query(ctx, addr, "ADMIN SHOW FRONTEND CONFIG"); err2 != nil {
			return nil, fmt.Errorf("SHOW FRONTEND CONFIG on %s: %v; ADMIN SHOW FRONTEND CONFIG: %w", addr, err, err2)
		}
	}
	out := map[string]LiveItem{}
	for i := range rows.Values {
		if k := Col(rows, i, "Key"); k != "" {
			out[k] = LiveItem{Mutable: colBool(rows, i, "IsMutable"), Value: Col(rows, i, "Value")}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("SHOW FRONTEND CONFIG on %s listed no keys", addr)
	}
	return out, nil
}

// Set implements LiveConfig.
func (FELive) Set(ctx context.Context, h sdk.Host, host string, d Deployed, key, value string) error {
	if !keyRe.MatchString(key) {
		return fmt.Errorf("%q is not a config key", key)
	}
	_, err := h.Query(ctx, feAddr(host, d), fmt.Sprintf(`ADMIN SET FRONTEND CONFIG ("%s" = "%s")`, key, sqlString(value)))
	return err
}

// sqlString escapes a value for a double-quoted Doris string literal.
func sqlString(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v)
}

// BELive changes a BE's settings over its webserver_port: GET
// /api/show_config lists [name, type, value, mutable], POST
// /api/update_config?key=value changes one. It never asks the BE to
// persist (persist=true writes be_custom.conf, which would then win over
// be.conf); be.conf is written by Reconfigure.
type BELive struct{}

func beURL(host string, d Deployed, p string) string {
	return "http://" + Endpoint(host, d.Ports["webserver_port"]) + p
}

// Current implements LiveConfig.
func (BELive) Current(ctx context.Context, h sdk.Host, host string, d Deployed) (map[string]LiveItem, error) {
	u := beURL(host, d, "/api/show_config")
	resp, err := h.HTTPGet(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	var rows [][]string
	if resp.Status != 200 || json.Unmarshal(resp.Body, &rows) != nil {
		return nil, fmt.Errorf("GET %s: HTTP %d %s", u, resp.Status, clip(string(resp.Body)))
	}
	out := map[string]LiveItem{}
	for _, r := range rows {
		if len(r) >= 4 {
			out[r[0]] = LiveItem{Mutable: strings.EqualFold(r[3], "true"), Value: r[2]}
		}
	}
	return out, nil
}

// Set implements LiveConfig.
func (BELive) Set(ctx context.Context, h sdk.Host, host string, d Deployed, key, value string) error {
	u := beURL(host, d, "/api/update_config?"+url.Values{key: {value}}.Encode())
	resp, err := h.HTTPPost(ctx, u, "text/plain", nil)
	if err != nil {
		return fmt.Errorf("POST %s: %w", u, err)
	}
	// 2.x answers [{"config_name","status","msg"}], 0.x/1.x {"status","msg"}.
	type status struct {
		Status string `json:"status"`
		Msg    string `json:"msg"`
	}
	var list []status
	if json.Unmarshal(resp.Body, &list) != nil {
		var one status
		if json.Unmarshal(resp.Body, &one) != nil {
			return fmt.Errorf("POST %s: HTTP %d %s", u, resp.Status, clip(string(resp.Body)))
		}
		list = []status{one}
	}
	for _, s := range list {
		if !strings.EqualFold(s.Status, "OK") {
			return fmt.Errorf("%s", s.Msg)
		}
	}
	if resp.Status != 200 || len(list) == 0 {
		return fmt.Errorf("POST %s: HTTP %d %s", u, resp.Status, clip(string(resp.Body)))
	}
	return nil
}
