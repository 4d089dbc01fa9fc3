package agent

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
)

func TestSuspendAndResumePrograms(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "calls")
	script := func(name string) string {
		p := filepath.Join(dir, name)
		body := "#!/bin/sh\necho " + name + " \"$@\" >> " + logFile + "\n"
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sim, err := power.NewSimNode("dgxh100", nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Name: "node-a", NVML: sim.NVML(), Sim: sim, DataDir: dir,
		SuspendProgram: script("suspend"), ResumeProgram: script("resume"),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	wait := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if a.PowerState() == want {
				return
			}
		}
		t.Fatalf("power state = %s, want %s", a.PowerState(), want)
	}
	limits := map[int]float64{}
	for i := range 8 {
		limits[i] = 200
	}
	a.reconcile(api.HeartbeatReply{Power: api.PowerSuspended, LimitsW: limits}, api.Heartbeat{})
	wait(api.PowerSuspended)
	if !sim.Suspended() {
		t.Fatal("the simulated node must model the suspension")
	}
	gpus, err := power.ReadGPUs(sim.NVML())
	if err != nil {
		t.Fatal(err)
	}
	if gpus[0].LimitW != 200 || gpus[0].PowerW != 0 {
		t.Fatalf("GPU 0 while suspended: limit %v W, power %v W; want the minimum limit and no draw", gpus[0].LimitW, gpus[0].PowerW)
	}
	a.reconcile(api.HeartbeatReply{Power: api.PowerOn}, api.Heartbeat{})
	wait(api.PowerOn)
	calls, _ := os.ReadFile(logFile)
	if got := strings.TrimSpace(string(calls)); got != "suspend node-a\nresume node-a" {
		t.Fatalf("programs ran as %q", got)
	}
	if sim.Suspended() {
		t.Fatal("the simulated node must be awake again")
	}
}

func TestPowerProgramFailureKeepsState(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("#!/bin/sh\necho no BMC >&2\nexit 3\n"), 0o755)
	if err := runPowerProgram(bad, "node-a", time.Minute); err == nil || !strings.Contains(err.Error(), "no BMC") {
		t.Fatalf("err = %v, want the program's output", err)
	}
	slow := filepath.Join(dir, "slow")
	os.WriteFile(slow, []byte("#!/bin/sh\nexec sleep 5\n"), 0o755)
	if err := runPowerProgram(slow, "node-a", 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("err = %v, want a timeout", err)
	}
}
