package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/joulehq/joule/api"
)

// SchemaVersion is the layout of the buckets and values this build reads and
// writes. Bump it (and add a migration in Open) when the layout changes.
const SchemaVersion = 1

// FileName is the database file inside the data directory.
const FileName = "joule.db"

var (
	bucketMeta  = []byte("meta")
	bucketJobs  = []byte("jobs")
	bucketNodes = []byte("nodes")
	keySchema   = []byte("schema_version")
)

// lockTimeout is how long Open waits for another process to release the file
// lock before it gives up.
const lockTimeout = time.Second

// DB is joule's database: jobs by id and nodes by name, stored as JSON.
type DB struct {
	bolt *bolt.DB
	path string
	dir  string // the data dir: models live in files beside the database
}

// Open opens (creating if needed) the database in dataDir. It creates dataDir
// with mode 0750 and the file with mode 0600. It fails, after about a second,
// when another process holds the database, and refuses a database written by
// a newer joule.
func Open(dataDir string) (*DB, error) {
	if dataDir == "" {
		return nil, errors.New("open database: empty data dir; set --data-dir")
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w; check the path and its permissions, or use --data-dir", err)
	}
	path := dbPath(dataDir)
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("data dir %s is in use by another schedulerd (lock on %s held); stop it or use --data-dir", dataDir, path)
	}
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w; is it a joule database? move it away or use another --data-dir", path, err)
	}
	db := &DB{bolt: b, path: path, dir: dataDir}
	if err := db.init(); err != nil {
		b.Close()
		return nil, err
	}
	return db, nil
}

// dbPath joins dataDir and FileName, keeping a leading "./" so that messages
// show the path the way the user wrote it.
func dbPath(dataDir string) string {
	p := filepath.Join(dataDir, FileName)
	if strings.HasPrefix(dataDir, "."+string(filepath.Separator)) && !strings.HasPrefix(p, ".") {
		p = "." + string(filepath.Separator) + p
	}
	return p
}

// init creates the buckets and checks (or, on a new file, writes) the schema
// version.
func (db *DB) init() error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return fmt.Errorf("create bucket meta in %s: %w", db.path, err)
		}
		if v := meta.Get(keySchema); v != nil {
			n, err := strconv.Atoi(string(v))
			switch {
			case err != nil:
				return fmt.Errorf("open %s: schema version %q is not a number; the file is damaged or not joule's: move it away or use another --data-dir", db.path, v)
			case n > SchemaVersion:
				return fmt.Errorf("open %s: written by a newer joule (schema %d; this build reads %d); upgrade joule or use another --data-dir", db.path, n, SchemaVersion)
			case n < 1:
				return fmt.Errorf("open %s: unknown schema version %d; move the file away or use another --data-dir", db.path, n)
			}
		} else if err := meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion))); err != nil {
			return fmt.Errorf("write schema version to %s: %w", db.path, err)
		}
		for _, name := range [][]byte{bucketJobs, bucketNodes, bucketUsage, bucketDaily, bucketSamples} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s in %s: %w", name, db.path, err)
			}
		}
		return nil
	})
}

// Close releases the database and its file lock.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("close database %s: %w", db.path, err)
	}
	return nil
}

// Path is the database file's path.
func (db *DB) Path() string { return db.path }

// Save writes the given jobs (by id) and nodes (by name), replacing any stored
// under the same key, in one synced transaction: when Save returns nil all of
// them are on disk; when it returns an error none of them is. Jobs and nodes
// not passed are left as they are.
func (db *DB) Save(jobs []api.Job, nodes []api.Node) error {
	return db.Apply(Batch{Jobs: jobs, Nodes: nodes})
}

// Batch is one event's writes: jobs and nodes replace what is stored under
// their key, usage rows are added to the per-day totals, samples are appended
// to their series.
type Batch struct {
	Jobs        []api.Job
	Nodes       []api.Node
	Usage       []api.Usage
	NodeSamples map[string]api.NodeSample // by node name
	JobSamples  map[string]api.JobSample  // by job id
}

// Apply writes a batch in one synced transaction: when it returns nil all of
// it is on disk; when it returns an error none of it is.
func (db *DB) Apply(b Batch) error {
	jobs, nodes := b.Jobs, b.Nodes
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		if err := addUsage(tx, b.Usage); err != nil {
			return err
		}
		if err := putSamples(tx, b.NodeSamples, b.JobSamples); err != nil {
			return err
		}
		jb, nb := tx.Bucket(bucketJobs), tx.Bucket(bucketNodes)
		for i := range jobs {
			j := &jobs[i]
			if j.ID == "" {
				return fmt.Errorf("job %d of %d has an empty id", i+1, len(jobs))
			}
			if err := put(jb, j.ID, j); err != nil {
				return fmt.Errorf("job %s: %w", j.ID, err)
			}
		}
		for i := range nodes {
			n := &nodes[i]
			if n.Name == "" {
				return fmt.Errorf("node %d of %d has an empty name", i+1, len(nodes))
			}
			if err := put(nb, n.Name, n); err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save to %s: %w", db.path, err)
	}
	return nil
}

func put(b *bolt.Bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return b.Put([]byte(key), data)
}

// Jobs returns every stored job, ordered by the number in its id ("j-2"
// before "j-10"); ids without a number sort after, lexically.
func (db *DB) Jobs() ([]api.Job, error) {
	var jobs []api.Job
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketJobs).ForEach(func(k, v []byte) error {
			var j api.Job
			if err := json.Unmarshal(v, &j); err != nil {
				return fmt.Errorf("decode job %s: %w", k, err)
			}
			jobs = append(jobs, j)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read jobs from %s: %w", db.path, err)
	}
	sort.SliceStable(jobs, func(a, b int) bool { return lessID(jobs[a].ID, jobs[b].ID) })
	return jobs, nil
}

// Nodes returns every stored node, ordered by name.
func (db *DB) Nodes() ([]api.Node, error) {
	var nodes []api.Node
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNodes).ForEach(func(k, v []byte) error {
			var n api.Node
			if err := json.Unmarshal(v, &n); err != nil {
				return fmt.Errorf("decode node %s: %w", k, err)
			}
			nodes = append(nodes, n)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read nodes from %s: %w", db.path, err)
	}
	return nodes, nil // bbolt iterates keys in byte order: by name
}

// DeleteNode removes a node in one synced transaction. Deleting a node that is
// not stored is not an error.
func (db *DB) DeleteNode(name string) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNodes).Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("delete node %s from %s: %w", name, db.path, err)
	}
	return nil
}

// lessID orders job ids by their trailing number ("j-2" < "j-10"). Ids with a
// number come first; ties and ids without one fall back to byte order.
func lessID(a, b string) bool {
	na, oka := idNumber(a)
	nb, okb := idNumber(b)
	switch {
	case oka && okb && na != nb:
		return na < nb
	case oka != okb:
		return oka
	}
	return a < b
}

// idNumber returns the number after the last '-' of an id such as "j-42".
func idNumber(id string) (uint64, bool) {
	n, err := strconv.ParseUint(id[strings.LastIndexByte(id, '-')+1:], 10, 64)
	return n, err == nil
}
