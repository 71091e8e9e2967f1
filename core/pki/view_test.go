package pki

import (
	"bytes"
	"testing"
	"time"
)

// Handshakes and heartbeats read the CA without waiting for the lock:
// while it is held (a refresh, an Issue), Bundle, Pool and
// ManagerCertificate still answer from the snapshot.
func TestReadsDoNotWaitForTheLock(t *testing.T) {
	a, err := Open(t.TempDir(), Options{ManagerHosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	want := a.Bundle()
	a.mu.Lock()
	done := make(chan []byte)
	go func() {
		_, err := a.ManagerCertificate()
		if err != nil || a.Pool() == nil {
			t.Errorf("ManagerCertificate: %v", err)
		}
		done <- a.Bundle()
	}()
	select {
	case got := <-done:
		if !bytes.Equal(got, want) {
			t.Error("the bundle read while the lock was held differs")
		}
	case <-time.After(30 * time.Second):
		t.Error("reads waited for the lock")
	}
	a.mu.Unlock()
}

// A snapshot does not outlive ReloadEvery: a rotation made meanwhile is
// seen on the first read after it.
func TestSnapshotSeesRotation(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	a, err := Open(dir, Options{ManagerHosts: []string{"127.0.0.1"}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	before := a.SigningID()
	next, err := Rotate(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if a.SigningID() != before {
		t.Fatal("the rotation was seen before ReloadEvery passed")
	}
	now = now.Add(ReloadEvery)
	if got := a.SigningID(); got != next {
		t.Errorf("signing CA %s after ReloadEvery, want the new %s", got, next)
	}
	if !a.Rotating() {
		t.Error("not rotating after the reload")
	}
}
