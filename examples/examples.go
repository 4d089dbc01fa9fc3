// Package examples embeds the example job specs and their small data sets, so
// that `schedulerd --demo` runs from any directory and works offline.
package examples

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

//go:embed *.yaml data/*.csv
var files embed.FS

// WriteTo copies the examples into dir and returns the job spec files' paths,
// in name order.
func WriteTo(dir string) ([]string, error) {
	var specs []string
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o640); err != nil {
			return err
		}
		if strings.HasSuffix(path, ".yaml") {
			specs = append(specs, dst)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("write examples to %s: %w", dir, err)
	}
	return specs, nil
}
