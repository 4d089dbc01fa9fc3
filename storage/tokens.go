package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var bucketTokens = []byte("tokens")

// Token is one API token as stored: never the secret itself, only its
// SHA-256 hash (hex), so a copy of the file grants nothing.
type Token struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	HashHex   string    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
}

// PutToken stores a token under its name in one synced transaction, replacing
// any token of the same name.
func (db *DB) PutToken(t Token) error {
	if t.Name == "" || t.HashHex == "" {
		return fmt.Errorf("save token to %s: empty name or hash", db.path)
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketTokens)
		if err != nil {
			return err
		}
		return put(b, t.Name, &t)
	})
	if err != nil {
		return fmt.Errorf("save token %s to %s: %w", t.Name, db.path, err)
	}
	return nil
}

// Tokens returns every stored token, ordered by name.
func (db *DB) Tokens() ([]Token, error) {
	var out []Token
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var t Token
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("decode token %s: %w", k, err)
			}
			out = append(out, t)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read tokens from %s: %w", db.path, err)
	}
	return out, nil
}

// DeleteToken removes a token by name and reports whether it existed.
func (db *DB) DeleteToken(name string) (bool, error) {
	found := false
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		if b == nil || b.Get([]byte(name)) == nil {
			return nil
		}
		found = true
		return b.Delete([]byte(name))
	})
	if err != nil {
		return false, fmt.Errorf("delete token %s from %s: %w", name, db.path, err)
	}
	return found, nil
}

// Backup writes a consistent snapshot of the live database to w: one
// read-only transaction, so writers go on meanwhile and the copy holds every
// transaction committed before it began. size, if not nil, learns the
// snapshot's size before the first byte is written. It returns the bytes
// written.
func (db *DB) Backup(w io.Writer, size func(int64)) (int64, error) {
	var n int64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if size != nil {
			size(tx.Size())
		}
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("back up %s: %w", db.path, err)
	}
	return n, nil
}

// Compact rewrites the database in dataDir into a fresh file without the free
// pages left by deleted and rewritten values, then replaces the original. It
// needs the data dir to itself: run it while schedulerd is stopped. It returns
// the sizes before and after.
func Compact(dataDir string) (before, after int64, err error) {
	path := dbPath(dataDir)
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, fmt.Errorf("compact: %w; is --data-dir right?", err)
	}
	src, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return 0, 0, fmt.Errorf("compact: data dir %s is in use by a running schedulerd; stop it first (compact is offline; use `schedulerd backup` while it runs)", dataDir)
		}
		return 0, 0, fmt.Errorf("compact: open %s: %w", path, err)
	}
	defer src.Close()
	tmp := filepath.Join(filepath.Dir(path), FileName+".compact")
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("compact: create %s: %w", tmp, err)
	}
	if err := bolt.Compact(dst, src, 1<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("compact %s: %w", path, err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("compact: close %s: %w", tmp, err)
	}
	nst, err := os.Stat(tmp)
	if err != nil {
		return 0, 0, fmt.Errorf("compact: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, 0, fmt.Errorf("compact: replace %s: %w", path, err)
	}
	return st.Size(), nst.Size(), nil
}

// Verify opens the database file at path read-only, checks bbolt's page
// structure and the schema version, and reads every job, node and token: it
// fails when the file is not a whole joule database this build can read.
func Verify(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("verify %s: %w; is it a joule database (schedulerd backup)?", path, err)
	}
	db := &DB{bolt: b, path: path}
	defer b.Close()
	err = b.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketJobs, bucketNodes} {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("no %s bucket: not a joule database", name)
			}
		}
		if n, err := strconv.Atoi(string(tx.Bucket(bucketMeta).Get(keySchema))); err != nil || n < 1 || n > SchemaVersion {
			return fmt.Errorf("schema version %q: this build reads 1..%d", tx.Bucket(bucketMeta).Get(keySchema), SchemaVersion)
		}
		for err := range tx.Check() {
			return fmt.Errorf("damaged: %w", err)
		}
		return nil
	})
	if err == nil {
		_, err = db.Jobs()
	}
	if err == nil {
		_, err = db.Nodes()
	}
	if err == nil {
		_, err = db.Tokens()
	}
	if err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	return nil
}

// Restore replaces the database in dataDir with the snapshot at from (a
// `schedulerd backup` file), offline. It verifies the snapshot first, holds
// the data dir's lock throughout (so it fails, changing nothing, while a
// schedulerd runs on it), copies the snapshot beside the database, syncs it
// and renames it into place. The database it replaced is kept as
// joule.db.before-restore; kept is its path ("" when there was none).
func Restore(dataDir, from string) (kept string, err error) {
	if err := Verify(from); err != nil {
		return "", fmt.Errorf("restore: %w; nothing was changed", err)
	}
	path := dbPath(dataDir)
	if a, b := filepath.Clean(from), filepath.Clean(path); a == b {
		return "", fmt.Errorf("restore: --from %s is the data dir's own database; give a backup file", from)
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return "", fmt.Errorf("restore: create data dir: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		cur, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
		if errors.Is(err, berrors.ErrTimeout) {
			return "", fmt.Errorf("restore: data dir %s is in use by a running schedulerd; stop it first (restore is offline); nothing was changed", dataDir)
		}
		if err != nil {
			return "", fmt.Errorf("restore: open %s: %w; move it away by hand if it is damaged", path, err)
		}
		defer cur.Close() // the lock is held until the snapshot is in place
		kept = path + ".before-restore"
	}
	tmp := path + ".restore"
	if err := copyFileSync(from, tmp); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("restore: copy %s: %w; nothing was changed", from, err)
	}
	if kept != "" {
		if err := os.Rename(path, kept); err != nil {
			os.Remove(tmp)
			return "", fmt.Errorf("restore: keep the old database as %s: %w; nothing was changed", kept, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return kept, fmt.Errorf("restore: put %s in place: %w; the old database is %s", tmp, err, kept)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // the renames survive a crash
		d.Close()
	}
	return kept, nil
}

func copyFileSync(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
