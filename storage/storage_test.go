package storage

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/joulehq/joule/api"
)

func openT(t *testing.T, dir string) *DB {
	t.Helper()
	db, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return db
}

func job(n int) api.Job {
	return api.Job{
		ID:          fmt.Sprintf("j-%d", n),
		Spec:        api.JobSpec{Name: "iris", User: "alice", Project: "default", GPUs: 1, Priority: 50},
		State:       api.StateQueued,
		SubmittedAt: time.Date(2026, 11, 28, 12, 0, n, 0, time.UTC),
	}
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir)
	if got, want := db.Path(), filepath.Join(dir, "joule.db"); got != want {
		t.Errorf("Path() = %q, want %q", got, want)
	}
	started := time.Date(2026, 11, 28, 12, 5, 0, 0, time.UTC)
	acc := 0.97
	j := job(1)
	j.State, j.Node, j.GPUIndices, j.StartedAt, j.EnergyJ = api.StateRunning, "node-a", []int{0, 1}, &started, 1234.5
	j.Spec.Walltime = &api.Duration{Duration: 2 * time.Hour}
	j.Spec.Workload.Train = &api.TrainSpec{Dataset: api.DatasetSpec{Format: "csv", Path: "iris.csv"}, Epochs: 3}
	j.Progress = &api.Progress{Epoch: 1, Epochs: 3, Loss: 0.5, SamplesPerS: 100, Fraction: 0.33}
	j.Metrics = &api.Metrics{EpochsRun: 3, TestAccuracy: &acc, ConfusionMatrix: [][]int{{1, 0}, {0, 1}}}
	n := api.Node{Name: "node-a", State: api.NodeUp, LastHeartbeat: started,
		GPUs: []api.GPU{{Index: 0, UUID: "GPU-1", Model: "H100", PowerW: 300, LimitW: 700}}, IdleEnergyJ: 5}
	if err := db.Save([]api.Job{j, job(2)}, []api.Node{n}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openT(t, dir)
	defer db.Close()
	jobs, err := db.Jobs()
	if err != nil {
		t.Fatal(err)
	}
	if want := []api.Job{j, job(2)}; !reflect.DeepEqual(jobs, want) {
		t.Errorf("Jobs() after reopen =\n%+v\nwant\n%+v", jobs, want)
	}
	nodes, err := db.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	if want := []api.Node{n}; !reflect.DeepEqual(nodes, want) {
		t.Errorf("Nodes() = %+v, want %+v", nodes, want)
	}

	// Save replaces by key and leaves the rest alone.
	j2 := job(2)
	j2.State = api.StateCancelled
	if err := db.Save([]api.Job{j2}, nil); err != nil {
		t.Fatal(err)
	}
	jobs, _ = db.Jobs()
	if len(jobs) != 2 || jobs[1].State != api.StateCancelled || jobs[0].State != api.StateRunning {
		t.Errorf("after update: %+v", jobs)
	}

	if err := db.DeleteNode("node-a"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteNode("no-such-node"); err != nil {
		t.Errorf("deleting an absent node: %v", err)
	}
	if nodes, _ := db.Nodes(); len(nodes) != 0 {
		t.Errorf("after DeleteNode: %+v", nodes)
	}
}

func TestEmpty(t *testing.T) {
	db := openT(t, filepath.Join(t.TempDir(), "a", "b")) // creates parents
	defer db.Close()
	jobs, err := db.Jobs()
	if err != nil || len(jobs) != 0 {
		t.Errorf("Jobs() on a new db = %v, %v", jobs, err)
	}
	nodes, err := db.Nodes()
	if err != nil || len(nodes) != 0 {
		t.Errorf("Nodes() on a new db = %v, %v", nodes, err)
	}
}

func TestDataDirMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	db := openT(t, dir)
	defer db.Close()
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	// 0750 less the umask.
	if perm := st.Mode().Perm(); perm&^0o750 != 0 {
		t.Errorf("data dir mode %v, want at most 0750", perm)
	}
	st, err = os.Stat(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm&^0o600 != 0 {
		t.Errorf("db file mode %v, want at most 0600", perm)
	}
}

func TestSaveRejectsEmptyKeys(t *testing.T) {
	db := openT(t, t.TempDir())
	defer db.Close()
	if err := db.Save([]api.Job{job(1), {}}, nil); err == nil || !strings.Contains(err.Error(), "empty id") {
		t.Errorf("Save with an empty job id: %v", err)
	}
	if err := db.Save(nil, []api.Node{{}}); err == nil || !strings.Contains(err.Error(), "empty name") {
		t.Errorf("Save with an empty node name: %v", err)
	}
	// The failed transaction wrote nothing, not even the valid job.
	if jobs, _ := db.Jobs(); len(jobs) != 0 {
		t.Errorf("a failed Save left %d jobs", len(jobs))
	}
}

func TestJobsOrderedNumerically(t *testing.T) {
	db := openT(t, t.TempDir())
	defer db.Close()
	var in []api.Job
	for _, n := range []int{10, 2, 1, 100, 11, 9, 3} {
		in = append(in, job(n))
	}
	if err := db.Save(in, nil); err != nil {
		t.Fatal(err)
	}
	jobs, err := db.Jobs()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	want := []string{"j-1", "j-2", "j-3", "j-9", "j-10", "j-11", "j-100"}
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("ids %v, want %v", ids, want)
	}
}

