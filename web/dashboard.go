package web

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power"
	"github.com/joulehq/joule/power/tariff"
	"github.com/joulehq/joule/scheduler"
)

// The dashboard: HTML pages rendered on the server from the same state the
// API serves, with their CSS, script and templates embedded in the binary (no
// build step; works offline). Each page's content is also served alone to a
// request with the X-Partial header, which dashboard.js uses to keep the page
// live.

//go:embed dashboard
var dashboardFS embed.FS

// pages holds one template set per page: the layout with "content" bound to
// that page. They are all cloned here, before any is executed, because
// html/template refuses to clone a set that has run.
var pages = func() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(template.FuncMap{
		"pct": func(f float64) float64 { return 100 * f },
		"inc": func(i int) int { return i + 1 }, // 1-based numbers, as the CLI prints them
	}).ParseFS(dashboardFS, "dashboard/*.html"))
	out := map[string]*template.Template{}
	for _, page := range []string{"cluster", "queue", "job", "reports", "tariff"} {
		t := template.Must(base.Clone())
		template.Must(t.New("content").Parse(`{{template "` + page + `" .Content}}`))
		out[page] = t
	}
	return out
}()

func (s *Server) dashboardRoutes(mux *http.ServeMux) {
	assets, _ := fs.Sub(dashboardFS, "dashboard")
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(assets)))
	mux.HandleFunc("GET /{$}", s.page(s.pageCluster))
	mux.HandleFunc("GET /queue", s.page(s.pageQueue))
	mux.HandleFunc("POST /queue", s.page(s.submitForm))
	mux.HandleFunc("POST /jobs/{id}/cancel", s.page(s.cancelForm))
	mux.HandleFunc("GET /jobs/{id}", s.page(s.pageJob))
	mux.HandleFunc("GET /reports", s.page(s.pageReports))
	mux.HandleFunc("GET /tariff", s.page(s.pageTariff))
	mux.HandleFunc("POST /logout", s.logout)
}

// logout forgets the browser's token cookie (a POST, from the button every
// page has; it needs no token: forgetting one is harmless) and says how to
// come back.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprint(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>joule · logged out</title>`+
		`<link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/dashboard.css"></head>`+
		`<body><main><h1>Logged out</h1><p>This browser no longer holds a token. To log in again, open `+
		`<code>/?token=TOKEN</code> with an admin or user token (<code>schedulerd token create --role user --name NAME</code>).</p></main></body></html>`)
}

// pageData is what the layout needs; Content is the page's own view.
type pageData struct {
	Title, Page string
	Now         string
	RefreshMS   int
	Content     any
}

