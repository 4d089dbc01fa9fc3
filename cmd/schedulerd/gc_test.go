package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// A GC target below 25 is refused with what to give instead, before
// anything starts (no data dir is made).
func TestGCPercentRefused(t *testing.T) {
	dir := t.TempDir() + "/data"
	var out, errOut bytes.Buffer
	code := run([]string{"--data-dir", dir, "--gc-percent", "5"}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "--gc-percent 5: give 25 or more") {
		t.Fatalf("exit %d, stderr %q; want 2 and the flag named with what to give", code, errOut.String())
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatalf("%s was made although the flag was refused", dir)
	}
}

// --min-procs below 1 is refused the same way.
func TestMinProcsRefused(t *testing.T) {
	dir := t.TempDir() + "/data"
	var out, errOut bytes.Buffer
	code := run([]string{"--data-dir", dir, "--min-procs", "0"}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "--min-procs 0: give 1 or more") {
		t.Fatalf("exit %d, stderr %q; want 2 and the flag named with what to give", code, errOut.String())
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatalf("%s was made although the flag was refused", dir)
	}
}
