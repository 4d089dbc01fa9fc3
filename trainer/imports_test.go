package trainer

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the trainer a library: no scheduler, storage, web,
// agent, net/http or bbolt among its dependencies.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/joulehq/joule/scheduler", "github.com/joulehq/joule/storage",
			"github.com/joulehq/joule/web", "github.com/joulehq/joule/agent", "net/http", "go.etcd.io/bbolt",
			"github.com/joulehq/joule/trainer/internal/cuda/standin"} { // standin is test support
			if dep == bad || strings.HasPrefix(dep, bad+"/") {
				t.Errorf("trainer depends on %s", dep)
			}
		}
	}
}
