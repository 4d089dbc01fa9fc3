package sim

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/power/tariff"
)

// twoRate is the two-rate tariff: weekdays 08:00-20:00 UTC at 0.20,
// 0.10 otherwise.
func twoRate(t *testing.T) *tariff.Plan {
	t.Helper()
	p, err := tariff.Parse([]byte(`{"currency": "EUR", "price_per_kwh": 0.10, "gco2_per_kwh": 300, "pue": 1,
		"windows": [{"name": "peak", "start": "0 8 * * 1-5", "end": "0 20 * * 1-5", "price_per_kwh": 0.20, "gco2_per_kwh": 300}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// pick returns the first trace indices the seeded choice makes deferrable
// and not deferrable at fraction f.
func pick(t *testing.T, f float64) (def, non int) {
	t.Helper()
	def, non = -1, -1
	for i := 0; i < 100 && (def < 0 || non < 0); i++ {
		if Deferrable(i, f) && def < 0 {
			def = i
		} else if !Deferrable(i, f) && non < 0 {
			non = i
		}
	}
	if def < 0 || non < 0 {
		t.Fatalf("fraction %v picks no deferrable or no other job among 100", f)
	}
	return def, non
}

// wholeNodeJobs is a trace of identical 8-GPU jobs, all submitted at
// submitS and lasting durationS, just long enough that fraction f picks
// trace job def as deferrable and non as not.
func wholeNodeJobs(t *testing.T, f float64, submitS, durationS int) (jobs []Job, def, non int) {
	t.Helper()
	def, non = pick(t, f)
	csv := "job_id,submit_time_s,duration_s,num_gpus,user,status\n"
	for i := range max(def, non) + 1 {
		csv += fmt.Sprintf("j%d,%d,%d,8,,\n", i, submitS, durationS)
	}
	return trace(t, csv), def, non
}

// Jobs of one hour on 8 GPUs (a whole node) each, all submitted on Thursday 2021-03-04 at
// 10:00 UTC, in the peak window. Under energy+cap+offpeak the deferrable one
// waits for 20:00 (off-peak, its deadline Friday 10:00 is safe); the other
// starts at once. Under fifo-firstfit and energy+cap nothing waits.
func TestOffPeakDefersOnlyDeferrableJobsIntoTheCheapWindow(t *testing.T) {
	const f = 0.5
	jobs, def, non := wholeNodeJobs(t, f, 36000, 3600)
	n := len(jobs)
	submit := DefaultStart.Add(10 * time.Hour)
	run := func(name string) Result {
		r, err := Run(jobs, Config{Cluster: Uniform(n, "h100"), Policy: pol(t, name), BudgetW: 100000,
			Tariff: twoRate(t), Record: true, DeferrableFraction: f})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	off, capped := run("energy+cap+offpeak"), run("energy+cap")
	// The energy policies suspend the idle node after 15 min: a job then
	// starts once it has woken up.
	wake := pol(t, "energy").Node.WakeDelay
	if got := off.Placements["j"+itoa(def)].Start; !got.Equal(DefaultStart.Add(20*time.Hour + wake)) {
		t.Errorf("deferrable job started at %s, want 2021-03-04 20:00 UTC (the off-peak edge) + %s wake-up", got, wake)
	}
	if got := off.Placements["j"+itoa(non)].Start; !got.Equal(submit.Add(wake)) {
		t.Errorf("non-deferrable job started at %s, want at once (%s) + %s wake-up", got, submit, wake)
	}
	for _, r := range []Result{capped, run("fifo-firstfit")} {
		if got := r.Placements["j"+itoa(def)].Start; got.After(submit.Add(wake)) {
			t.Errorf("%s deferred a job (start %s): only an off-peak policy defers", r.Policy, got)
		}
		if r.OffPeak == nil || r.OffPeak.Deferred != 0 {
			t.Errorf("%s: offpeak %+v, want a report with nothing deferred", r.Policy, r.OffPeak)
		}
	}
	o := off.OffPeak
	if o == nil || o.Deferred == 0 || o.DeadlinesMissed != 0 || o.DeferrableJobs+countNon(jobs, f) != n {
		t.Fatalf("offpeak report %+v", o)
	}
	// Same work, same limits: the deferred job's hour costs half, more than
	// what its node's extra wake-up and idle tail cost.
	if !(off.Cost < capped.Cost) ||
		o.MeanJCTNonDeferrableS != capped.OffPeak.MeanJCTNonDeferrableS {
		t.Fatalf("offpeak %+v\ncapped %+v", off, capped)
	}
}

func countNon(jobs []Job, f float64) int {
	n := 0
	for i := range jobs {
		if !Deferrable(i, f) {
			n++
		}
	}
	return n
}

// A job picked deferrable that runs 25 h cannot meet its 24 h deadline
// under any policy: it is submitted as not deferrable, starts at once, in
// the peak window, and is counted as unmeetable, not as a deferrable job.
func TestOffPeakStartsAJobWhoseDeadlineCannotWait(t *testing.T) {
	def, _ := pick(t, 0.5)
	csv := "job_id,submit_time_s,duration_s,num_gpus,user,status\n"
	for i := 0; i <= def; i++ {
		csv += "j" + itoa(i) + ",36000,90000,1,,\n"
	}
	r, err := Run(trace(t, csv), Config{Cluster: Uniform(1, "h100"), Policy: pol(t, "energy+cap+offpeak"), BudgetW: 10000,
		Tariff: twoRate(t), Record: true, DeferrableFraction: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Placements["j"+itoa(def)].Start; got.After(DefaultStart.Add(10*time.Hour + pol(t, "energy").Node.WakeDelay)) {
		t.Errorf("a job whose deadline cannot be met started at %s, want at once", got)
	}
	if o := r.OffPeak; o.Deferred != 0 || o.DeferrableJobs != 0 || o.DeadlinesMissed != 0 || o.DeadlinesUnmeetable == 0 ||
		len(o.MissedJobs) != 0 {
		t.Errorf("offpeak report %+v: want every picked job unmeetable, none deferrable, none deferred", o)
	}
}

// With no deferrable job, energy+cap+offpeak is energy+cap: the same core,
// nothing planned.
func TestOffPeakWithoutDeferrableJobsIsEnergyCap(t *testing.T) {
	jobs := mixedTrace(t)
	a, err := Run(jobs, Config{Cluster: Uniform(4, "h100"), Policy: pol(t, "energy+cap"), BudgetW: 8000, Tariff: twoRate(t), Record: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(jobs, Config{Cluster: Uniform(4, "h100"), Policy: pol(t, "energy+cap+offpeak"), BudgetW: 8000, Tariff: twoRate(t), Record: true})
	if err != nil {
		t.Fatal(err)
	}
	// Placement explanations name the policy; the rest must match.
	b.Policy = a.Policy
	for _, r := range []*Result{&a, &b} {
		for id, p := range r.Placements {
			p.Explain = nil
			r.Placements[id] = p
		}
	}
	if !sameResult(a, b) {
		t.Fatalf("energy+cap %+v\nenergy+cap+offpeak at F=0 %+v", a, b)
	}
}

// sameResult compares two results: placements and counts exactly, sums of
// watts to 1e-9 relative. Under a power cap the simulator adds the jobs'
// draws per node in map order, so the last bits of the energy sums may
// differ from run to run; placements and times do not.
func sameResult(a, b Result) bool {
	near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*math.Max(1, math.Abs(x)) }
	sums := [][2]float64{{a.EnergyKWh, b.EnergyKWh}, {a.GPUEnergyKWh, b.GPUEnergyKWh}, {a.Cost, b.Cost}, {a.CO2Kg, b.CO2Kg},
		{a.GPUUtilization, b.GPUUtilization}, {a.BudgetViolationS, b.BudgetViolationS}}
	for _, s := range sums {
		if !near(s[0], s[1]) {
			return false
		}
	}
	a.EnergyKWh, a.GPUEnergyKWh, a.Cost, a.CO2Kg, a.GPUUtilization, a.BudgetViolationS =
		b.EnergyKWh, b.GPUEnergyKWh, b.Cost, b.CO2Kg, b.GPUUtilization, b.BudgetViolationS
	return reflect.DeepEqual(a, b)
}

func mixedTrace(t *testing.T) []Job {
	csv := "job_id,submit_time_s,duration_s,num_gpus,user,status\n"
	for i := range 300 {
		csv += strings.Join([]string{"j" + itoa(i), itoa(i * 977 % 400000 / 10 * 10), itoa(600 + i*7919%40000), itoa([]int{1, 1, 2, 4, 8, 16}[i%6]), "u" + itoa(i%3), ""}, ",") + "\n"
	}
	return trace(t, sortCSV(csv))
}

func TestOffPeakDeterministic(t *testing.T) {
	jobs := mixedTrace(t)
	cfg := Config{Cluster: Uniform(4, "h100"), Policy: pol(t, "energy+cap+offpeak"), BudgetW: 20000, Tariff: twoRate(t),
		Record: true, DeferrableFraction: 0.3}
	a, err := Run(jobs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.OffPeak == nil || a.OffPeak.Deferred == 0 {
		t.Fatalf("nothing deferred: %+v", a.OffPeak)
	}
	for range 2 {
		if b, _ := Run(jobs, cfg); !sameResult(a, b) {
			t.Fatalf("two runs differ:\n%+v\n%+v", a, b)
		}
	}
}

// The seeded choice picks about the fraction asked for, and a job picked at
// some fraction is picked at every larger one.
func TestDeferrablePicksTheFraction(t *testing.T) {
	for _, f := range []float64{0, 0.1, 0.3, 0.9, 1} {
		n := 0
		for i := range 20000 {
			if Deferrable(i, f) {
				n++
				if !Deferrable(i, min(1, f+0.05)) {
					t.Fatalf("job %d picked at %v, not at %v", i, f, f+0.05)
				}
			}
		}
		if got := float64(n) / 20000; math.Abs(got-f) > 0.01 {
			t.Errorf("fraction %v picked %v of the jobs", f, got)
		}
	}
}

func TestBadDeferrableFractionRefused(t *testing.T) {
	jobs := trace(t, "job_id,submit_time_s,duration_s,num_gpus,user,status\nx,0,3600,1,,\n")
	for _, f := range []float64{-0.1, 1.5, math.NaN()} {
		_, err := Run(jobs, Config{Cluster: Uniform(1, "h100"), Policy: pol(t, "fifo-firstfit"), DeferrableFraction: f})
		if err == nil || !strings.Contains(err.Error(), "from 0 to 1") {
			t.Errorf("fraction %v: err = %v", f, err)
		}
	}
}

// Two deferrable whole-node jobs start on Thursday 21:00 (off-peak: 2 h and
// 10 h, hours of slack each) on the two nodes; at 22:00 a deferrable job of
// 23.5 h arrives (half an hour of slack: urgent). Waiting for the 2 h job
// to end would miss its deadline; under energy+cap+offpeak it preempts one
// of the two (the virtual agent stops it keeping its work), starts at
// 22:00, and the victim resumes once the other node frees: no deadline is
// missed. Without preemption (PreemptGap 0) the urgent job misses.
func TestOffPeakUrgentJobPreemptsDeferrableWork(t *testing.T) {
	csv := "job_id,submit_time_s,duration_s,num_gpus,user,status\n" +
		"short,75600,7200,8,,\nlong,75600,36000,8,,\nurgent,79200,84600,8,,\n"
	jobs := trace(t, csv)
	runWithLoss := func(preempt bool, loss time.Duration) Result {
		p := pol(t, "energy+cap+offpeak")
		if !preempt {
			p.PreemptGap = 0
		}
		r, err := Run(jobs, Config{Cluster: Uniform(2, "h100"), Policy: p, BudgetW: 100000,
			Tariff: twoRate(t), Record: true, DeferrableFraction: 1, PreemptLoss: loss})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	run := func(preempt bool) Result { return runWithLoss(preempt, 0) }
	r := run(true)
	urgentAt := DefaultStart.Add(22 * time.Hour)
	if got := r.Placements["urgent"].Start; !got.Equal(urgentAt) {
		t.Errorf("urgent job starts at %s, want %s (at once, on a preempted node)", got, urgentAt)
	}
	if r.OffPeak.Preempted != 1 || r.OffPeak.DeadlinesMissed != 0 || r.Jobs != 3 {
		t.Errorf("%d jobs, %d preempted, %d deadlines missed (%v); want 3 jobs, 1 preempted, none missed",
			r.Jobs, r.OffPeak.Preempted, r.OffPeak.DeadlinesMissed, r.OffPeak.MissedJobs)
	}
	// The victim started again later (its recorded start is the restart).
	restarted := 0
	for _, id := range []string{"short", "long"} {
		if r.Placements[id].Start.After(urgentAt) {
			restarted++
		}
	}
	if restarted != 1 {
		t.Errorf("%d of short and long started after 22:00, want the one victim (%v, %v)", restarted,
			r.Placements["short"].Start, r.Placements["long"].Start)
	}
	if n := run(false); n.OffPeak.DeadlinesMissed != 1 || n.OffPeak.Preempted != 0 {
		t.Errorf("without preemption: %d missed, %d preempted; want the urgent job missed, nothing preempted",
			n.OffPeak.DeadlinesMissed, n.OffPeak.Preempted)
	}
	// The victim loses PreemptLoss of work: an hour more of it delays only
	// the victim, by that hour at its capped pace (90-100% of full speed).
	free, hour := runWithLoss(true, -1), runWithLoss(true, time.Hour)
	if d := 3 * (hour.OffPeak.MeanJCTDeferrableS - free.OffPeak.MeanJCTDeferrableS); d < 3600 || d > 4000 {
		t.Errorf("an hour lost per preemption adds %.0f s of JCT in all; want 3600-4000 s (the victim's hour at its pace)", d)
	}
}

// At one price, a carbon price moves deferrable work into the clean hours:
// jobs submitted at 04:00 UTC, when the grid runs at 400 gCO2/kWh, wait for
// 10:00-16:00 (120 g) with carbon priced at 100 EUR/t, and start at once
// without; the replay's CO2 falls and its cost does not change much.
func TestOffPeakPlansForCarbon(t *testing.T) {
	const f = 0.5
	jobs, def, non := wholeNodeJobs(t, f, 14400, 7200)
	n := len(jobs)
	run := func(perTonne string) Result {
		p, err := tariff.Parse([]byte(`{"price_per_kwh": 0.15, "gco2_per_kwh": 400, "carbon_price_per_tonne": ` + perTonne + `,
			"windows": [{"name": "solar", "start": "0 10 * * *", "end": "0 16 * * *", "price_per_kwh": 0.15, "gco2_per_kwh": 120}]}`))
		if err != nil {
			t.Fatal(err)
		}
		r, err := Run(jobs, Config{Cluster: Uniform(n, "h100"), Policy: pol(t, "energy+cap+offpeak"), BudgetW: 100000,
			Tariff: p, Record: true, DeferrableFraction: f})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	priced, unpriced := run("100"), run("0")
	wake := pol(t, "energy").Node.WakeDelay
	if got := priced.Placements["j"+itoa(def)].Start; !got.Equal(DefaultStart.Add(10*time.Hour + wake)) {
		t.Errorf("carbon priced: deferrable job started at %s, want 10:00 UTC + %s wake-up", got, wake)
	}
	if got := unpriced.Placements["j"+itoa(def)].Start; !got.Equal(DefaultStart.Add(4*time.Hour + wake)) {
		t.Errorf("no carbon price: deferrable job started at %s, want at once (04:00 UTC + %s wake-up)", got, wake)
	}
	if got := priced.Placements["j"+itoa(non)].Start; !got.Equal(DefaultStart.Add(4*time.Hour + wake)) {
		t.Errorf("carbon priced: non-deferrable job started at %s, want at once", got)
	}
	if !(priced.CO2Kg < 0.9*unpriced.CO2Kg) || priced.OffPeak.DeadlinesMissed != 0 {
		t.Errorf("CO2 %.1f kg with a carbon price against %.1f kg without; want at least 10%% less and no deadline missed (%+v)",
			priced.CO2Kg, unpriced.CO2Kg, priced.OffPeak)
	}
}
