package storage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSaveModelIsAtomicAndReplaces(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ModelDir("j-1"); err == nil || !strings.Contains(err.Error(), "no model stored for job j-1") {
		t.Fatalf("missing model: %v", err)
	}
	if err := db.SaveModel("j-1", map[string][]byte{"a.json": []byte("1"), "b.bin": []byte("22")}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveModel("j-1", map[string][]byte{"a.json": []byte("3")}); err != nil {
		t.Fatal(err)
	}
	md, err := db.ModelDir("j-1")
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(md)
	if len(entries) != 1 {
		t.Fatalf("replaced model has %d files, want 1", len(entries))
	}
	if b, _ := os.ReadFile(filepath.Join(md, "a.json")); string(b) != "3" {
		t.Fatalf("a.json = %q", b)
	}
	// No temporary directories are left behind.
	all, _ := os.ReadDir(filepath.Join(dir, "models"))
	if len(all) != 1 {
		t.Fatalf("models/ holds %d entries, want 1", len(all))
	}
}

func TestSaveModelRefusesBadNames(t *testing.T) {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		id, file string
	}{{"../x", "a"}, {"j-1", "../../etc/passwd"}, {"j-1", "sub/a"}, {"j-1", ".hidden"}} {
		if err := db.SaveModel(tc.id, map[string][]byte{tc.file: nil}); err == nil {
			t.Errorf("SaveModel(%q, %q) succeeded", tc.id, tc.file)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(db.Path()), "models", "j-1")); err == nil {
		t.Fatal("a refused model left files")
	}
}
