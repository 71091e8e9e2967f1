package node

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/dorismanager/dorismanager/test/dorissim/server/internal/conf"
)

// RunBroker runs an apache_hdfs_broker until ctx ends or a start-up check fails.
func RunBroker(ctx context.Context, o Options) error {
	setComm("java")
	if err := o.resolveVersion(); err != nil {
		return err
	}
	c, err := conf.ParseFile(filepath.Join(o.Home, "conf", "apache_hdfs_broker.conf"), o.lookup)
	if err != nil {
		return fmt.Errorf("load apache_hdfs_broker.conf: %w", err)
	}
	dir := c.String("sys_log_dir", "")
	if dir == "" {
		if v, ok := o.lookup("BROKER_LOG_DIR"); ok && v != "" {
			dir = v
		} else {
			dir = filepath.Join(o.Home, "log")
		}
	}
	lf, err := openLog(dir, "apache_hdfs_broker.log")
	if err != nil {
		return err
	}
	defer lf.Close()
	log := &logger{w: teeErrors{lf}, format: log4jLine("BrokerBootstrap.main():0")}
	err = runBroker(ctx, o, c, log)
	if err != nil {
		log.Errorf("%v", err)
	}
	return err
}

func runBroker(ctx context.Context, o Options, c *conf.Conf, log *logger) error {
	port, err := c.Port("broker_ipc_port", 8000)
	if err != nil {
		return err
	}
	ls, err := listenAll([]namedPort{{"broker_ipc_port", port}})
	if err != nil {
		return err
	}
	l := ls["broker_ipc_port"]
	defer l.Close()
	go serveJSON(l, func(json.RawMessage) any { return peerResp{OK: true} })
	log.Infof("starting apache_hdfs_broker %s on port %d", VersionString(o.Version), port)
	<-ctx.Done()
	log.Infof("broker is shutting down")
	return nil
}
