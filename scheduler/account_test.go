package scheduler

import (
	"math"
	"testing"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power/tariff"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// Energy is priced at the window in force in each interval, PUE on top, and
// split at midnight into per-day usage rows.
func TestMeterPricesByWindowAndDay(t *testing.T) {
	c := New()
	p := peakPlan(t) // peak 0.20 / off-peak 0.08, PUE 1.2
	now := at("2026-11-26 19:00")
	c.SetTariff(p, now)
	c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 2, 0)}, now)
	j, _ := c.Submit(spec("a", 1, 50), now)
	c.Schedule(now) // on GPU 0
	// 19:00 -> 21:00: GPU 0 (the job) draws 7.2 MJ (2 kWh), GPU 1 (idle) 3.6 MJ.
	hb := gpus("n1", 2, 0)
	hb[0].EnergyJ, hb[1].EnergyJ = 7.2e6, 3.6e6
	_, ch := c.Heartbeat("n1", api.Heartbeat{GPUs: hb, Jobs: []api.JobReport{{ID: j.ID, State: api.StateRunning}}}, at("2026-11-26 21:00"))
	got, _ := c.Job(j.ID)
	// 1 kWh at peak, 1 kWh off-peak, times PUE 1.2: 1.2*0.20 + 1.2*0.08 = 0.336;
	// CO2 1.2*420 + 1.2*250 = 804 g.
	if !near(got.EnergyJ, 7.2e6) || !near(got.Cost, 0.336) || !near(got.CO2G, 804) {
		t.Errorf("job: %v J, cost %v, %v g; want 7.2e6 J, 0.336, 804 g", got.EnergyJ, got.Cost, got.CO2G)
	}
	n := c.Nodes()[0]
	if !near(n.IdleEnergyJ, 3.6e6) || !near(n.IdleCost, 0.168) {
		t.Errorf("idle: %v J, cost %v; want 3.6e6 J, 0.168", n.IdleEnergyJ, n.IdleCost)
	}
	if len(ch.Usage) != 2 {
		t.Fatalf("%d usage rows, want 2 (job, idle): %+v", len(ch.Usage), ch.Usage)
	}
	// 23:00 -> 01:00 next day: the interval is split at midnight.
	c.Heartbeat("n1", api.Heartbeat{GPUs: hb, Jobs: []api.JobReport{{ID: j.ID, State: api.StateRunning}}}, at("2026-11-26 23:00"))
	hb[0].EnergyJ += 7.2e6
	_, ch = c.Heartbeat("n1", api.Heartbeat{GPUs: hb, Jobs: []api.JobReport{{ID: j.ID, State: api.StateRunning}}}, at("2026-11-27 01:00"))
	days := map[string]float64{}
	for _, u := range ch.Usage {
		days[u.Day] += u.EnergyJ
	}
	if !near(days["2026-11-26"], 3.6e6) || !near(days["2026-11-27"], 3.6e6) {
		t.Errorf("usage by day %v; want 3.6e6 J on each side of midnight", days)
	}
}

// With idle_energy "share", a node's idle GPUs' energy goes to its running
// jobs by the GPUs each holds.
func TestShareIdle(t *testing.T) {
	c := New()
	p, err := tariff.Compile(tariff.Tariff{PricePerKWh: 0.1, IdleEnergy: tariff.IdleShare})
	if err != nil {
		t.Fatal(err)
	}
	now := at("2026-11-26 10:00")
	c.SetTariff(p, now)
	c.Heartbeat("n1", api.Heartbeat{GPUs: gpus("n1", 4, 0)}, now)
	a, _ := c.Submit(spec("a", 1, 50), now)
	b, _ := c.Submit(spec("b", 2, 60), now)
	c.Schedule(now) // b on GPUs 0,1; a on GPU 2; GPU 3 idle
	hb := gpus("n1", 4, 100)
	hb[3].EnergyJ = 300
	reports := []api.JobReport{{ID: a.ID, State: api.StateRunning}, {ID: b.ID, State: api.StateRunning}}
	c.Heartbeat("n1", api.Heartbeat{GPUs: hb, Jobs: reports}, now.Add(time.Minute))
	ja, _ := c.Job(a.ID)
	jb, _ := c.Job(b.ID)
	// a: 100 + 300/3 = 200; b: 200 + 2*300/3 = 400.
	if !near(ja.EnergyJ, 200) || !near(jb.EnergyJ, 400) || c.Nodes()[0].IdleEnergyJ != 0 {
		t.Errorf("a %v J, b %v J, idle %v J; want 200, 400, 0", ja.EnergyJ, jb.EnergyJ, c.Nodes()[0].IdleEnergyJ)
	}
}

// A group's totals equal the sum of its jobs, and every grouping adds up to
// the same total.
func TestReportTotals(t *testing.T) {
	rows := []api.Usage{
		{Day: "2026-11-26", JobID: "j-1", User: "alice", Project: "p1", Node: "n1", EnergyJ: 100, FacilityEnergyJ: 130, Cost: 1, CO2G: 10},
		{Day: "2026-11-27", JobID: "j-1", User: "alice", Project: "p1", Node: "n1", EnergyJ: 50, FacilityEnergyJ: 65, Cost: 0.5, CO2G: 5},
		{Day: "2026-11-26", JobID: "j-2", User: "bob", Project: "p1", Node: "n2", EnergyJ: 200, FacilityEnergyJ: 260, Cost: 2, CO2G: 20},
		{Day: "2026-11-27", JobID: "j-10", User: "alice", Project: "p2", Node: "n2", EnergyJ: 10, FacilityEnergyJ: 13, Cost: 0.1, CO2G: 1},
		{Day: "2026-11-27", Node: "n1", EnergyJ: 7, FacilityEnergyJ: 9.1, Cost: 0.07, CO2G: 0.7},
	}
	byJob, total := Report(rows, "job")
	if total.EnergyJ != 367 || total.Jobs != 3 {
		t.Fatalf("total %+v; want 367 J over 3 jobs", total)
	}
	if got := [4]string{byJob[0].Group, byJob[1].Group, byJob[2].Group, byJob[3].Group}; got != [4]string{"j-1", "j-2", "j-10", api.IdleGroup} {
		t.Errorf("job order %v; want j-1, j-2, j-10 by number", got)
	}
	jobEnergy := map[string]float64{}
	for _, r := range byJob {
		jobEnergy[r.Group] = r.EnergyJ
	}
	byUser, _ := Report(rows, "user")
	for _, r := range byUser {
		want := map[string]float64{"alice": jobEnergy["j-1"] + jobEnergy["j-10"], "bob": jobEnergy["j-2"], api.IdleGroup: 7}[r.Group]
		if r.EnergyJ != want {
			t.Errorf("user %s: %v J, want %v (the sum of its jobs)", r.Group, r.EnergyJ, want)
		}
		if r.Group == "alice" && r.Jobs != 2 {
			t.Errorf("alice has %d jobs, want 2", r.Jobs)
		}
	}
	for _, g := range api.ReportGroups {
		groups, tot := Report(rows, g)
		var sum api.ReportRow
		for _, r := range groups {
			sum.EnergyJ += r.EnergyJ
			sum.Cost += r.Cost
			sum.CO2G += r.CO2G
		}
		if !near(sum.EnergyJ, 367) || !near(sum.Cost, 3.67) || !near(sum.CO2G, 36.7) || tot.EnergyJ != total.EnergyJ {
			t.Errorf("group_by %s: groups add to %+v; want 367 J, cost 3.67, 36.7 g", g, sum)
		}
	}
}
