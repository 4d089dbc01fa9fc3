package scheduler

import (
	"slices"
	"strings"
	"time"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/power/tariff"
)

// meterEnergy gives each GPU's energy since the last heartbeat to the job that
// held it, or to the node's idle energy (shared among the node's running jobs
// by GPU count when the tariff says so). A counter that went backwards (driver
// reload, GPU reset) is re-based and counts nothing for that interval. Each
// part is priced at the tariff windows in force during the interval, PUE on
// top, and recorded as per-day usage for the reports.
func (c *Core) meterEnergy(n *nodeState, gpus []api.GPU, now time.Time, ch *Changes) {
	last := map[string]float64{}
	for _, g := range n.GPUs {
		last[g.UUID] = g.EnergyJ
	}
	holder := n.holder
	var idleJ float64
	jobJ := map[string]float64{}
	for _, g := range gpus {
		prev, ok := last[g.UUID]
		if !ok || g.EnergyJ < prev {
			continue
		}
		d := g.EnergyJ - prev
		if id, held := holder[g.Index]; held {
			jobJ[id] += d
		} else {
			idleJ += d
		}
	}
	if c.tariff.ShareIdle() && idleJ > 0 && len(jobJ) > 0 {
		shareIdle(idleJ, jobJ, holder)
		idleJ = 0
	}
	from := n.LastHeartbeat
	if from.IsZero() || from.After(now) {
		from = now
	}
	ids := make([]string, 0, len(jobJ))
	for id := range jobJ {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		j := c.jobs[id]
		u := api.Usage{JobID: j.ID, User: j.Spec.User, Project: j.Spec.Project, Node: n.Name}
		total := c.charge(jobJ[id], from, now, u, ch)
		j.EnergyJ += total.EnergyJ
		j.Cost += total.Cost
		j.CO2G += total.CO2G
		ch.addJob(j)
	}
	if idleJ > 0 {
		total := c.charge(idleJ, from, now, api.Usage{Node: n.Name}, ch)
		n.IdleEnergyJ += total.EnergyJ
		n.IdleCost += total.Cost
		n.IdleCO2G += total.CO2G
	}
}

// shareIdle adds idle energy to the running jobs in proportion to the GPUs
// each holds on the node.
func shareIdle(idleJ float64, jobJ map[string]float64, holder map[int]string) {
	gpus := map[string]int{}
	total := 0
	for _, id := range holder {
		if _, ok := jobJ[id]; ok {
			gpus[id]++
			total++
		}
	}
	for id, n := range gpus {
		jobJ[id] += idleJ * float64(n) / float64(total)
	}
}

// charge prices energyJ drawn evenly over [from, to) at the tariff, splits it
// at UTC midnights into per-day usage rows (template u) added to ch, and
// returns the total.
func (c *Core) charge(energyJ float64, from, to time.Time, u api.Usage, ch *Changes) tariff.Charge {
	var total tariff.Charge
	for _, p := range c.tariff.Split(energyJ, from, to) {
		for _, d := range splitDays(p.From, p.To) {
			part := p.Charge
			if span := p.To.Sub(p.From); span > 0 {
				part = part.Scale(float64(d.to.Sub(d.from)) / float64(span))
			}
			row := u
			row.Day = d.day
			row.EnergyJ, row.FacilityEnergyJ, row.Cost, row.CO2G = part.EnergyJ, part.FacilityEnergyJ, part.Cost, part.CO2G
			ch.addUsage(row)
			total = total.Add(part)
		}
	}
	return total
}

type daySpan struct {
	day      string
	from, to time.Time
}

// splitDays cuts [from, to) at UTC midnights. An empty interval is one span
// on to's day.
func splitDays(from, to time.Time) []daySpan {
	from, to = from.UTC(), to.UTC()
	if !to.After(from) {
		return []daySpan{{to.Format(time.DateOnly), to, to}}
	}
	var out []daySpan
	for a := from; a.Before(to); {
		mid := time.Date(a.Year(), a.Month(), a.Day()+1, 0, 0, 0, 0, time.UTC)
		b := mid
		if to.Before(b) {
			b = to
		}
		out = append(out, daySpan{a.Format(time.DateOnly), a, b})
		a = b
	}
	return out
}

