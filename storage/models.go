package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// Trained models are files (weights and preprocessing), too big to belong in
// the database: they live in DATA_DIR/models/<job id>/.

var modelFileRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// SaveModel stores a finished job's model files atomically: they are written
// to a temporary directory, synced, and renamed into place, so a reader sees
// the whole model or none. Saving again replaces the model.
func (db *DB) SaveModel(jobID string, files map[string][]byte) error {
	if !modelFileRE.MatchString(jobID) {
		return fmt.Errorf("save model: bad job id %q", jobID)
	}
	if len(files) == 0 {
		return errors.New("save model: no files")
	}
	root := filepath.Join(db.dir, "models")
	if err := os.MkdirAll(root, 0o750); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	tmp, err := os.MkdirTemp(root, "."+jobID+"-")
	if err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	defer os.RemoveAll(tmp)
	for name, data := range files {
		if !modelFileRE.MatchString(name) {
			return fmt.Errorf("save model: bad file name %q: plain names only", name)
		}
		if err := writeSynced(filepath.Join(tmp, name), data); err != nil {
			return fmt.Errorf("save model: %w", err)
		}
	}
	dst := filepath.Join(root, jobID)
	old := dst + ".old"
	_ = os.RemoveAll(old)
	if err := os.Rename(dst, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("save model: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	_ = os.RemoveAll(old)
	return syncDir(root)
}

// ModelDir returns the directory of a job's stored model.
func (db *DB) ModelDir(jobID string) (string, error) {
	if !modelFileRE.MatchString(jobID) {
		return "", fmt.Errorf("bad job id %q", jobID)
	}
	dir := filepath.Join(db.dir, "models", jobID)
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("no model stored for job %s: only a train job that succeeded has one", jobID)
	}
	return dir, nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
