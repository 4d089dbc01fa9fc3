// Command costfloor prints the lowest cost any scheduling policy could reach
// on a trace replay, relative to fifo-firstfit's measured cost, under issue
// 7's terms: an idealised floor that scripts/offpeak-target.sh prints beside
// energy+cap+offpeak's ratio, so a target below it is known to be out of
// reach before any policy is tried.
//
// The floor grants every policy more than any can have:
//   - the trace's work (GPUs x duration, at full speed) runs on full nodes:
//     no idle GPU, no idle or suspended node, no wake-up, each busy GPU
//     carrying an eighth of a loaded node's baseline;
//   - every job at the GPU limit that spends the least energy per unit of
//     work (GPU draw plus that baseline share) within --max-slowdown;
//   - every deferrable job (the simulator's picks, sim.Deferrable, that can
//     meet their deadline) entirely at the tariff's cheapest price, and the
//     other jobs' energy at fifo-firstfit's mean price.
//
// Usage:
//
//	schedulerd simulate --trace T --nodes N --policy fifo-firstfit --tariff F --deferrable-fraction 0.3 -o json |
//	  go run ./scripts/costfloor --trace T --tariff F --deferrable-fraction 0.3 --max-slowdown 0.05
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/joulehq/joule/power"
	"github.com/joulehq/joule/power/tariff"
	"github.com/joulehq/joule/scheduler"
	"github.com/joulehq/joule/scheduler/sim"
)

func main() {
	tracePath := flag.String("trace", "", "the trace CSV the replay ran")
	tariffPath := flag.String("tariff", "", "the tariff JSON the replay ran")
	kind := flag.String("gpu", "h100", "GPU kind: h100, h200 or a100")
	gpusPerNode := flag.Int("gpus-per-node", 8, "GPUs per node (simulate --nodes builds 8)")
	f := flag.Float64("deferrable-fraction", 0.3, "the replay's --deferrable-fraction")
	slowdown := flag.Float64("max-slowdown", 0.05, "the slowdown a job may take: 0.05 for a 5% JCT allowance")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: schedulerd simulate ... --policy fifo-firstfit -o json | costfloor --trace T --tariff F [flags]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *tracePath == "" || *tariffPath == "" {
		fmt.Fprintln(os.Stderr, "costfloor: give --trace and --tariff, the ones the replay ran")
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*tracePath, *tariffPath, *kind, *gpusPerNode, *f, *slowdown); err != nil {
		fmt.Fprintln(os.Stderr, "costfloor:", err)
		os.Exit(1)
	}
}

func run(tracePath, tariffPath, kind string, gpusPerNode int, f, slowdown float64) error {
	var out struct {
		Results []sim.Result `json:"results"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&out); err != nil {
		return fmt.Errorf("reading simulate -o json on stdin: %w", err)
	}
	var fifo *sim.Result
	for i := range out.Results {
		if out.Results[i].Policy == "fifo-firstfit" {
			fifo = &out.Results[i]
		}
	}
	if fifo == nil || fifo.EnergyKWh <= 0 {
		return fmt.Errorf("no fifo-firstfit result with energy on stdin")
	}
	tf, err := os.Open(tracePath)
	if err != nil {
		return err
	}
	defer tf.Close()
	jobs, err := sim.ReadTrace(tf)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(tariffPath)
	if err != nil {
		return err
	}
	plan, err := tariff.Parse(data)
	if err != nil {
		return err
	}
	m, err := power.ModelFor(kind)
	if err != nil {
		return err
	}
	fl := computeFloor(jobs, *fifo, plan, m, gpusPerNode, f, slowdown)
	fmt.Printf("work %.0f GPU-h (deferrable %.1f%%); best limit within %.0f%% slowdown %.0f W: %.0f W per busy GPU with its node share\n",
		fl.WorkGPUH, 100*fl.DeferrableShare, 100*slowdown, fl.LimitW, fl.PerGPUW)
	fmt.Printf("energy floor %.3fx fifo-firstfit's, cost floor %.3fx\n", fl.EnergyKWh/fifo.EnergyKWh, fl.Cost/fifo.Cost)
	return nil
}

// floor is the idealised replay: its work, the deferrable share of it, the
// best limit and what a busy GPU draws per unit of work there (node share
// included), and the energy and cost that gives.
type floor struct {
	WorkGPUH, DeferrableShare float64
	LimitW, PerGPUW           float64
	EnergyKWh, Cost           float64
}

// computeFloor is the floor the package comment describes, for the trace's
// jobs against fifo-firstfit's result on the same tariff.
func computeFloor(jobs []sim.Job, fifo sim.Result, plan *tariff.Plan, m power.Model, gpusPerNode int, f, slowdown float64) floor {
	// Work in GPU-seconds at full speed, and the deferrable jobs' share.
	var workS, deferrableS float64
	for i, j := range jobs {
		if j.GPUs <= 0 {
			continue
		}
		w := float64(j.GPUs) * float64(j.DurationS)
		workS += w
		if f > 0 && sim.Deferrable(i, f) && time.Duration(j.DurationS)*time.Second <= scheduler.DefaultDeadline {
			deferrableS += w
		}
	}
	shareW := power.DefaultNodePower.LoadedW / float64(gpusPerNode)
	bestW, bestLimit := math.Inf(1), 0.0
	for l := m.MinLimitW; l <= m.MaxLimitW; l++ {
		rel := m.RelThroughput(1, l)
		if rel <= 0 || rel < 1/(1+slowdown) {
			continue
		}
		if w := (m.DrawW(1, l) + shareW) / rel; w < bestW {
			bestW, bestLimit = w, l
		}
	}
	t := plan.Tariff()
	cheapest := t.PricePerKWh
	for _, w := range t.Windows {
		cheapest = math.Min(cheapest, w.PricePerKWh)
	}
	fl := floor{WorkGPUH: workS / 3600, LimitW: bestLimit, PerGPUW: bestW}
	fl.EnergyKWh = workS * bestW / 3.6e6
	meanPrice := fifo.Cost / fifo.EnergyKWh // PUE included
	d := deferrableS / workS
	fl.DeferrableShare = d
	fl.Cost = fl.EnergyKWh * ((1-d)*meanPrice + d*cheapest*plan.PUE())
	return fl
}
