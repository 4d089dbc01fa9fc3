package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnderRoot(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(root, "sets"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(root, "sets", "iris.csv"), filepath.Join(outside, "secret.csv")} {
		os.WriteFile(f, []byte("a,label\n1,x\n"), 0o644)
	}
	os.Symlink(filepath.Join(outside, "secret.csv"), filepath.Join(root, "sets", "escape.csv"))
	os.Symlink(outside, filepath.Join(root, "outdir"))
	os.Symlink(filepath.Join(root, "sets", "iris.csv"), filepath.Join(root, "alias.csv"))
	resolvedRoot, _ := filepath.EvalSymlinks(root)

	tests := []struct {
		path string
		want string // "" = allowed
	}{
		{filepath.Join(root, "sets", "iris.csv"), ""},
		{filepath.Join(root, "alias.csv"), ""},           // a symlink that stays inside
		{filepath.Join(root, "sets", "missing.csv"), ""}, // missing: the trainer says so
		{filepath.Join(root, "sets", "..", "..", "outside", "secret.csv"), "outside this node's data root"},
		{filepath.Join(outside, "secret.csv"), "outside this node's data root"},
		{filepath.Join(root, "sets", "escape.csv"), "leads through a symlink to"},
		{filepath.Join(root, "outdir", "secret.csv"), "leads through a symlink to"},
		{filepath.Join(root, "outdir", "nothing.csv"), "leads through a symlink to"},
		{"/etc/passwd", "outside this node's data root"},
		{"sets/iris.csv", "is relative"},
		{root + "-sibling/x.csv", "outside this node's data root"},
	}
	for _, tt := range tests {
		err := underRoot(resolvedRoot, tt.path)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v; want allowed", tt.path, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v; want an error containing %q", tt.path, err, tt.want)
		}
	}
}
