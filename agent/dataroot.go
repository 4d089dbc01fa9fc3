package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/joulehq/joule/api"
)

// checkDatasets refuses a dataset path outside the agent's data root, or one
// whose symlinks lead outside it: a job may read only what the node's
// operator put under --data-root.
func (a *Agent) checkDatasets(d api.DatasetSpec) error {
	for _, f := range []struct{ field, path string }{{"path", d.Path}, {"test_path", d.TestPath}} {
		if f.path == "" {
			continue
		}
		if err := underRoot(a.cfg.DataRoot, f.path); err != nil {
			return fmt.Errorf("dataset.%s: %w", f.field, err)
		}
	}
	return nil
}

// underRoot checks that path, with every symlink resolved, lies inside root
// (itself already absolute and resolved). A path that does not exist is
// checked as written, so the trainer reports it missing.
func underRoot(root, path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%s is relative; submit absolute dataset paths (joule submit resolves them against the spec file)", path)
	}
	resolved, err := resolveExisting(filepath.Clean(path))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if inside(root, resolved) {
		return nil
	}
	if resolved != filepath.Clean(path) && inside(root, filepath.Clean(path)) {
		return fmt.Errorf("%s leads through a symlink to %s, outside this node's data root %s; copy the data under it", path, resolved, root)
	}
	return fmt.Errorf("%s is outside this node's data root %s; put the dataset under it (agent --data-root)", path, root)
}

// resolveExisting resolves the symlinks of the longest existing prefix of an
// absolute, clean path and appends the rest as written.
func resolveExisting(p string) (string, error) {
	r, err := filepath.EvalSymlinks(p)
	if err == nil {
		return r, nil
	}
	if !os.IsNotExist(err) {
		return "", err
	}
	parent := filepath.Dir(p)
	if parent == p {
		return p, nil
	}
	rp, err := resolveExisting(parent)
	if err != nil {
		return "", err
	}
	return filepath.Join(rp, filepath.Base(p)), nil
}

func inside(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
