package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

// Verify opens the database file at path read-only and reads every job,
// node and token: it fails when the file is not a whole joule database.
func Verify(path string) error {
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	db := &DB{bolt: b, path: path}
	defer b.Close()
	err = b.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketJobs, bucketNodes} {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("no %s bucket: not a joule database", name)
			}
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
