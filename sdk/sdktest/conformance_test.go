package sdktest_test

import (
	"testing"

	"github.com/dorismanager/dorismanager/sdk"
	"github.com/dorismanager/dorismanager/sdk/sdktest"
)

func scriptedHost() *sdktest.FakeHost {
	h := sdktest.NewFakeHost()
	h.ExecOK(`openjdk version "17"`, "java")
	h.SetDefaultExec(func(sdk.Command) (sdk.ExecResult, error) { return sdk.ExecResult{}, nil })
	h.HTTPGetResponse("http://", 200, "{}")
	h.HandleQuery("", func(string, string) (sdk.Rows, error) {
		return sdk.Rows{Columns: []string{"Alive"}, Values: [][]string{{"true"}}}, nil
	})
	return h
}

func TestConformanceToyRole(t *testing.T) {
	sdktest.Conformance(t, toyRole{version: "1.0.0"}, sdktest.WithHost(scriptedHost))
}
