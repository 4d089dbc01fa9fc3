package storage

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/joulehq/joule/api"
)

// keyPowerBudget holds the power budget (JSON) in the meta bucket.
var keyPowerBudget = []byte("power_budget")

// SavePowerBudget stores the power budget in one synced transaction.
func (db *DB) SavePowerBudget(b api.PowerBudget) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return put(tx.Bucket(bucketMeta), string(keyPowerBudget), b)
	})
	if err != nil {
		return fmt.Errorf("save power budget to %s: %w", db.path, err)
	}
	return nil
}

// PowerBudget reads the stored power budget; ok is false if none was ever set.
func (db *DB) PowerBudget() (b api.PowerBudget, ok bool, err error) {
	err = db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keyPowerBudget)
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &b)
	})
	if err != nil {
		return api.PowerBudget{}, false, fmt.Errorf("read power budget from %s: %w", db.path, err)
	}
	return b, ok, nil
}
