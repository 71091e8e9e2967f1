package simtest

import (
	"fmt"
	"os"
	"testing"

	"github.com/dorismanager/dorismanager/plugins/internal/doris/doristest"
)

// sim serves the releases every test installs: built and packed once, as
// packing the simulator binary is most of a test's time under -race.
var (
	sim *doristest.Sim
	// broken is 2.1.9, whose BE refuses to start on this machine (its
	// open-files threshold is out of reach).
	broken string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "simtest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		var err error
		if sim, err = doristest.StartSim(dir, "2.1.7", "2.1.8"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer sim.Close()
		if broken, err = sim.Pack("2.1.9", "", map[string]string{"DORIS_SIM_MIN_NOFILE": "100000000"}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}
