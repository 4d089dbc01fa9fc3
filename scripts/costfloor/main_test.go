package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/joulehq/joule/power"
	"github.com/joulehq/joule/power/tariff"
	"github.com/joulehq/joule/scheduler"
	"github.com/joulehq/joule/scheduler/sim"
)

// twoRate is examples/tariff-two-rate.json (0.10 EUR/kWh, 0.20 on weekdays
// 08:00-20:00) with a PUE of 1.2, so that the floor is seen to apply it.
func twoRate(t *testing.T) *tariff.Plan {
	t.Helper()
	data, err := os.ReadFile("../../examples/tariff-two-rate.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := tariff.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	tf := p.Tariff()
	tf.PUE = 1.2
	if p, err = tariff.Compile(tf); err != nil {
		t.Fatal(err)
	}
	return p
}

// With no slowdown allowed and nothing deferrable, a GPU-hour of work costs
// what the model's GPU draws at its default limit, plus an eighth of a
// loaded node, at fifo-firstfit's mean price.
func TestFloorAtFullSpeed(t *testing.T) {
	m, _ := power.ModelFor("h100")
	want := (m.DrawW(1, m.DefaultLimitW) + power.DefaultNodePower.LoadedW/8) / 1000 // kWh per GPU-hour
	jobs := []sim.Job{{ID: "a", DurationS: 3600, GPUs: 1}, {ID: "cpu", DurationS: 3600}}
	fifo := sim.Result{Policy: "fifo-firstfit", EnergyKWh: 2, Cost: 0.3}
	fl := computeFloor(jobs, fifo, twoRate(t), m, 8, 0, 0)
	if math.Abs(fl.EnergyKWh-want) > 1e-9 || math.Abs(fl.Cost-want*0.15) > 1e-9 || fl.WorkGPUH != 1 {
		t.Errorf("floor %+v: want %v kWh costing %v", fl, want, want*0.15)
	}
	// A deferrable job is priced at the cheapest rate, PUE on top.
	for i := 0; ; i++ {
		if sim.Deferrable(i, 0.5) {
			jobs := make([]sim.Job, i+1)
			jobs[i] = sim.Job{DurationS: 3600, GPUs: 1}
			if fl := computeFloor(jobs, fifo, twoRate(t), m, 8, 0.5, 0); fl.DeferrableShare != 1 || math.Abs(fl.Cost-want*0.10*1.2) > 1e-9 {
				t.Errorf("deferrable floor %+v: want cost %v", fl, want*0.12)
			}
			break
		}
	}
}

// The floor is below what every policy measures on a replay: it grants
// each more than any can have. (A floor that left out the node share or
// priced deferrable work dearer would still pass; TestFloorAtFullSpeed
// pins the numbers.)
func TestFloorIsBelowEveryPolicy(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	csv := "job_id,submit_time_s,duration_s,num_gpus,user,status\n"
	for i := range 300 {
		csv += fmt.Sprintf("j%d,%d,%d,%d,,\n", i, i*1500+r.IntN(1500), 600+r.IntN(30000), []int{1, 1, 2, 4, 8}[r.IntN(5)])
	}
	jobs, err := sim.ReadTrace(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := power.ModelFor("h100")
	var fifo sim.Result
	for _, name := range scheduler.AllPolicyNames() {
		p, _ := scheduler.PolicyByName(name)
		res, err := sim.Run(jobs, sim.Config{Cluster: sim.Uniform(3, "h100"), Policy: p, Tariff: twoRate(t),
			DeferrableFraction: 0.3, BudgetW: 3 * 8 * 700})
		if err != nil {
			t.Fatal(err)
		}
		if name == "fifo-firstfit" {
			fifo = res
		}
		// Jobs run balanced: up to 10% slower.
		fl := computeFloor(jobs, fifo, twoRate(t), m, 8, 0.3, power.DefaultMaxSlowdown)
		if res.Cost < fl.Cost {
			t.Errorf("%s costs %.2f, below the floor %.2f", name, res.Cost, fl.Cost)
		}
		t.Logf("%s: cost %.3fx fifo-firstfit's, floor %.3fx", name, res.Cost/fifo.Cost, fl.Cost/fifo.Cost)
	}
}
