package tariff

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/joulehq/joule/power/window"
	"github.com/robfig/cron/v3"
)

// Idle-energy policies: what happens to the energy a node's GPUs draw while
// they hold no job.
const (
	IdleKeep  = "keep"  // stays the node's idle energy
	IdleShare = "share" // shared among the node's running jobs by GPU count
)

// MaxWindow is the longest a window may last (window.MaxLength).
const MaxWindow = window.MaxLength

// Tariff is what staff set with PUT /api/v1/tariff and what the simulator's
// --tariff FILE reads. The defaults apply outside every window.
type Tariff struct {
	Currency    string  `json:"currency"`
	PricePerKWh float64 `json:"price_per_kwh"`
	GCO2PerKWh  float64 `json:"gco2_per_kwh"`
	// Name labels the default rate in reasons and charts ("off-peak").
	Name string `json:"name,omitempty"`
	// PUE (power usage effectiveness) scales GPU energy to facility energy:
	// cost and CO2 are charged on EnergyJ*PUE.
	PUE     float64  `json:"pue"`
	Windows []Window `json:"windows,omitempty"`
	// IdleEnergy is "keep" (default) or "share".
	IdleEnergy string `json:"idle_energy,omitempty"`
	// CarbonCSV is a carbon-intensity profile (a grid operator's forecast or
	// record): a CSV text with the header "time,gco2_per_kwh" and one row per
	// RFC 3339 time, in order. Each value holds until the next row; the last
	// holds for as long as the gap before it (1 h for a single row). Inside
	// the profile it replaces the windows' and the default's carbon; prices
	// still come from them.
	CarbonCSV string `json:"carbon_csv,omitempty"`
	// CarbonPricePerTonne is the off-peak planner's internal carbon price, in
	// currency per tonne of CO2: a deferrable job waits for the start that
	// minimises price + carbon price x carbon intensity over its run. 0 (the
	// default) plans by price alone. Reports always charge the real price.
	CarbonPricePerTonne float64 `json:"carbon_price_per_tonne,omitempty"`
}

// carbonPoint is one row of the carbon profile.
type carbonPoint struct {
	from, to time.Time
	gco2     float64
}

// parseCarbonCSV reads a carbon profile; see Tariff.CarbonCSV.
func parseCarbonCSV(text string) ([]carbonPoint, error) {
	recs, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("not CSV: %v", err)
	}
	if len(recs) < 2 || len(recs[0]) != 2 || strings.TrimSpace(recs[0][0]) != "time" || strings.TrimSpace(recs[0][1]) != "gco2_per_kwh" {
		return nil, errors.New(`want a header "time,gco2_per_kwh" and at least one row such as "2026-11-28T00:00:00Z,250"`)
	}
	if len(recs) > 100_000 {
		return nil, fmt.Errorf("%d rows; at most 100000 (about 11 years of hours)", len(recs)-1)
	}
	var out []carbonPoint
	for i, r := range recs[1:] {
		line := i + 2
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(r[0]))
		if err != nil {
			return nil, fmt.Errorf("line %d: time %q: write RFC 3339, e.g. 2026-11-28T00:00:00Z", line, r[0])
		}
		g, err := strconv.ParseFloat(strings.TrimSpace(r[1]), 64)
		if err != nil || !finite(g) || g < 0 {
			return nil, fmt.Errorf("line %d: gco2_per_kwh %q: give grams of CO2 per kWh, 0 or more", line, r[1])
		}
		if n := len(out); n > 0 && !t.After(out[n-1].from) {
			return nil, fmt.Errorf("line %d: %s is not after the row before it; sort the rows by time", line, r[0])
		}
		out = append(out, carbonPoint{from: t, gco2: g})
	}
	for i := range out {
		switch {
		case i+1 < len(out):
			out[i].to = out[i+1].from
		case i > 0:
			out[i].to = out[i].from.Add(out[i].from.Sub(out[i-1].from))
		default:
			out[i].to = out[i].from.Add(time.Hour)
		}
	}
	return out, nil
}

// Window is a span from each firing of Start to the next firing of End, with
// its own rate. Where windows overlap, the first listed wins.
type Window struct {
	Name        string  `json:"name,omitempty"`
	Start       string  `json:"start"`
	End         string  `json:"end"`
	PricePerKWh float64 `json:"price_per_kwh"`
	GCO2PerKWh  float64 `json:"gco2_per_kwh"`
}

