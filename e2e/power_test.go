package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
)

// TestPowerBudgetMovesLimits runs schedulerd and a simulated agent as real
// processes: a new job is profiled (its limits step down and come back to its
// balanced point), then `joule power` sets a budget and the GPUs' enforced
// limits and measured draw come under it; the budget survives kill -9.
func TestPowerBudgetMovesLimits(t *testing.T) {
	c := newCluster(t)
	const beat = 300 * time.Millisecond
	c.start("agent-a", "agent", "--sim", "dgxh100", "--name", "agent-a", "--scheduler", c.url,
		"--heartbeat", beat.String(), "--data-dir", filepath.Join(c.dir, "agent-a"), "--token-file", c.agentToken("agent-a"),
		"--profile-step", "50", "--profile-steps", "3", "--profile-warmup", "200ms", "--profile-measure", "600ms")
	nodes := func() []api.Node {
		var n []api.Node
		out, err := c.joule("nodes", "-o", "json")
		if err != nil || json.Unmarshal([]byte(out), &n) != nil {
			return nil
		}
		return n
	}
	c.waitFor("the node", 10*time.Second, func() bool { return len(nodes()) == 1 })
	id := c.submit(c.writeSpec("burn.yaml", `
name: burn
user: bob
gpus: 8
energy_policy: balanced
workload: {synthetic: {duration: 1h, utilization: 0.9}}
`))
	c.waitFor("the job's power curve", time.Minute, func() bool {
		j := c.job(id)
		return j.PowerCurve != nil || j.ProfileError != ""
	})
	j := c.job(id)
	if j.PowerCurve == nil || j.PowerCurve.Samples != 4 {
		t.Fatalf("profile: curve %+v, error %q", j.PowerCurve, j.ProfileError)
	}
	// Without a budget the job runs at its balanced point, between the
	// minimum and its 448 W uncapped draw.
	c.waitFor("the balanced limit on every GPU", 10*time.Second, func() bool {
		j = c.job(id)
		n := nodes()
		if len(n) != 1 || j.PowerLimitW < 300 || j.PowerLimitW > 448 {
			return false
		}
		for _, g := range n[0].GPUs {
			if g.LimitW != j.PowerLimitW {
				return false
			}
		}
		return true
	})
	t.Logf("balanced limit after profiling: %.0f W (curve a=%.3f k=%.2f)", j.PowerLimitW, j.PowerCurve.A, j.PowerCurve.K)

	// Below the minimum draw: refused, nothing changes.
	if _, err := c.joule("power", "--default", "1kW"); err == nil || !strings.Contains(err.Error(), "minimum possible draw of 1600 W") {
		t.Fatalf("a 1 kW budget for 8 GPUs of 200 W minimum: %v", err)
	}
	start := time.Now()
	c.mustJoule("power", "--default", "2kW")
	c.waitFor("every GPU at 250 W and the draw under 2 kW", 10*time.Second, func() bool {
		n := nodes()
		if len(n) != 1 {
			return false
		}
		var sum float64
		for _, g := range n[0].GPUs {
			if g.LimitW != 250 {
				return false
			}
			sum += g.PowerW
		}
		return sum <= 2000
	})
	took := time.Since(start)
	t.Logf("under the new budget %s after the change (%.1f heartbeats of %s)", took.Round(10*time.Millisecond), float64(took)/float64(beat), beat)
	var st api.PowerBudgetStatus
	if err := json.Unmarshal([]byte(c.mustJoule("power", "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.WattsNow != 2000 || st.MeasuredW > 2000 || st.MinDrawW != 1600 {
		t.Errorf("status %+v", st)
	}
	t.Logf("seconds over budget while the limits came down: %.2f", st.OverBudgetS)

	// kill -9: the budget was acknowledged, so it is still in force.
	c.sched.Process.Kill()
	c.sched.Wait()
	c.startScheduler()
	if out := c.mustJoule("power"); !strings.Contains(out, "IN FORCE     2000 W  (default)") {
		t.Errorf("after kill -9:\n%s", out)
	}
	if j2 := c.job(id); j2.PowerCurve == nil || j2.PowerCurve.A != j.PowerCurve.A {
		t.Errorf("the job's curve was lost across kill -9: %+v", j2.PowerCurve)
	}
}

// TestLoweredBudgetPreemptsAJob runs schedulerd and two simulated agents as
// real processes, each node busy with an 8-GPU job. `joule power` then sets a
// budget that even every busy GPU at its 200 W minimum (3200 W) exceeds, but
// one node's minimum does not (the energy policy's floor): the
// lower-priority job is preempted and requeued, waiting for power, and the
// measured draw comes under the budget; the other job keeps running.
func TestLoweredBudgetPreemptsAJob(t *testing.T) {
	c := newCluster(t)
	const beat = 300 * time.Millisecond
	for _, n := range []string{"agent-a", "agent-b"} {
		c.startAgent(n, "--heartbeat", beat.String())
	}
	c.waitFor("two nodes", 10*time.Second, func() bool {
		out, err := c.joule("nodes", "-o", "json")
		var n []api.Node
		return err == nil && json.Unmarshal([]byte(out), &n) == nil && len(n) == 2
	})
	keep := c.submit(c.writeSpec("keep.yaml", `
name: keep
user: bob
gpus: 8
priority: 80
energy_policy: performance
workload: {synthetic: {duration: 1h, utilization: 0.9}}
`))
	shed := c.submit(c.writeSpec("shed.yaml", `
name: shed
user: bob
gpus: 8
priority: 20
energy_policy: performance
workload: {synthetic: {duration: 1h, utilization: 0.9}}
`))
	c.waitFor("both jobs running", 20*time.Second, func() bool {
		return c.job(keep).State == api.StateRunning && c.job(shed).State == api.StateRunning
	})
	start := time.Now()
	c.mustJoule("power", "--default", "2500W")
	c.waitFor("the low-priority job requeued and the draw under 2500 W", 20*time.Second, func() bool {
		var st api.PowerBudgetStatus
		if json.Unmarshal([]byte(c.mustJoule("power", "-o", "json")), &st) != nil {
			return false
		}
		j := c.job(shed)
		return j.State == api.StateQueued && st.MeasuredW <= 2500
	})
	t.Logf("under the lowered budget %s after the change (heartbeat %s)", time.Since(start).Round(10*time.Millisecond), beat)
	if j := c.job(shed); !strings.Contains(j.Reason, "power") {
		t.Errorf("requeued job's reason %q; want it to say it waits for power", j.Reason)
	}
	if j := c.job(keep); j.State != api.StateRunning {
		t.Errorf("the high-priority job is %s (%s), want running", j.State, j.Reason)
	}
}

// scripts/gpu-cap-target.sh, issue 6's real-GPU measurement, run through a
// simulated node: a profiled run stores the job's curve, and the next two
// runs of the same name start from it, at the maximum limit (performance)
// and at the balanced operating point, which draws less per epoch.
func TestGPUCapTargetScriptOnASimulatedNode(t *testing.T) {
	bin := buildBinaries(t)
	cmd := exec.Command("bash", "../scripts/gpu-cap-target.sh")
	cmd.Env = append(os.Environ(), "SIM=1", "EPOCHS=40", "ROWS=2000", "HIDDEN=64", "BIN="+bin, "PORT="+strings.TrimPrefix(freePort(t), "127.0.0.1:"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gpu-cap-target.sh: %v\n%s", err, out)
	}
	var limits, joules []float64
	for _, m := range regexp.MustCompile(`\(run [23]\)\s+limit\s+(\d+) W\s+([\d.]+) J/epoch`).FindAllStringSubmatch(string(out), -1) {
		l, _ := strconv.ParseFloat(m[1], 64)
		e, _ := strconv.ParseFloat(m[2], 64)
		limits, joules = append(limits, l), append(joules, e)
	}
	if !strings.Contains(string(out), "curve (run 1's profile): 11 limits") || len(limits) != 2 {
		t.Fatalf("want a profiled curve and two measured runs:\n%s", out)
	}
	if limits[0] != 700 || !(limits[1] > 200 && limits[1] < 700) || !(joules[1] < joules[0]) {
		t.Errorf("performance at %v W (%v J/epoch), balanced at %v W (%v J/epoch): want 700 W, then a lower limit drawing less\n%s",
			limits[0], joules[0], limits[1], joules[1], out)
	}
}
