package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/joulehq/joule/api"
)

var (
	// bucketUsage holds per-day totals: "2006-01-02/job/<id>" and
	// "2006-01-02/idle/<node>" -> api.Usage. Keys sort by day, so a report
	// over a range reads one contiguous run of rows.
	bucketUsage = []byte("usage")
	// bucketDaily holds the daily reports: "2006-01-02" -> dailyRecord.
	bucketDaily = []byte("daily_reports")
	keyTariff   = []byte("tariff")
)

func addUsage(tx *bolt.Tx, rows []api.Usage) error {
	b := tx.Bucket(bucketUsage)
	for _, u := range rows {
		if len(u.Day) != len(time.DateOnly) {
			return fmt.Errorf("usage row for job %q node %q has day %q; want YYYY-MM-DD", u.JobID, u.Node, u.Day)
		}
		key := []byte(u.Key())
		if v := b.Get(key); v != nil {
			old, err := decodeUsage(v)
			if err != nil {
				return fmt.Errorf("decode usage %s: %w", key, err)
			}
			old.Add(u)
			u = old
		}
		if err := b.Put(key, encodeUsage(u)); err != nil {
			return fmt.Errorf("usage %s: %w", key, err)
		}
	}
	return nil
}

// Usage returns the per-day usage rows of the days from..to (YYYY-MM-DD, both
// inclusive), in key order.
func (db *DB) Usage(fromDay, toDay string) ([]api.Usage, error) {
	var out []api.Usage
	err := db.ScanUsage(fromDay, toDay, func(u api.Usage) { out = append(out, u) })
	return out, err
}

// ScanUsage calls fn with each per-day usage row of the days from..to (both
// inclusive), in key order, inside one read transaction: a long report
// streams through it without holding every row. Strings that repeat (days,
// users, projects, nodes, job ids) are shared between rows.
func (db *DB) ScanUsage(fromDay, toDay string, fn func(api.Usage)) error {
	in := interner{}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketUsage).Cursor()
		end := []byte(toDay + "/\xff")
		for k, v := c.Seek([]byte(fromDay)); k != nil && bytes.Compare(k, end) <= 0; k, v = c.Next() {
			u, err := in.decodeUsage(v)
			if err != nil {
				return fmt.Errorf("decode usage %s: %w", k, err)
			}
			fn(u)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read usage %s..%s from %s: %w", fromDay, toDay, db.path, err)
	}
	return nil
}

// interner hands out one string per distinct byte sequence.
type interner map[string]string

func (in interner) get(b []byte) string {
	if s, ok := in[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	if len(in) < 1<<20 {
		in[s] = s
	}
	return s
}

// PutTariff stores the tariff (its JSON, as the web layer validated it) in
// one synced transaction.
func (db *DB) PutTariff(data []byte) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyTariff, data)
	})
	if err != nil {
		return fmt.Errorf("store tariff in %s: %w", db.path, err)
	}
	return nil
}

// Tariff returns the stored tariff's JSON, or nil when none was set.
func (db *DB) Tariff() ([]byte, error) {
	var out []byte
	err := db.bolt.View(func(tx *bolt.Tx) error {
		out = bytes.Clone(tx.Bucket(bucketMeta).Get(keyTariff))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read tariff from %s: %w", db.path, err)
	}
	return out, nil
}

type dailyRecord struct {
	CreatedAt time.Time `json:"created_at"`
	Rows      int       `json:"rows"`
	CSV       string    `json:"csv"`
}

// PutDailyReport stores (or replaces) the report of one day.
func (db *DB) PutDailyReport(day string, created time.Time, rows int, csv []byte) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return put(tx.Bucket(bucketDaily), day, dailyRecord{CreatedAt: created.UTC(), Rows: rows, CSV: string(csv)})
	})
	if err != nil {
		return fmt.Errorf("store daily report %s in %s: %w", day, db.path, err)
	}
	return nil
}

// DailyReports lists the stored daily reports, newest first.
func (db *DB) DailyReports() ([]api.DailyReport, error) {
	var out []api.DailyReport
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDaily).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var r dailyRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode daily report %s: %w", k, err)
			}
			out = append(out, api.DailyReport{Day: string(k), CreatedAt: r.CreatedAt, Rows: r.Rows})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list daily reports in %s: %w", db.path, err)
	}
	return out, nil
}

// DailyReport returns one day's stored report as CSV; ok is false when there
// is none.
func (db *DB) DailyReport(day string) (csv []byte, ok bool, err error) {
	err = db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDaily).Get([]byte(day))
		if v == nil {
			return nil
		}
		var r dailyRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode daily report %s: %w", day, err)
		}
		csv, ok = []byte(r.CSV), true
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("read daily report %s from %s: %w", day, db.path, err)
	}
	return csv, ok, nil
}

// Usage rows are the bulk of a long report, so they are stored in a compact
// binary form rather than JSON (a year's report reads ~10^5 of them): a
// version byte, the four amounts as float64, then day, job, user, project
// and node as length-prefixed strings.
const usageVersion = 1

func encodeUsage(u api.Usage) []byte {
	b := make([]byte, 0, 1+32+len(u.Day)+len(u.JobID)+len(u.User)+len(u.Project)+len(u.Node)+10)
	b = append(b, usageVersion)
	for _, f := range []float64{u.EnergyJ, u.FacilityEnergyJ, u.Cost, u.CO2G} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	for _, s := range []string{u.Day, u.JobID, u.User, u.Project, u.Node} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func decodeUsage(b []byte) (api.Usage, error) { return interner{}.decodeUsage(b) }

func (in interner) decodeUsage(b []byte) (api.Usage, error) {
	var u api.Usage
	if len(b) > 0 && b[0] == '{' { // JSON, as development builds wrote it
		if err := json.Unmarshal(b, &u); err != nil {
			return u, fmt.Errorf("decode usage row: %w", err)
		}
		return u, nil
	}
	if len(b) < 33 || b[0] != usageVersion {
		return u, errors.New("not a usage row of this joule (unknown encoding)")
	}
	f := func(i int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b[1+8*i:])) }
	u.EnergyJ, u.FacilityEnergyJ, u.Cost, u.CO2G = f(0), f(1), f(2), f(3)
	rest := b[33:]
	for _, dst := range []*string{&u.Day, &u.JobID, &u.User, &u.Project, &u.Node} {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return u, errors.New("truncated usage row")
		}
		*dst = in.get(rest[k : k+int(n)])
		rest = rest[k+int(n):]
	}
	return u, nil
}
