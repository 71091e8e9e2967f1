// Package simtest runs the Doris role plugins' day-2 operations (scale-in,
// upgrade, reconfigure, remove) against the Doris simulator on this
// machine: real start scripts, processes, files and MySQL/HTTP traffic on
// 127.0.0.1, through doristest.LocalHost. It holds only tests.
package simtest