// Default is the tariff in force until staff set one: a flat rate, PUE 1.
func Default() Tariff {
	return Tariff{Currency: "EUR", PricePerKWh: 0.10, GCO2PerKWh: 300, PUE: 1, IdleEnergy: IdleKeep}
}

// Rate is the price and carbon intensity in force.
type Rate struct {
	PricePerKWh float64
	GCO2PerKWh  float64
	// Window is the index of the window in force, -1 for the default rate.
	Window int
	Name   string
}

// Plan is a validated tariff with its schedules parsed. It is immutable and
// safe for concurrent use.
type Plan struct {
	t       Tariff
	windows *window.Set
	carbon  []carbonPoint
}

// ParseSchedule parses one cron expression (window.ParseSchedule): minute
// hour day-of-month month day-of-week, optionally prefixed "CRON_TZ=Zone ";
// it never panics.
func ParseSchedule(spec string) (cron.Schedule, error) { return window.ParseSchedule(spec) }

// FieldError names the field that is wrong and says how to fix it.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return "tariff " + e.Field + ": " + e.Msg }

// Compile fills in defaults, validates the tariff and parses its schedules.
func Compile(t Tariff) (*Plan, error) {
	bad := func(field, format string, a ...any) error {
		return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
	}
	if t.Currency == "" {
		t.Currency = "EUR"
	}
	if t.PUE == 0 {
		t.PUE = 1
	}
	if t.IdleEnergy == "" {
		t.IdleEnergy = IdleKeep
	}
	if t.Name == "" {
		t.Name = "default rate"
	}
	switch {
	case len(t.Currency) > 8:
		return nil, bad("currency", "%q: use a short code such as \"EUR\"", t.Currency)
	case !finite(t.PricePerKWh) || t.PricePerKWh < 0:
		return nil, bad("price_per_kwh", "%v: give a price of 0 or more per kWh", t.PricePerKWh)
	case !finite(t.GCO2PerKWh) || t.GCO2PerKWh < 0:
		return nil, bad("gco2_per_kwh", "%v: give grams of CO2 per kWh, 0 or more", t.GCO2PerKWh)
	case !finite(t.PUE) || t.PUE < 1 || t.PUE > 5:
		return nil, bad("pue", "%v: power usage effectiveness lies in 1..5 (1.0 = no facility overhead)", t.PUE)
	case t.IdleEnergy != IdleKeep && t.IdleEnergy != IdleShare:
		return nil, bad("idle_energy", "%q: use keep (idle energy stays the node's) or share (shared among its running jobs)", t.IdleEnergy)
	case !finite(t.CarbonPricePerTonne) || t.CarbonPricePerTonne < 0 || t.CarbonPricePerTonne > 100_000:
		return nil, bad("carbon_price_per_tonne", "%v: give the planner's carbon price per tonne of CO2, 0..100000 (0 plans by price alone; the EU ETS traded near 80 EUR in 2024)", t.CarbonPricePerTonne)
	case len(t.Windows) > 64:
		return nil, bad("windows", "%d windows; at most 64", len(t.Windows))
	}
	p := &Plan{t: t}
	if t.CarbonCSV != "" {
		pts, err := parseCarbonCSV(t.CarbonCSV)
		if err != nil {
			return nil, bad("carbon_csv", "%v", err)
		}
		p.carbon = pts
	}
	p.t.Windows = slices.Clone(t.Windows)
	pairs := make([]window.Pair, len(p.t.Windows))
	for i := range p.t.Windows {
		w := &p.t.Windows[i]
		f := fmt.Sprintf("windows[%d]", i)
		if w.Name == "" {
			w.Name = fmt.Sprintf("window %d", i+1)
		}
		switch {
		case !finite(w.PricePerKWh) || w.PricePerKWh < 0:
			return nil, bad(f+".price_per_kwh", "%v: give a price of 0 or more per kWh", w.PricePerKWh)
		case !finite(w.GCO2PerKWh) || w.GCO2PerKWh < 0:
			return nil, bad(f+".gco2_per_kwh", "%v: give grams of CO2 per kWh, 0 or more", w.GCO2PerKWh)
		}
		pairs[i] = window.Pair{Start: w.Start, End: w.End}
	}
	set, err := window.Compile(pairs)
	if pe := (*window.PairError)(nil); errors.As(err, &pe) {
		return nil, bad(fmt.Sprintf("windows[%d].%s", pe.Index, pe.Field), "%v", pe.Err)
	} else if err != nil {
		return nil, bad("windows", "%v", err)
	}
	p.windows = set
	return p, nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Tariff returns the tariff with its defaults filled in.
func (p *Plan) Tariff() Tariff {
	t := p.t
	t.Windows = slices.Clone(p.t.Windows)
	return t
}

// PUE is the facility overhead factor.
func (p *Plan) PUE() float64 { return p.t.PUE }

// Currency is the tariff's currency code.
func (p *Plan) Currency() string { return p.t.Currency }

// ShareIdle says whether idle energy is shared among running jobs.
func (p *Plan) ShareIdle() bool { return p.t.IdleEnergy == IdleShare }

func (p *Plan) rate(i int) Rate {
	if i < 0 {
		return Rate{PricePerKWh: p.t.PricePerKWh, GCO2PerKWh: p.t.GCO2PerKWh, Window: -1, Name: p.t.Name}
	}
	w := p.t.Windows[i]
	return Rate{PricePerKWh: w.PricePerKWh, GCO2PerKWh: w.GCO2PerKWh, Window: i, Name: w.Name}
}

// Segment is a span of time with one rate: [From, To).
type Segment struct {
	From, To time.Time
	Rate
}

// Segments splits [from, to) into consecutive spans of constant rate, in
// order, covering it exactly: the windows' spans (window.Set), cut further
// at the carbon profile's rows. It returns nil for an empty interval.
func (p *Plan) Segments(from, to time.Time) []Segment {
	if !to.After(from) {
		return nil
	}
	var out []Segment
	first, _ := slices.BinarySearchFunc(p.carbon, from, func(c carbonPoint, t time.Time) int { return c.to.Compare(t) })
	for _, ws := range p.windows.Segments(from, to) {
		// Cuts inside this window span: the profile rows that begin in it.
		cuts := []time.Time{ws.From}
		for i := first; i < len(p.carbon) && p.carbon[i].from.Before(ws.To); i++ {
			for _, c := range []time.Time{p.carbon[i].from, p.carbon[i].to} {
				if c.After(ws.From) && c.Before(ws.To) {
					cuts = append(cuts, c)
				}
			}
		}
		slices.SortFunc(cuts, func(a, b time.Time) int { return a.Compare(b) })
		cuts = append(slices.CompactFunc(cuts, func(a, b time.Time) bool { return a.Equal(b) }), ws.To)
		for k := 0; k+1 < len(cuts); k++ {
			a, b := cuts[k], cuts[k+1]
			r := p.rate(ws.Window)
			if g, ok := p.carbonAt(a); ok {
				r.GCO2PerKWh = g
			}
			if n := len(out); n > 0 && out[n-1].Rate == r {
				out[n-1].To = b
				continue
			}
			out = append(out, Segment{From: a, To: b, Rate: r})
		}
	}
	return out
}

// carbonAt is the carbon profile's intensity at t, if a row covers it.
func (p *Plan) carbonAt(t time.Time) (float64, bool) {
	i, _ := slices.BinarySearchFunc(p.carbon, t, func(c carbonPoint, t time.Time) int {
		if !c.to.After(t) {
			return -1
		}
		return 1
	})
	if i < len(p.carbon) && !p.carbon[i].from.After(t) {
		return p.carbon[i].gco2, true
	}
	return 0, false
}

// At is the rate in force at t.
func (p *Plan) At(t time.Time) Rate {
	return p.Segments(t, t.Add(time.Nanosecond))[0].Rate
}

// Charge is what some energy cost.
type Charge struct {
	// EnergyJ is the energy measured (GPU energy); FacilityEnergyJ is
	// EnergyJ*PUE, on which cost and CO2 are charged.
	EnergyJ         float64
	FacilityEnergyJ float64
	Cost            float64
	CO2G            float64
}

// Add sums two charges.
func (c Charge) Add(o Charge) Charge {
	return Charge{c.EnergyJ + o.EnergyJ, c.FacilityEnergyJ + o.FacilityEnergyJ, c.Cost + o.Cost, c.CO2G + o.CO2G}
}

// Scale multiplies every part of a charge by f.
func (c Charge) Scale(f float64) Charge {
	return Charge{c.EnergyJ * f, c.FacilityEnergyJ * f, c.Cost * f, c.CO2G * f}
}

const joulesPerKWh = 3.6e6

// ChargeAt prices energy at one rate, PUE on top.
func (p *Plan) ChargeAt(energyJ float64, r Rate) Charge {
	fac := energyJ * p.t.PUE
	kWh := fac / joulesPerKWh
	return Charge{EnergyJ: energyJ, FacilityEnergyJ: fac, Cost: kWh * r.PricePerKWh, CO2G: kWh * r.GCO2PerKWh}
}

// Piece is the part of an interval's energy that fell in one segment.
type Piece struct {
	From, To time.Time
	Rate
	Charge
}

// Split spreads energyJ, drawn evenly over [from, to), across the rate
// segments of that interval and prices each piece. A zero-length interval
// prices all of it at the rate in force at `to`.
func (p *Plan) Split(energyJ float64, from, to time.Time) []Piece {
	if !to.After(from) {
		r := p.At(to)
		return []Piece{{From: to, To: to, Rate: r, Charge: p.ChargeAt(energyJ, r)}}
	}
	total := float64(to.Sub(from))
	var out []Piece
	for _, s := range p.Segments(from, to) {
		e := energyJ * float64(s.To.Sub(s.From)) / total
		out = append(out, Piece{From: s.From, To: s.To, Rate: s.Rate, Charge: p.ChargeAt(e, s.Rate)})
	}
	return out
}

// PriceIntegral is the integral of the price over [from, to), in price*hours:
// the cost of running a constant 1 kW load (before PUE) over that interval.
func (p *Plan) PriceIntegral(from, to time.Time) float64 {
	var sum float64
	for _, s := range p.Segments(from, to) {
		sum += s.PricePerKWh * s.To.Sub(s.From).Hours()
	}
	return sum
}

// CarbonPrice is the planner's internal carbon price per tonne of CO2.
func (p *Plan) CarbonPrice() float64 { return p.t.CarbonPricePerTonne }

// PlanningIntegral is what the off-peak planner minimises over [from, to):
// the integral of price + CarbonPrice x carbon intensity, in currency*hours
// per kW (before PUE, which scales every start alike). Without a carbon
// price it is PriceIntegral.
func (p *Plan) PlanningIntegral(from, to time.Time) float64 {
	var sum float64
	for _, s := range p.Segments(from, to) {
		sum += p.planningPrice(s.Rate) * s.To.Sub(s.From).Hours()
	}
	return sum
}

// planningPrice is a rate's price per kWh with its carbon priced in.
func (p *Plan) planningPrice(r Rate) float64 {
	return r.PricePerKWh + p.t.CarbonPricePerTonne*r.GCO2PerKWh/1e6
}

// CarbonIntegral is the integral of the carbon intensity over [from, to),
// in gCO2*hours per kWh: the CO2 of a constant 1 kW load (before PUE).
func (p *Plan) CarbonIntegral(from, to time.Time) float64 {
	var sum float64
	for _, s := range p.Segments(from, to) {
		sum += s.GCO2PerKWh * s.To.Sub(s.From).Hours()
	}
	return sum
}

// Edges lists the instants in (from, to] where the rate changes, in order.
func (p *Plan) Edges(from, to time.Time) []time.Time {
	var out []time.Time
	segs := p.Segments(from, to.Add(time.Nanosecond))
	for i := 1; i < len(segs); i++ {
		out = append(out, segs[i].From)
	}
	return out
}

// CronSpecs lists every window's start and end expression, for a daemon that
// re-plans on window edges.
func (p *Plan) CronSpecs() []string {
	var out []string
	for _, w := range p.t.Windows {
		out = append(out, w.Start, w.End)
	}
	return out
}

// Parse reads a tariff from JSON strictly (unknown fields are refused: a
// misspelt "price_per_kWh" must not silently become 0) and compiles it. It
// reads the body of PUT /api/v1/tariff and the simulator's --tariff FILE.
func Parse(data []byte) (*Plan, error) {
	var t Tariff
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("tariff is not valid JSON: %s; see the README's Tariffs section for the fields", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return nil, errors.New("tariff: trailing data after the JSON object; give one tariff")
	}
	return Compile(t)
}
