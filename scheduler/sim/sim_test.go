package sim

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/joulehq/joule/power"
	"github.com/joulehq/joule/power/tariff"
	"github.com/joulehq/joule/scheduler"
)

func pol(t *testing.T, name string) scheduler.Policy {
	t.Helper()
	p, err := scheduler.PolicyByName(name)
	if err != nil {
		t.Fatal(err)
	}
	p.MultiNode = true
	return p
}

func trace(t *testing.T, csv string) []Job {
	t.Helper()
	jobs, err := ReadTrace(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

// One job of 1 GPU for an hour on one idle H100 node under fifo-firstfit:
// every watt is known. The node draws its baseline at 1/8 load
// (1500 + 1500/8 W), the busy GPU 490 W, seven idle GPUs 72 W each.
func TestEnergyOfAKnownRun(t *testing.T) {
	jobs := trace(t, "job_id,submit_time_s,duration_s,num_gpus,user,status\nx,0,3600,1,,\n")
	r, err := Run(jobs, Config{Cluster: Uniform(1, "h100"), Policy: pol(t, "fifo-firstfit")})
	if err != nil {
		t.Fatal(err)
	}
	gpuW := 490.0 + 7*72
	wantKWh := (1500 + 1500.0/8 + gpuW) / 1000
	if math.Abs(r.EnergyKWh-wantKWh) > 1e-9 || math.Abs(r.GPUEnergyKWh-gpuW/1000) > 1e-9 {
		t.Fatalf("energy = %v kWh (GPU %v), want %v (GPU %v)", r.EnergyKWh, r.GPUEnergyKWh, wantKWh, gpuW/1000)
	}
	if r.Jobs != 1 || r.MeanJCTS != 3600 || r.MeanWaitS != 0 || r.MakespanS != 3600 || r.GPUUtilization != 1.0/8 {
		t.Fatalf("result = %+v", r)
	}
	// schedulerd's default tariff: 0.10 per kWh, 300 g CO2 per kWh, PUE 1.
	if math.Abs(r.Cost-r.EnergyKWh*0.10) > 1e-9 || math.Abs(r.CO2Kg-r.EnergyKWh*0.3) > 1e-9 {
		t.Fatalf("cost %v, co2 %v for %v kWh", r.Cost, r.CO2Kg, r.EnergyKWh)
	}
}

// Two nodes, two 1-GPU jobs far apart. fifo-firstfit keeps node-0002 on
// (idle) all along; energy suspends it after the idle timeout, and also
// suspends node-0001 between the jobs, then wakes it for the second one
// (which waits the wake delay). The run ends when the last job does.
func TestEnergyPolicySuspendsIdleNodes(t *testing.T) {
	jobs := trace(t, "job_id,submit_time_s,duration_s,num_gpus,user,status\na,0,3600,1,,\nb,36000,3600,1,,\n")
	cluster := Uniform(2, "h100")
	base, err := Run(jobs, Config{Cluster: cluster, Policy: pol(t, "fifo-firstfit"), Record: true})
	if err != nil {
		t.Fatal(err)
	}
	p := pol(t, "energy")
	r, err := Run(jobs, Config{Cluster: cluster, Policy: p, Record: true})
	if err != nil {
		t.Fatal(err)
	}
	np, h100 := p.Node, mustModel(t)
	idleNodeW := np.IdleW + 8*h100.IdleW
	loadedW := np.BaselineW(1, 8) + 490 + 7*h100.IdleW
	wake := p.Node.WakeDelay.Seconds()
	// fifo: 11 h of two nodes on, 2 h of them with one job.
	wantBase := (2*loadedW*3600 + (2*11*3600-2*3600)*idleNodeW) / 3.6e6
	if math.Abs(base.EnergyKWh-wantBase) > 1e-6 {
		t.Fatalf("fifo energy = %v kWh, want %v", base.EnergyKWh, wantBase)
	}
	// node-0002 at 0:15, node-0001 at 1:15; node-0001 wakes at 10:00.
	if r.Suspends != 2 || r.Wakes != 1 {
		t.Fatalf("suspends %d, wakes %d; want 2 and 1", r.Suspends, r.Wakes)
	}
	if got := r.Placements["b"]; got.Node != "node-0001" || got.Start.Sub(DefaultStart).Seconds() != 36000+wake {
		t.Fatalf("b = %+v, want node-0001 after the wake delay", got)
	}
	if r.EnergyKWh >= 0.5*base.EnergyKWh {
		t.Fatalf("energy %v kWh vs fifo %v: suspending idle nodes must save most of it here", r.EnergyKWh, base.EnergyKWh)
	}
	if r.MeanJCTS != 3600+wake/2 {
		t.Fatalf("mean JCT = %v, want %v (b waited the wake delay)", r.MeanJCTS, 3600+wake/2)
	}
}

func mustModel(t *testing.T) power.Model {
	m, err := power.ModelFor("h100")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDeterministic(t *testing.T) {
	csv := "job_id,submit_time_s,duration_s,num_gpus,user,status\n"
	for i := range 300 {
		csv += strings.Join([]string{"j" + itoa(i), itoa(i * 97 % 5000 / 10 * 10), itoa(600 + i*7919%20000), itoa([]int{1, 1, 2, 4, 8, 16}[i%6]), "u" + itoa(i%3), ""}, ",") + "\n"
	}
	// Rows must be sorted by submit time.
	jobs := trace(t, sortCSV(csv))
	for _, name := range scheduler.PolicyNames() {
		a, err := Run(jobs, Config{Cluster: Uniform(4, "h100"), Policy: pol(t, name), Record: true})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			b, _ := Run(jobs, Config{Cluster: Uniform(4, "h100"), Policy: pol(t, name), Record: true})
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%s: two runs of the same trace differ:\n%+v\n%+v", name, a, b)
			}
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func sortCSV(csv string) string {
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	rows := lines[1:]
	key := func(l string) int {
		f := strings.Split(l, ",")
		n := 0
		for _, c := range f[1] {
			n = n*10 + int(c-'0')
		}
		return n
	}
	for i := 1; i < len(rows); i++ {
		for j := i; j > 0 && key(rows[j]) < key(rows[j-1]); j-- {
			rows[j], rows[j-1] = rows[j-1], rows[j]
		}
	}
	return lines[0] + "\n" + strings.Join(rows, "\n") + "\n"
}

func TestReadTraceErrors(t *testing.T) {
	tests := []struct{ csv, want string }{
		{"job_id,submit_time_s,duration_s\n", `lacks column "num_gpus"`},
		{"job_id,submit_time_s,duration_s,num_gpus\na,0,x,1\n", `line 2: duration_s = "x" is not a number`},
		{"job_id,submit_time_s,duration_s,num_gpus\na,10,5,1\nb,3,5,1\n", "line 3: submit_time_s 3 is before the previous row's 10"},
		{"job_id,submit_time_s,duration_s,num_gpus\n", "trace has no rows"},
		{"job_id,submit_time_s,duration_s,num_gpus\na,0,5,-1\n", "num_gpus"},
	}
	for _, tt := range tests {
		if _, err := ReadTrace(strings.NewReader(tt.csv)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ReadTrace(%q) err = %v, want %q", tt.csv, err, tt.want)
		}
	}
}

func TestReadCluster(t *testing.T) {
	nodes, err := ReadCluster(strings.NewReader("name,gpus,model\nx,8,h100\ny,4,A100\n"))
	if err != nil || len(nodes) != 2 || nodes[1] != (NodeSpec{"y", 4, "a100"}) {
		t.Fatalf("nodes = %+v, err %v", nodes, err)
	}
	for _, bad := range []string{"name,model\nx,h100\n", "name,gpus,model\nx,0,h100\n", "name,gpus,model\nx,8,h100\nx,8,h100\n"} {
		if _, err := ReadCluster(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadCluster(%q) accepted", bad)
		}
	}
	if _, err := Run(trace(t, "job_id,submit_time_s,duration_s,num_gpus\na,0,5,1\n"),
		Config{Cluster: []NodeSpec{{"x", 8, "v100"}}, Policy: pol(t, "energy")}); err == nil || !strings.Contains(err.Error(), `unknown GPU kind "v100"`) {
		t.Errorf("err = %v", err)
	}
}

// On a real ITP trace (the smallest), energy uses less energy than the
// baseline on the same cluster, and every GPU job runs.
func TestITPTraceEnergyBelowBaseline(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "traces", "itp_cluster10.csv")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("needs ../shared/traces beside the project: %v", err)
	}
	defer f.Close()
	jobs, err := ReadTrace(f)
	if err != nil {
		t.Fatal(err)
	}
	var res []Result
	for _, name := range scheduler.PolicyNames() {
		r, err := Run(jobs, Config{Cluster: Uniform(2, "h100"), Policy: pol(t, name), Start: time.Date(2021, 3, 4, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, r)
	}
	if res[0].Jobs != 260 || res[1].Jobs != 260 {
		t.Fatalf("jobs run: %d and %d, want all 260", res[0].Jobs, res[1].Jobs)
	}
	if res[1].EnergyKWh >= res[0].EnergyKWh {
		t.Fatalf("energy %v kWh is not below fifo-firstfit's %v", res[1].EnergyKWh, res[0].EnergyKWh)
	}
}

// On a mixed cluster the energy policy runs a job on the GPU model with the
// most work per joule (H100: 1/490 W) rather than the first node by name (an
// A100: 0.45/280 W), and spends less energy for it.
func TestHeterogeneousClusterPrefersWorkPerJoule(t *testing.T) {
	cluster, err := ReadCluster(strings.NewReader("name,gpus,model\na-1,8,a100\nh-1,8,h100\n"))
	if err != nil {
		t.Fatal(err)
	}
	jobs := trace(t, "job_id,submit_time_s,duration_s,num_gpus\nx,0,3600,4\n")
	base, err := Run(jobs, Config{Cluster: cluster, Policy: pol(t, "fifo-firstfit"), Record: true})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(jobs, Config{Cluster: cluster, Policy: pol(t, "energy"), Record: true})
	if err != nil {
		t.Fatal(err)
	}
	if base.Placements["x"].Node != "a-1" || r.Placements["x"].Node != "h-1" {
		t.Fatalf("fifo-firstfit on %s (want a-1), energy on %s (want h-1)", base.Placements["x"].Node, r.Placements["x"].Node)
	}
	// On the A100 the hour of H100 work takes 1/0.45 h.
	if base.MakespanS != 3600/0.45 || r.MakespanS != 3600 {
		t.Fatalf("makespans %v and %v", base.MakespanS, r.MakespanS)
	}
	if r.GPUEnergyKWh >= base.GPUEnergyKWh {
		t.Fatalf("GPU energy %v kWh on the H100 is not below %v kWh on the A100", r.GPUEnergyKWh, base.GPUEnergyKWh)
	}
}

// A tariff with a dearer peak window prices the energy drawn in it higher.
func TestTariffPricesEnergyByWindow(t *testing.T) {
	plan, err := tariff.Parse([]byte(`{"currency": "EUR", "price_per_kwh": 0.10, "gco2_per_kwh": 300, "pue": 1.5,
		"windows": [{"name": "peak", "start": "0 0 * * *", "end": "0 12 * * *", "price_per_kwh": 0.30, "gco2_per_kwh": 500}]}`))
	if err != nil {
		t.Fatal(err)
	}
	// One node for 24 h (a job holds it all day): half in the peak.
	jobs := trace(t, "job_id,submit_time_s,duration_s,num_gpus\nx,0,86400,8\n")
	r, err := Run(jobs, Config{Cluster: Uniform(1, "h100"), Policy: pol(t, "fifo-firstfit"), Tariff: plan})
	if err != nil {
		t.Fatal(err)
	}
	half := r.EnergyKWh / 2 * 1.5
	if want := half*0.30 + half*0.10; math.Abs(r.Cost-want) > 1e-6 {
		t.Fatalf("cost = %v, want %v", r.Cost, want)
	}
	if want := (half*500 + half*300) / 1000; math.Abs(r.CO2Kg-want) > 1e-6 {
		t.Fatalf("co2 = %v kg, want %v", r.CO2Kg, want)
	}
}
