package task

import (
	"reflect"
	"strings"
	"testing"

	"github.com/dorismanager/dorismanager/core/store"
)

func TestRoleRoundTrip(t *testing.T) {
	in := Role{ClusterID: 3, Host: "10.0.0.2", Role: "FE", Labels: map[string]string{"master": "true"},
		PackageURL: "http://x/doris.tgz", AutoFix: true, Params: map[string]string{"javaHome": "/opt/jdk"}}
	got, err := RoleOf(store.Task{Input: Encode(in)})
	if err != nil || !reflect.DeepEqual(got, in) {
		t.Fatalf("RoleOf(Encode(%+v)) = %+v, %v", in, got, err)
	}
	// Optional fields stay out of the stored text.
	if s := Encode(Role{ClusterID: 1, Host: "h", Role: "BE"}); strings.Contains(s, "conf") || strings.Contains(s, "labels") {
		t.Fatalf("empty fields stored: %s", s)
	}
	// The role falls back to the task's.
	if got, _ := RoleOf(store.Task{TaskRole: "BE", Input: `{"host":"h"}`}); got.Role != "BE" {
		t.Fatalf("role from TaskRole: %+v", got)
	}
	if _, err := RoleOf(store.Task{ID: 9, Input: "{"}); err == nil || !strings.Contains(err.Error(), "task 9") {
		t.Fatalf("unreadable input: %v", err)
	}
}

func TestAgentRoundTrip(t *testing.T) {
	in := Agent{ClusterID: 1, Host: "h", SSHPort: 2222, User: "ops", InstallDir: "/opt/doris"}
	got, err := AgentOf(store.Task{Input: Encode(in)})
	if err != nil || got != in {
		t.Fatalf("AgentOf(Encode(%+v)) = %+v, %v", in, got, err)
	}
	if _, err := AgentOf(store.Task{ID: 4, Input: "[]"}); err == nil {
		t.Fatal("an array is not an agent input")
	}
}
