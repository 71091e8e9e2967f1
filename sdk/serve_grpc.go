package sdk

import (
	"fmt"
	"os"
)

func serve(role Role) {
	_ = role
	fmt.Fprintln(os.Stderr, "this plugin is meant to be started by Doris Manager")
	os.Exit(1)
}