// render writes a page, or only its content for X-Partial requests.
func (s *Server) render(w http.ResponseWriter, r *http.Request, page, title string, refresh time.Duration, content any) {
	var buf bytes.Buffer
	var err error
	if r.Header.Get("X-Partial") != "" {
		err = pages[page].ExecuteTemplate(&buf, page, content)
	} else {
		err = pages[page].ExecuteTemplate(&buf, "layout", pageData{Title: title, Page: page, Now: s.now().UTC().Format("2006-01-02 15:04:05 MST"),
			RefreshMS: int(refresh / time.Millisecond), Content: content})
	}
	if err != nil {
		s.log.Error("render page", "page", page, "err", err)
		http.Error(w, "render "+page+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

func kwhS(j float64) string { return strconv.FormatFloat(j/3.6e6, 'f', 3, 64) }

func co2S(g float64) string {
	if g >= 1000 {
		return fmt.Sprintf("%.2f kg CO2", g/1000)
	}
	return fmt.Sprintf("%.0f g CO2", g)
}

func when(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format("Jan 2 15:04:05")
}

// --- cluster ---

type gpuView struct {
	api.GPU
	UtilPct, PowerPct int
	Job               string
}

type nodeView struct {
	Name, State, Last string
	IdleKWh, IdleCost string
	GPUs              []gpuView
	Chart             template.HTML
}

func (s *Server) pageCluster(w http.ResponseWriter, r *http.Request) {
	if err := s.FlushTelemetry(); err != nil { // the charts read stored samples
		s.log.Error("flush telemetry", "err", err)
	}
	s.mu.Lock()
	nodes, running, counts, cur := s.core.Nodes(), s.jobsIn(api.StateRunning), s.core.JobCounts(), s.core.Tariff().Currency()
	s.mu.Unlock()
	holder := map[string]map[int]string{}
	for _, j := range running {
		if holder[j.Node] == nil {
			holder[j.Node] = map[int]string{}
		}
		for _, g := range j.GPUIndices {
			holder[j.Node][g] = j.ID
		}
	}
	v := struct {
		Nodes                  []nodeView
		GPUs, Running, Waiting int
		PowerW, LimitW         float64
	}{Running: len(running), Waiting: counts[api.StateQueued] + counts[api.StateDeferred]}
	since := s.now().Add(-30 * time.Minute)
	for _, n := range nodes {
		nv := nodeView{Name: n.Name, State: n.State, Last: n.LastHeartbeat.UTC().Format("15:04:05"),
			IdleKWh: kwhS(n.IdleEnergyJ), IdleCost: fmt.Sprintf("%.4f %s", n.IdleCost, cur)}
		for _, g := range n.GPUs {
			gv := gpuView{GPU: g, UtilPct: int(100*g.Utilization + 0.5), Job: holder[n.Name][g.Index]}
			if g.LimitW > 0 {
				gv.PowerPct = min(100, int(100*g.PowerW/g.LimitW+0.5))
			}
			nv.GPUs = append(nv.GPUs, gv)
			v.GPUs++
			v.PowerW += g.PowerW
			v.LimitW += g.LimitW
		}
		samples, err := s.db.NodeSamples(n.Name, since)
		if err != nil {
			s.log.Error("node samples", "node", n.Name, "err", err)
		}
		var ts []time.Time
		var power, limit []float64
		for _, sm := range samples {
			var p, l float64
			for _, g := range sm.GPUs {
				p += g.PowerW
				l += g.LimitW
			}
			ts, power, limit = append(ts, sm.T), append(power, p), append(limit, l)
		}
		nv.Chart = lineChart(n.Name+" power, last 30 min", "W", ts, []lineSeries{{"power", power}, {"limits", limit}}, false)
		v.Nodes = append(v.Nodes, nv)
	}
	s.render(w, r, "cluster", "Cluster", 2*time.Second, v)
}

// --- queue ---

type jobView struct {
	api.Job
	Submitted, KWh, CostS, CO2, Until string
}

func (s *Server) viewJob(j api.Job, cur string) jobView {
	return jobView{Job: j, Submitted: j.SubmittedAt.UTC().Format("Jan 2 15:04:05"), KWh: kwhS(j.EnergyJ),
		CostS: fmt.Sprintf("%.4f %s", j.Cost, cur), CO2: co2S(j.CO2G), Until: when(j.DeferredUntil)}
}

// The queue page shows at most queueActiveRows running and waiting jobs
// (running first) and the queueDoneRows most recent finished ones: a
// history of 100,000 jobs is not a page, and listing it would hold the
// core's lock in proportion (Core.ListJobs copies only what is shown).
const (
	queueActiveRows = 1000
	queueDoneRows   = 200
)

var (
	waitingStates  = []string{api.StateQueued, api.StateDeferred, api.StatePreempted}
	finishedStates = []string{api.StateSucceeded, api.StateFailed, api.StateCancelled}
)

// jobsIn copies every job in these states, and only those, a page at a
// time; the caller holds s.mu.
func (s *Server) jobsIn(states ...string) []api.Job {
	f := scheduler.JobFilter{States: states, Limit: scheduler.MaxJobPage}
	var out []api.Job
	for {
		page, next, err := s.core.ListJobs(f)
		out = append(out, page...)
		if err != nil || next == "" { // fixed states: no error
			return out
		}
		f.After = next
	}
}

func (s *Server) pageQueue(w http.ResponseWriter, r *http.Request) {
	s.queuePage(w, r, submitView{Spec: exampleSpec})
}

// queuePage renders the queue with the submit form as given.
func (s *Server) queuePage(w http.ResponseWriter, r *http.Request, form submitView) {
	s.mu.Lock()
	running, _, err1 := s.core.ListJobs(scheduler.JobFilter{States: []string{api.StateRunning}, Limit: queueActiveRows})
	waiting, _, err2 := s.core.ListJobs(scheduler.JobFilter{States: waitingStates, Limit: queueActiveRows})
	done, _, err3 := s.core.ListJobs(scheduler.JobFilter{States: finishedStates, Limit: queueDoneRows, NewestFirst: true})
	counts, cur := s.core.JobCounts(), s.core.Tariff().Currency()
	s.mu.Unlock()
	if err := errors.Join(err1, err2, err3); err != nil { // fixed filters: a bug, not input
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	v := struct {
		Jobs                             []jobView
		Waiting, Deferred, Running, Done int
		// MoreActive, MoreDone count the jobs left out.
		MoreActive, MoreDone, DoneRows int
		DoneStates                     string
		Form                           submitView
	}{Form: form, DoneRows: queueDoneRows, Running: counts[api.StateRunning], Deferred: counts[api.StateDeferred],
		Waiting: counts[api.StateQueued] + counts[api.StateDeferred] + counts[api.StatePreempted], DoneStates: strings.Join(finishedStates, ",")}
	for _, st := range finishedStates {
		v.Done += counts[st]
	}
	active := append(running, waiting...)
	active = active[:min(len(active), queueActiveRows)]
	for _, j := range append(active, done...) {
		v.Jobs = append(v.Jobs, s.viewJob(j, cur))
	}
	v.MoreActive = max(0, v.Running+v.Waiting-len(active))
	v.MoreDone = max(0, v.Done-len(done))
	s.render(w, r, "queue", "Queue", 2*time.Second, v)
}

// --- job ---

type metricView struct{ Name, Value string }

func metricsView(m *api.Metrics) []metricView {
	if m == nil {
		return nil
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 5, 64) }
	out := []metricView{{"epochs run", strconv.Itoa(m.EpochsRun)}, {"train loss", f(m.TrainLoss)}, {"validation loss", f(m.ValLoss)},
		{"validation accuracy", f(m.ValAccuracy)}, {"samples/s", f(m.SamplesPerS)}, {"duration", f(m.DurationS) + " s"}, {"device", m.Device}}
	opt := func(name string, v *float64) {
		if v != nil {
			out = append(out, metricView{name, f(*v)})
		}
	}
	opt("test accuracy", m.TestAccuracy)
	opt("precision", m.Precision)
	opt("recall", m.Recall)
	opt("macro F1", m.MacroF1)
	opt("MSE", m.MSE)
	opt("R²", m.R2)
	if m.Task != "" {
		out = append(out, metricView{"task", m.Task})
	}
	return out
}

func (s *Server) pageJob(w http.ResponseWriter, r *http.Request) {
	s.jobPage(w, r, r.PathValue("id"), "")
}

// jobPage renders job id's page, with problem (a refused cancel) on top.
func (s *Server) jobPage(w http.ResponseWriter, r *http.Request, id, problem string) {
	s.mu.Lock()
	j, ok := s.core.Job(id)
	cur := s.core.Tariff().Currency()
	s.mu.Unlock()
	if !ok {
		http.Error(w, fmt.Sprintf("job %s not found; see the queue at /queue", id), http.StatusNotFound)
		return
	}
	if err := s.FlushTelemetry(); err != nil {
		s.log.Error("flush telemetry", "err", err)
	}
	samples, err := s.db.JobSamples(id, time.Time{})
	if err != nil {
		s.log.Error("job samples", "job", id, "err", err)
	}
	samples = downsample(samples, 600)
	var ts []time.Time
	var power, energy []float64
	for _, sm := range samples {
		ts, power, energy = append(ts, sm.T), append(power, sm.PowerW), append(energy, sm.EnergyJ/3.6e6)
	}
	v := struct {
		Job                                    api.Job
		Submitted, Started, Finished, Deadline string
		KWh, Cost, CO2, Power, Problem         string
		Cancellable                            bool
		PowerChart, EnergyChart                template.HTML
		Metrics                                []metricView
	}{Job: j, Submitted: when(&j.SubmittedAt), Started: when(j.StartedAt), Finished: when(j.FinishedAt),
		KWh: kwhS(j.EnergyJ), Cost: fmt.Sprintf("%.4f %s", j.Cost, cur), CO2: co2S(j.CO2G), Power: powerS(j),
		Problem: problem, Cancellable: !api.Terminal(j.State),
		PowerChart:  lineChart("power", "W", ts, []lineSeries{{"power", power}}, false),
		EnergyChart: lineChart("energy", "kWh", ts, []lineSeries{{"energy", energy}}, false),
		Metrics:     metricsView(j.Metrics)}
	if j.Spec.Deferrable {
		v.Deadline = j.Spec.Deadline.String()
		if j.Spec.Deadline == nil {
			dl := j.SubmittedAt.Add(24 * time.Hour)
			v.Deadline = when(&dl)
		} else {
			v.Deadline = when(j.Spec.Deadline)
		}
	}
	refresh := 3 * time.Second
	if api.Terminal(j.State) {
		refresh = 0
	}
	s.render(w, r, "job", "Job "+id, refresh, v)
}

// downsample keeps at most n samples, evenly spaced, always the last.
func downsample[T any](in []T, n int) []T {
	if len(in) <= n {
		return in
	}
	out := make([]T, 0, n)
	for i := range n - 1 {
		out = append(out, in[i*len(in)/(n-1)])
	}
	return append(out, in[len(in)-1])
}

// --- reports ---

type rowView struct {
	Group, KWh, FacKWh, Cost, CO2 string
	Jobs                          int
}

func rowsView(rows []api.ReportRow, cur string) []rowView {
	var out []rowView
	for _, r := range rows {
		out = append(out, rowView{Group: r.Group, Jobs: r.Jobs, KWh: kwhS(r.EnergyJ), FacKWh: kwhS(r.FacilityEnergyJ),
			Cost: fmt.Sprintf("%.4f %s", r.Cost, cur), CO2: co2S(r.CO2G)})
	}
	return out
}

func (s *Server) pageReports(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	q.Del("group_by")
	q.Del("format")
	rq, err := parseReportQuery(q, s.now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	report := func(by string) (api.Report, bool) {
		rq.groupBy = by
		rep, err := s.EnergyReport(rq)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return rep, false
		}
		return rep, true
	}
	byDay, ok := report("day")
	if !ok {
		return
	}
	byUser, ok := report("user")
	if !ok {
		return
	}
	byProject, ok := report("project")
	if !ok {
		return
	}
	bars := func(rep api.Report, val func(api.ReportRow) float64) ([]string, []float64) {
		var l []string
		var v []float64
		for _, row := range rep.Rows {
			l, v = append(l, row.Group), append(v, val(row))
		}
		return l, v
	}
	cur := byDay.Currency
	// Every day of the range gets a bar, zero where nothing ran.
	dayE, dayC := map[string]float64{}, map[string]float64{}
	for _, row := range byDay.Rows {
		dayE[row.Group], dayC[row.Group] = row.EnergyJ/3.6e6, row.Cost
	}
	var days []string
	var de, dc []float64
	from, _ := time.Parse(time.DateOnly, byDay.From)
	to, _ := time.Parse(time.DateOnly, byDay.To)
	for d := from; !d.After(to) && len(days) < 400; d = d.AddDate(0, 0, 1) {
		k := d.Format(time.DateOnly)
		days, de, dc = append(days, k[5:]), append(de, dayE[k]), append(dc, dayC[k])
	}
	ul, uv := bars(byUser, func(r api.ReportRow) float64 { return r.Cost })
	pl, pv := bars(byProject, func(r api.ReportRow) float64 { return r.Cost })
	daily, err := s.db.DailyReports()
	if err != nil {
		s.log.Error("list daily reports", "err", err)
	}
	type dailyView struct {
		Day, Made string
		Rows      int
	}
	var dv []dailyView
	for _, d := range daily {
		dv = append(dv, dailyView{d.Day, d.CreatedAt.UTC().Format("Jan 2 15:04"), d.Rows})
	}
	tot := rowsView([]api.ReportRow{byDay.Total}, cur)[0]
	v := struct {
		From, To                                  string
		Total                                     rowView
		ByDayEnergy, ByDayCost, ByUser, ByProject template.HTML
		Groups                                    []string
		UserRows, ProjectRows                     []rowView
		Daily                                     []dailyView
	}{From: byDay.From, To: byDay.To, Total: tot,
		ByDayEnergy: barChart("GPU energy by day", "kWh", days, de),
		ByDayCost:   barChart("cost by day", cur, days, dc),
		ByUser:      barChart("cost by user", cur, ul, uv),
		ByProject:   barChart("cost by project", cur, pl, pv),
		Groups:      api.ReportGroups, UserRows: rowsView(byUser.Rows, cur), ProjectRows: rowsView(byProject.Rows, cur), Daily: dv}
	s.render(w, r, "reports", "Energy reports", 0, v)
}

// --- budget and tariffs ---

func (s *Server) pageTariff(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	plan, nodes, jobs := s.core.Tariff(), s.core.Nodes(), s.jobsIn(api.StateDeferred)
	budget := s.core.BudgetStatus(s.now())
	s.mu.Unlock()
	now := s.now()
	var powerW, limitW float64
	for _, n := range nodes {
		if n.State != api.NodeUp {
			continue
		}
		for _, g := range n.GPUs {
			powerW += g.PowerW
			limitW += g.LimitW
		}
	}
	var deferred []jobView
	for _, j := range jobs {
		deferred = append(deferred, s.viewJob(j, plan.Currency()))
	}
	segs := plan.Segments(now.UTC(), now.UTC().Add(48*time.Hour))
	var ts []time.Time
	var price, carbon []float64
	for _, sg := range segs {
		ts, price, carbon = append(ts, sg.From), append(price, sg.PricePerKWh), append(carbon, sg.GCO2PerKWh)
	}
	if n := len(segs); n > 0 { // close the last step at the end of the range
		ts, price, carbon = append(ts, segs[n-1].To), append(price, segs[n-1].PricePerKWh), append(carbon, segs[n-1].GCO2PerKWh)
	}
	v := struct {
		Tariff                  tariff.Tariff
		Now                     tariff.Rate
		Budget                  api.PowerBudgetStatus
		BudgetWindowNo          int // 1-based, as joule power numbers them; 0: the default
		PowerW, LimitW          float64
		PriceChart, CarbonChart template.HTML
		Deferred                []jobView
	}{Tariff: plan.Tariff(), Now: plan.At(now), Budget: budget, BudgetWindowNo: budget.Window + 1, PowerW: powerW, LimitW: limitW, Deferred: deferred,
		PriceChart:  lineChart("price, next 48 h (UTC)", plan.Currency()+"/kWh", ts, []lineSeries{{"price", price}}, true),
		CarbonChart: lineChart("carbon intensity, next 48 h (UTC)", "gCO2/kWh", ts, []lineSeries{{"gCO2", carbon}}, true)}
	s.render(w, r, "tariff", "Budget and tariffs", 10*time.Second, v)
}

// powerS says how a job's GPUs are powered: its energy policy, the limit
// they run at now with the speed its curve predicts there, and the curve
// (or why profiling gave none).
func powerS(j api.Job) string {
	parts := []string{j.Spec.EnergyPolicy}
	cv := j.PowerCurve
	if j.PowerLimitW > 0 {
		l := fmt.Sprintf("limit %.0f W per GPU", j.PowerLimitW)
		if cv != nil && cv.UncappedW > 0 {
			l += fmt.Sprintf(" (%.0f%% of its uncapped speed)", 100*power.CurveRel(j.PowerLimitW/cv.UncappedW, cv.A, cv.K))
		}
		parts = append(parts, l)
	}
	if j.PowerNote != "" {
		parts = append(parts, j.PowerNote)
	}
	switch {
	case cv != nil:
		p := fmt.Sprintf("profile: %d limits fitted, uncapped %.0f W, a %.2f, k %.2f", cv.Samples, cv.UncappedW, cv.A, cv.K)
		if cv.From != "" && cv.From != j.ID {
			p += " (from job " + cv.From + ")"
		}
		parts = append(parts, p)
	case j.ProfileError != "":
		parts = append(parts, "no profile: "+j.ProfileError)
	case j.State == api.StateRunning:
		parts = append(parts, "no profile yet")
	}
	return strings.Join(parts, " · ")
}
