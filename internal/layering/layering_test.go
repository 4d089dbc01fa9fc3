package layering

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const mod = "github.com/joulehq/joule/"

// rules: the packages (go list patterns, relative to the module root) and
// what they must not depend on, directly or not. Direct imports of `os` and
// reads of the wall clock are checked where the core must take time and data
// as arguments.
var rules = []struct {
	pattern   string
	forbidden []string
	pure      bool // no `import "os"`, no time.Now/Since/Until
}{
	{"./api", []string{"net/http", "go.etcd.io/bbolt", mod + "scheduler", mod + "power", mod + "trainer", mod + "storage", mod + "web", mod + "agent"}, false},
	{"./scheduler", []string{"net/http", "go.etcd.io/bbolt", mod + "storage", mod + "web", mod + "agent"}, true},
	{"./power/...", []string{"net/http", "go.etcd.io/bbolt", mod + "storage", mod + "web", mod + "agent", mod + "scheduler"}, false},
	{"./power/tariff", nil, true},
	{"./trainer/...", []string{"net/http", "go.etcd.io/bbolt", mod + "scheduler", mod + "storage", mod + "web", mod + "agent",
		mod + "trainer/internal/cuda/standin"}, false}, // standin is test support only
}

func TestLayering(t *testing.T) {
	for _, r := range rules {
		t.Run(r.pattern, func(t *testing.T) {
			for _, pkg := range goList(t, r.pattern, "{{.ImportPath}}") {
				for _, dep := range goList(t, pkg, `{{join .Deps "\n"}}`) {
					for _, bad := range r.forbidden {
						if dep == bad || strings.HasPrefix(dep, bad+"/") {
							t.Errorf("%s depends on %s", pkg, dep)
						}
					}
				}
				if r.pure {
					checkPure(t, pkg)
				}
			}
		})
	}
}

// checkPure parses a package's non-test files: no `os` import, no wall clock.
func checkPure(t *testing.T, pkg string) {
	dir := goList(t, pkg, "{{.Dir}}")[0]
	for _, name := range goList(t, pkg, `{{join .GoFiles "\n"}}`) {
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "os" {
				t.Errorf("%s/%s imports os: the core takes its data as arguments", pkg, name)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "time" &&
				(sel.Sel.Name == "Now" || sel.Sel.Name == "Since" || sel.Sel.Name == "Until") {
				t.Errorf("%s/%s reads the wall clock (time.%s); take now as an argument", pkg, name, sel.Sel.Name)
			}
			return true
		})
	}
}

// goList runs `go list -f format pattern` from the module root.
func goList(t *testing.T, pattern, format string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", format, pattern)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pattern, err)
	}
	return strings.Fields(string(out))
}
