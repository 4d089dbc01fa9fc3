package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/joulehq/joule/api"
)

// bucketSamples holds one nested bucket per series, "node/<name>" and
// "job/<id>", keyed by the sample's time (8-byte big-endian Unix
// nanoseconds) so that a range is one cursor run and pruning deletes from
// the front. The daemon decides how often to sample; PruneSamples bounds the
// file by age.
var bucketSamples = []byte("samples")

func sampleKey(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano()))
}

func putSamples(tx *bolt.Tx, nodes map[string]api.NodeSample, jobs map[string]api.JobSample) error {
	root := tx.Bucket(bucketSamples)
	add := func(series string, t time.Time, v any) error {
		b, err := root.CreateBucketIfNotExists([]byte(series))
		if err != nil {
			return fmt.Errorf("samples %s: %w", series, err)
		}
		data, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode sample %s: %w", series, err)
		}
		return b.Put(sampleKey(t), data)
	}
	for _, name := range sortedKeys(nodes) {
		if err := add("node/"+name, nodes[name].T, nodes[name]); err != nil {
			return err
		}
	}
	for _, id := range sortedKeys(jobs) {
		if err := add("job/"+id, jobs[id].T, jobs[id]); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func readSeries[T any](db *DB, series string, from time.Time) ([]T, error) {
	var out []T
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSamples).Bucket([]byte(series))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		k, v := c.First()
		if from.After(time.Unix(0, 0)) {
			k, v = c.Seek(sampleKey(from))
		}
		for ; k != nil; k, v = c.Next() {
			var s T
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("decode sample %s: %w", series, err)
			}
			out = append(out, s)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read samples %s from %s: %w", series, db.path, err)
	}
	return out, nil
}

// NodeSamples returns a node's samples from `from` on (all with a zero
// time), oldest first.
func (db *DB) NodeSamples(node string, from time.Time) ([]api.NodeSample, error) {
	return readSeries[api.NodeSample](db, "node/"+node, from)
}

// JobSamples returns a job's samples from `from` on, oldest first.
func (db *DB) JobSamples(id string, from time.Time) ([]api.JobSample, error) {
	return readSeries[api.JobSample](db, "job/"+id, from)
}

// PruneSamples deletes every sample older than `before` (and series left
// empty) in one synced transaction, and says how many it deleted.
func (db *DB) PruneSamples(before time.Time) (int, error) {
	n := 0
	end := sampleKey(before)
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketSamples)
		var empty [][]byte
		err := root.ForEachBucket(func(name []byte) error {
			b := root.Bucket(name)
			c := b.Cursor()
			for k, _ := c.First(); k != nil && bytes.Compare(k, end) < 0; k, _ = c.First() {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
			if k, _ := c.First(); k == nil {
				empty = append(empty, bytes.Clone(name))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, name := range empty {
			if err := root.DeleteBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune samples before %s in %s: %w", before.Format(time.RFC3339), db.path, err)
	}
	return n, nil
}