// Report adds usage rows up by group: job, user, project, node or day. Idle
// energy has its own group, api.IdleGroup, when grouping by job, user or
// project, so that the groups always add up to the total. Rows come sorted by
// group (jobs by number), the idle group last.
func Report(rows []api.Usage, groupBy string) (groups []api.ReportRow, total api.ReportRow) {
	r := NewReporter(groupBy)
	for _, u := range rows {
		r.Add(u)
	}
	return r.Done()
}

// Reporter adds usage rows up one at a time, so that a long report can
// stream rows from storage. Report is the same over a slice.
type Reporter struct {
	groupBy string
	spans   bool
	index   map[string]int // group -> its place in groups
	groups  []api.ReportRow
	seen    map[groupJob]bool
	allJobs map[string]bool
}

type groupJob struct{ group, job string }

// NewReporter starts a report grouped by job, user, project, node or day.
func NewReporter(groupBy string) *Reporter {
	return &Reporter{groupBy: groupBy, spans: groupBy == "day" || groupBy == "node",
		index: map[string]int{}, seen: map[groupJob]bool{}, allJobs: map[string]bool{}}
}

// Add adds one usage row.
func (rp *Reporter) Add(u api.Usage) {
	key := groupKey(u, rp.groupBy)
	i, ok := rp.index[key]
	if !ok {
		i = len(rp.groups)
		rp.index[key] = i
		rp.groups = append(rp.groups, api.ReportRow{Group: key})
	}
	r := &rp.groups[i]
	r.EnergyJ += u.EnergyJ
	r.FacilityEnergyJ += u.FacilityEnergyJ
	r.Cost += u.Cost
	r.CO2G += u.CO2G
	if u.JobID == "" {
		return
	}
	// A job belongs to one job, user and project group, but may span
	// several days and nodes: count it once per group.
	gj := groupJob{job: u.JobID}
	if rp.spans {
		gj.group = key
		rp.allJobs[u.JobID] = true
	}
	if !rp.seen[gj] {
		rp.seen[gj] = true
		r.Jobs++
	}
}

// Done returns the groups, sorted by group (jobs by number, the idle group
// last), and the total.
func (rp *Reporter) Done() (groups []api.ReportRow, total api.ReportRow) {
	groups, groupBy, spans, allJobs := rp.groups, rp.groupBy, rp.spans, rp.allJobs
	total.Group = "total"
	for _, r := range groups {
		total.EnergyJ += r.EnergyJ
		total.FacilityEnergyJ += r.FacilityEnergyJ
		total.Cost += r.Cost
		total.CO2G += r.CO2G
		total.Jobs += r.Jobs
	}
	if spans {
		total.Jobs = len(allJobs)
	}
	type sortKey struct {
		idle bool
		seq  int
	}
	keys := make(map[string]sortKey, len(groups))
	for _, r := range groups {
		k := sortKey{idle: r.Group == api.IdleGroup}
		if groupBy == "job" {
			k.seq = jobSeq(r.Group)
		}
		keys[r.Group] = k
	}
	slices.SortFunc(groups, func(a, b api.ReportRow) int {
		ka, kb := keys[a.Group], keys[b.Group]
		switch {
		case ka.idle != kb.idle:
			if ka.idle {
				return 1
			}
			return -1
		case ka.seq != kb.seq:
			return ka.seq - kb.seq
		}
		return strings.Compare(a.Group, b.Group)
	})
	return groups, total
}

func groupKey(u api.Usage, groupBy string) string {
	switch groupBy {
	case "day":
		return u.Day
	case "node":
		return u.Node
	}
	if u.JobID == "" {
		return api.IdleGroup
	}
	switch groupBy {
	case "user":
		return u.User
	case "project":
		return u.Project
	}
	return u.JobID
}
