package power

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps power usable by the pure scheduler core and the
// simulator: no storage, web, HTTP or bbolt (see doc.go).
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	sub, _ := filepath.Glob("*/*.go") // power/window
	files = append(files, sub...)
	if err != nil {
		t.Fatal(err)
	}
	forbidden := []string{"net/http", "go.etcd.io/bbolt", "github.com/joulehq/joule/storage", "github.com/joulehq/joule/web", "github.com/joulehq/joule/agent", "github.com/joulehq/joule/scheduler"}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if path == bad || strings.HasPrefix(path, bad+"/") {
					t.Errorf("%s imports %s: power must not", f, path)
				}
			}
		}
	}
}
