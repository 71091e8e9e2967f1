// Package deadline gives the tests one knob for every deadline they set:
// DM_TEST_TIMEOUT_SCALE multiplies them all (2 doubles every deadline, 0.5
// halves it), so a slower machine gets more time instead of failures that
// do not say why. A deadline is a bound on waiting, never a measure of
// speed: speed lives in BENCHMARKS.md.
package deadline

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Env is the variable that scales every test deadline.
const Env = "DM_TEST_TIMEOUT_SCALE"

// Scale is the factor from DM_TEST_TIMEOUT_SCALE, 1 when it is unset. A
// value that is not a positive number is an error, so a typo does not
// silently run with the default.
func Scale() (float64, error) {
	v := os.Getenv(Env)
	if v == "" {
		return 1, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 || f > 1000 {
		return 0, fmt.Errorf("%s=%q: want a positive number such as 2 or 0.5", Env, v)
	}
	return f, nil
}

// D scales d. An invalid DM_TEST_TIMEOUT_SCALE panics: it is a mistake in
// how the tests were started, and every test would report it otherwise.
func D(d time.Duration) time.Duration {
	f, err := Scale()
	if err != nil {
		panic(err)
	}
	return time.Duration(float64(d) * f)
}

// Context is context.WithTimeout with a scaled deadline.
func Context(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, D(d))
}