func TestLessID(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"j-2", "j-10", true},
		{"j-10", "j-2", false},
		{"j-2", "j-2", false},
		{"j-99999999999", "j-100000000000", true},
		{"j-1", "x", true}, // numbered ids first
		{"x", "j-1", false},
		{"a", "b", true},
		{"j-", "j-1", false},
		{"", "j-1", false},
	}
	for _, tt := range tests {
		if got := lessID(tt.a, tt.b); got != tt.want {
			t.Errorf("lessID(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestLockedByAnotherOpen(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, dir)
	defer db.Close()

	start := time.Now()
	db2, err := Open(dir)
	took := time.Since(start)
	if err == nil {
		db2.Close()
		t.Fatal("a second Open of the same data dir succeeded; want a lock error")
	}
	want := fmt.Sprintf("data dir %s is in use by another schedulerd (lock on %s held); stop it or use --data-dir", dir, filepath.Join(dir, "joule.db"))
	if err.Error() != want {
		t.Errorf("error\n %q\nwant\n %q", err, want)
	}
	if took > 2*time.Second {
		t.Errorf("Open took %v to give up; want about 1s", took)
	}

	// Once the holder closes, the directory opens again.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db3 := openT(t, dir)
	db3.Close()
}

func TestDBPathKeepsDotSlash(t *testing.T) {
	if got, want := dbPath("./joule-data"), "./joule-data/joule.db"; got != want {
		t.Errorf("dbPath = %q, want %q", got, want)
	}
	if got, want := dbPath("/var/lib/joule/"), "/var/lib/joule/joule.db"; got != want {
		t.Errorf("dbPath = %q, want %q", got, want)
	}
}

func setSchema(t *testing.T, dir, v string) {
	t.Helper()
	b, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(v))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSchemaVersion(t *testing.T) {
	tests := []struct {
		stored string
		want   string // substring of the error; "" means Open succeeds
	}{
		{"1", ""},
		{"3", "written by a newer joule (schema 3; this build reads 1)"},
		{"0", "unknown schema version 0"},
		{"x", `schema version "x" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.stored, func(t *testing.T) {
			dir := t.TempDir()
			openT(t, dir).Close()
			setSchema(t, dir, tt.stored)
			db, err := Open(dir)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				db.Close()
				return
			}
			if err == nil {
				db.Close()
				t.Fatalf("Open succeeded; want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			// The refused file is closed: it can be opened again.
			b, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatalf("file still locked after a refused Open: %v", err)
			}
			b.Close()
		})
	}
}

func TestNotADatabase(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("hello, this is not bbolt, but long enough to be read as one page header........"), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := Open(dir)
	if err == nil {
		db.Close()
		t.Fatal("Open of a garbage file succeeded")
	}
	if !strings.Contains(err.Error(), "is it a joule database?") {
		t.Errorf("error %q does not say what to do", err)
	}
}

// crashChildEnv names the data dir for the child of TestDurableAcrossKill.
const crashChildEnv = "JOULE_STORAGE_CRASH_DIR"

// TestCrashChild is not a test on its own: TestDurableAcrossKill runs the test
// binary again with only this test and crashChildEnv set. It saves jobs one
// Save at a time and prints "saved k" once the k-th Save has returned.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("helper process for TestDurableAcrossKill")
	}
	db, err := Open(dir)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	node := api.Node{Name: "node-a", State: api.NodeUp}
	for k := 1; k <= 100000; k++ {
		node.IdleEnergyJ = float64(k)
		if err := db.Save([]api.Job{job(k)}, []api.Node{node}); err != nil {
			fmt.Println("error", err)
			os.Exit(3)
		}
		fmt.Printf("saved %d\n", k)
	}
	os.Exit(4) // the parent should have killed us long before
}

func TestDurableAcrossKill(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const killAfter = 50
	acked := 0
	killed := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "saved ") {
			if strings.HasPrefix(line, "error") {
				t.Errorf("child: %s", line)
			}
			continue
		}
		k, err := strconv.Atoi(strings.TrimPrefix(line, "saved "))
		if err != nil {
			t.Fatalf("child printed %q", line)
		}
		acked = k // every line read was printed after its Save returned
		if k >= killAfter && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	werr := cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed (acked %d): %v", acked, werr)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed by SIGKILL: %v", werr)
	}

	db := openT(t, dir) // also shows the dead child's lock is gone
	defer db.Close()
	jobs, err := db.Jobs()
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) < acked {
		t.Fatalf("%d jobs acknowledged, %d on disk after kill -9", acked, len(jobs))
	}
	for i := 0; i < acked; i++ {
		if want := fmt.Sprintf("j-%d", i+1); jobs[i].ID != want {
			t.Fatalf("job %d is %s, want %s", i, jobs[i].ID, want)
		}
	}
	// A Save is all or nothing: the node was written with the last job.
	nodes, err := db.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 || nodes[0].IdleEnergyJ != float64(len(jobs)) {
		t.Errorf("node after kill: %+v, want idle energy %d", nodes, len(jobs))
	}
	t.Logf("acknowledged %d, found %d jobs after kill -9", acked, len(jobs))
}

// Save acknowledges only what is on disk: bbolt must fsync every commit.
func TestSyncedCommits(t *testing.T) {
	db := openT(t, t.TempDir())
	defer db.Close()
	if db.bolt.NoSync || db.bolt.NoFreelistSync {
		t.Errorf("NoSync=%v NoFreelistSync=%v; Save must be synced", db.bolt.NoSync, db.bolt.NoFreelistSync)
	}
}

// lockChildEnv names the data dir for the child of TestLockHeldByAnotherProcess.
const lockChildEnv = "JOULE_STORAGE_LOCK_DIR"

// TestLockChild is not a test on its own: it opens the data dir, prints
// "open" and holds the lock until it is killed.
func TestLockChild(t *testing.T) {
	dir := os.Getenv(lockChildEnv)
	if dir == "" {
		t.Skip("helper process for TestLockHeldByAnotherProcess")
	}
	if _, err := Open(dir); err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	fmt.Println("open")
	time.Sleep(time.Minute)
	os.Exit(4)
}

// Another schedulerd holding the data dir is refused, and a holder killed
// with SIGKILL leaves no stale lock behind (flock dies with the process).
func TestLockHeldByAnotherProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "open" {
		if strings.HasPrefix(sc.Text(), "error") {
			t.Fatalf("child: %s", sc.Text())
		}
	}

	start := time.Now()
	db, err := Open(dir)
	if err == nil {
		db.Close()
		t.Fatal("Open succeeded while another process holds the data dir")
	}
	if !strings.Contains(err.Error(), "is in use by another schedulerd") {
		t.Errorf("error %q", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Open took %v to give up", took)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	openT(t, dir).Close()
}
