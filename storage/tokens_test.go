package storage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
)

func TestTokens(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir)
	for _, tok := range []Token{{Name: "bob", Role: "user", HashHex: "b1"}, {Name: "alice", Role: "admin", HashHex: "a1"}} {
		if err := db.PutToken(tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PutToken(Token{Name: "bob", Role: "user", HashHex: "b2"}); err != nil { // replaces
		t.Fatal(err)
	}
	if err := db.PutToken(Token{Name: "", HashHex: "x"}); err == nil {
		t.Error("a token without a name was stored")
	}
	found, err := db.DeleteToken("nobody")
	if err != nil || found {
		t.Errorf("delete of an unknown token: %v %v", found, err)
	}
	db.Close()
	db = openT(t, dir)
	list, err := db.Tokens()
	if err != nil || len(list) != 2 || list[0].Name != "alice" || list[1].HashHex != "b2" {
		t.Fatalf("tokens after reopen = %+v, %v; want alice and bob (b2), by name", list, err)
	}
	if found, err := db.DeleteToken("bob"); err != nil || !found {
		t.Fatalf("delete bob: %v %v", found, err)
	}
	if list, _ := db.Tokens(); len(list) != 1 {
		t.Errorf("after delete: %+v", list)
	}
}

// A backup taken while writers commit is a whole database: it opens, and
// holds a prefix of the writes (every job up to some n, none after).
func TestBackupWhileWriting(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir)
	var written atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := 1; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := db.Save([]api.Job{job(n)}, nil); err != nil {
				t.Error(err)
				return
			}
			written.Store(int64(n))
		}
	})
	for written.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	var buf bytes.Buffer
	var size int64
	n, err := db.Backup(&buf, func(s int64) { size = s })
	close(stop)
	wg.Wait()
	if err != nil || n != size || int64(buf.Len()) != n {
		t.Fatalf("backup: %d bytes (announced %d, buffered %d), %v", n, size, buf.Len(), err)
	}
	copyPath := filepath.Join(t.TempDir(), FileName)
	os.WriteFile(copyPath, buf.Bytes(), 0o600)
	if err := Verify(copyPath); err != nil {
		t.Fatal(err)
	}
	cp := openT(t, filepath.Dir(copyPath))
	jobs, err := cp.Jobs()
	if err != nil || len(jobs) < 20 {
		t.Fatalf("backup holds %d jobs, %v; want at least 20", len(jobs), err)
	}
	for i, j := range jobs {
		if j.ID != fmt.Sprintf("j-%d", i+1) {
			t.Fatalf("backup job %d is %s: not a prefix of the writes", i, j.ID)
		}
	}
}

func TestVerifyRefusesOtherFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.db")
	os.WriteFile(p, []byte(strings.Repeat("not bolt", 1000)), 0o600)
	if err := Verify(p); err == nil {
		t.Error("Verify accepted a file that is not a database")
	}
}

func TestCompact(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir)
	big := strings.Repeat("x", 4000)
	for round := range 5 { // rewrite the same jobs: free pages pile up
		var jobs []api.Job
		for n := 1; n <= 300; n++ {
			j := job(n)
			j.Reason = fmt.Sprint(round) + big
			jobs = append(jobs, j)
		}
		if err := db.Save(jobs, nil); err != nil {
			t.Fatal(err)
		}
	}
	for n := 1; n <= 250; n++ {
		if err := db.Save([]api.Job{job(n)}, nil); err != nil { // shrink them
			t.Fatal(err)
		}
	}
	if _, _, err := Compact(dir); err == nil || !strings.Contains(err.Error(), "in use by a running schedulerd") {
		t.Errorf("compact of an open database: %v; want refused", err)
	}
	db.Close()
	before, after, err := Compact(dir)
	if err != nil {
		t.Fatal(err)
	}
	if after >= before {
		t.Errorf("compact: %d -> %d bytes; want smaller", before, after)
	}
	db = openT(t, dir)
	jobs, err := db.Jobs()
	if err != nil || len(jobs) != 300 || !strings.HasPrefix(jobs[299].Reason, "4x") {
		t.Fatalf("after compact: %d jobs, %v", len(jobs), err)
	}
	t.Logf("compact: %d -> %d bytes", before, after)
}

// Restore puts a verified snapshot in place of the database, keeps the old
// one, and refuses (changing nothing) a running database or a bad snapshot.
func TestRestore(t *testing.T) {
	src := t.TempDir()
	db, err := Open(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Save([]api.Job{{ID: "j-1", State: api.StateQueued}, {ID: "j-2", State: api.StateQueued}}, nil); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(t.TempDir(), "snap.db")
	f, _ := os.Create(snap)
	if _, err := db.Backup(f, nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	db.Close()

	dir := t.TempDir()
	live, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := live.Save([]api.Job{{ID: "j-9", State: api.StateQueued}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(dir, snap); err == nil || !strings.Contains(err.Error(), "in use by a running schedulerd") {
		t.Fatalf("restore into a running database: %v; want it refused", err)
	}
	live.Close()
	garbage := filepath.Join(t.TempDir(), "garbage.db")
	os.WriteFile(garbage, []byte("not a database"), 0o600)
	if _, err := Restore(dir, garbage); err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("restore from garbage: %v; want it refused", err)
	}
	ids := func(d string) string {
		t.Helper()
		db, err := Open(d)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		jobs, err := db.Jobs()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, j := range jobs {
			out = append(out, j.ID)
		}
		return strings.Join(out, ",")
	}
	if got := ids(dir); got != "j-9" {
		t.Fatalf("after refused restores the data dir holds %s; want j-9 untouched", got)
	}
	kept, err := Restore(dir, snap)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(dir); got != "j-1,j-2" {
		t.Errorf("restored data dir holds %s; want the snapshot's j-1,j-2", got)
	}
	if kept != filepath.Join(dir, FileName+".before-restore") {
		t.Errorf("old database kept as %q", kept)
	}
	if err := Verify(kept); err != nil {
		t.Errorf("the kept old database: %v", err)
	}
}
