package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// A runtime flag out of range is refused with what to give instead, before
// anything starts (no data dir is made).
func TestRuntimeFlagsRefused(t *testing.T) {
	tests := []struct{ flag, value, want string }{
		{"--gc-percent", "5", "--gc-percent 5: give 25 or more"},
		{"--min-procs", "0", "--min-procs 0: give 1 or more"},
	}
	for _, tt := range tests {
		t.Run(tt.flag, func(t *testing.T) {
			dir := t.TempDir() + "/data"
			var out, errOut bytes.Buffer
			code := run([]string{"--data-dir", dir, tt.flag, tt.value}, &out, &errOut)
			if code != 2 || !strings.Contains(errOut.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errOut.String(), tt.want)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Fatalf("%s was made although the flag was refused", dir)
			}
		})
	}
}
