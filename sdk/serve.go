package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// DescribeArg is the first argument that makes a plugin binary print its
// Info as JSON on stdout and exit, without starting the plugin server.
const DescribeArg = "describe"

// Serve is the whole main of a role plugin:
//
//	func main() { sdk.Serve(fe.New(version)) }
//
// With the argument "describe" it prints role.Info as JSON and exits 0.
// Otherwise it serves the role to the manager over go-plugin's gRPC
// transport and returns only when the manager is done with it. Serve never
// returns on a fatal error: it reports it on stderr and exits non-zero.
func Serve(role Role) {
	if len(os.Args) > 1 && os.Args[1] == DescribeArg {
		os.Exit(describe(role))
	}
	serve(role)
}

func describe(role Role) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Describe(ctx, role, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "describe: %v\n", err)
		return 1
	}
	return 0
}

// Describe writes role.Info as the one line of JSON that "describe" prints.
func Describe(ctx context.Context, role Role, w io.Writer) error {
	info, err := role.Info(ctx)
	if err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(info)
}
