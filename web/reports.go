package web

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/scheduler"
)

// maxReportDays bounds a report's range.
const maxReportDays = 3660

// reportQuery is a parsed ?from&to&group_by&format.
type reportQuery struct {
	from, to string // YYYY-MM-DD, inclusive
	groupBy  string
	format   string
}

// parseReportQuery reads the query; from and to are UTC days (YYYY-MM-DD, or
// an RFC 3339 time whose UTC day is taken), both inclusive; by default the
// last 7 days up to today.
func parseReportQuery(q map[string][]string, now time.Time) (reportQuery, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	rq := reportQuery{groupBy: get("group_by"), format: get("format")}
	if rq.groupBy == "" {
		rq.groupBy = "day"
	}
	if !slices.Contains(api.ReportGroups, rq.groupBy) {
		return rq, fmt.Errorf("group_by=%q: use job, user, project, node or day", rq.groupBy)
	}
	switch rq.format {
	case "":
		rq.format = "json"
	case "json", "csv":
	default:
		return rq, fmt.Errorf("format=%q: use json or csv", rq.format)
	}
	to := now.UTC()
	if v := get("to"); v != "" {
		t, err := parseDay(v)
		if err != nil {
			return rq, fmt.Errorf("to=%q: %v", v, err)
		}
		to = t
	}
	from := to.AddDate(0, 0, -6)
	if v := get("from"); v != "" {
		t, err := parseDay(v)
		if err != nil {
			return rq, fmt.Errorf("from=%q: %v", v, err)
		}
		from = t
	}
	rq.from, rq.to = from.Format(time.DateOnly), to.Format(time.DateOnly)
	switch {
	case rq.from > rq.to:
		return rq, fmt.Errorf("from %s is after to %s; swap them", rq.from, rq.to)
	case to.Sub(from) > maxReportDays*24*time.Hour:
		return rq, fmt.Errorf("from %s to %s spans more than %d days; ask for a shorter range", rq.from, rq.to, maxReportDays)
	}
	return rq, nil
}

func parseDay(v string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("not a day; write YYYY-MM-DD, e.g. 2026-11-28")
}

// EnergyReport builds a report from the per-day totals in storage.
func (s *Server) EnergyReport(rq reportQuery) (api.Report, error) {
	if err := s.FlushTelemetry(); err != nil {
		return api.Report{}, err
	}
	rp := scheduler.NewReporter(rq.groupBy)
	if err := s.db.ScanUsage(rq.from, rq.to, rp.Add); err != nil {
		return api.Report{}, err
	}
	groups, total := rp.Done()
	if groups == nil {
		groups = []api.ReportRow{}
	}
	s.mu.Lock()
	cur := s.core.Tariff().Currency()
	s.mu.Unlock()
	return api.Report{From: rq.from, To: rq.to, GroupBy: rq.groupBy, Currency: cur, Rows: groups, Total: total}, nil
}

func (s *Server) energyReport(w http.ResponseWriter, r *http.Request) {
	rq, err := parseReportQuery(r.URL.Query(), s.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rep, err := s.EnergyReport(rq)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if rq.format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="energy-%s-%s-by-%s.csv"`, rq.from, rq.to, rq.groupBy))
		_, _ = w.Write(ReportCSV(rep))
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func kWh(j float64) string { return strconv.FormatFloat(j/3.6e6, 'f', 6, 64) }

// ReportCSV writes a report as CSV: one row per group, energies in kWh, CO2
// in kg. The total is left out so that the column sums are the total.
func ReportCSV(rep api.Report) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{rep.GroupBy, "jobs", "gpu_energy_kwh", "facility_energy_kwh", "cost", "currency", "co2_kg"})
	for _, r := range rep.Rows {
		_ = w.Write([]string{r.Group, strconv.Itoa(r.Jobs), kWh(r.EnergyJ), kWh(r.FacilityEnergyJ),
			strconv.FormatFloat(r.Cost, 'f', 6, 64), rep.Currency, strconv.FormatFloat(r.CO2G/1000, 'f', 6, 64)})
	}
	w.Flush()
	return buf.Bytes()
}

// MakeDailyReport stores the report of one UTC day: a CSV row per job (and
// per node's idle energy) with its user, project, node, energy, cost and CO2.
// Making it again replaces it. It returns the number of rows.
func (s *Server) MakeDailyReport(day time.Time) (int, error) {
	d := day.UTC().Format(time.DateOnly)
	if err := s.FlushTelemetry(); err != nil {
		return 0, err
	}
	rows, err := s.db.Usage(d, d)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	cur := s.core.Tariff().Currency()
	s.mu.Unlock()
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"day", "job", "user", "project", "node", "gpu_energy_kwh", "facility_energy_kwh", "cost", "currency", "co2_kg"})
	for _, u := range rows {
		job := u.JobID
		if job == "" {
			job = api.IdleGroup
		}
		_ = w.Write([]string{u.Day, job, u.User, u.Project, u.Node, kWh(u.EnergyJ), kWh(u.FacilityEnergyJ),
			strconv.FormatFloat(u.Cost, 'f', 6, 64), cur, strconv.FormatFloat(u.CO2G/1000, 'f', 6, 64)})
	}
	w.Flush()
	if err := s.db.PutDailyReport(d, s.now(), len(rows), buf.Bytes()); err != nil {
		return 0, err
	}
	s.log.Info("daily report stored", "day", d, "rows", len(rows))
	return len(rows), nil
}

func (s *Server) listDaily(w http.ResponseWriter, r *http.Request) {
	list, err := s.db.DailyReports()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if list == nil {
		list = []api.DailyReport{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) getDaily(w http.ResponseWriter, r *http.Request) {
	day := r.PathValue("day")
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("day %q: write YYYY-MM-DD", day))
		return
	}
	data, ok, err := s.db.DailyReport(day)
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	case !ok:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no daily report for %s; GET /api/v1/reports/daily lists them", day))
	default:
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="daily-%s.csv"`, day))
		_, _ = w.Write(data)
	}
}
