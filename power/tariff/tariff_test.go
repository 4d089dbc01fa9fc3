package tariff

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// twoRate is the example: weekdays 08:00-20:00 UTC at twice the price.
func twoRate(t *testing.T) *Plan {
	t.Helper()
	p, err := Compile(Tariff{Currency: "EUR", PricePerKWh: 0.10, GCO2PerKWh: 300, PUE: 1.3, Name: "off-peak",
		Windows: []Window{{Name: "peak", Start: "0 8 * * 1-5", End: "0 20 * * 1-5", PricePerKWh: 0.20, GCO2PerKWh: 420}}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAt(t *testing.T) {
	p := twoRate(t)
	for _, tc := range []struct {
		at    string
		price float64
		name  string
	}{
		{"2026-11-27 07:59", 0.10, "off-peak"}, // Friday
		{"2026-11-27 08:00", 0.20, "peak"},     // the start is inside
		{"2026-11-27 19:59", 0.20, "peak"},
		{"2026-11-27 20:00", 0.10, "off-peak"}, // the end is outside
		{"2026-11-28 12:00", 0.10, "off-peak"}, // Saturday
		{"2026-11-30 12:00", 0.20, "peak"},     // Monday
	} {
		r := p.At(utc(tc.at))
		if r.PricePerKWh != tc.price || r.Name != tc.name {
			t.Errorf("At(%s) = %v %s; want %v %s", tc.at, r.PricePerKWh, r.Name, tc.price, tc.name)
		}
	}
}

func TestSegmentsCoverExactly(t *testing.T) {
	p := twoRate(t)
	from, to := utc("2026-11-26 13:17"), utc("2026-12-01 09:00") // Thu afternoon .. Tue morning
	segs := p.Segments(from, to)
	want := []struct {
		from, to string
		price    float64
	}{
		{"2026-11-26 13:17", "2026-11-26 20:00", 0.20},
		{"2026-11-26 20:00", "2026-11-27 08:00", 0.10},
		{"2026-11-27 08:00", "2026-11-27 20:00", 0.20},
		{"2026-11-27 20:00", "2026-11-30 08:00", 0.10}, // the weekend is one off-peak span
		{"2026-11-30 08:00", "2026-11-30 20:00", 0.20},
		{"2026-11-30 20:00", "2026-12-01 08:00", 0.10},
		{"2026-12-01 08:00", "2026-12-01 09:00", 0.20},
	}
	if len(segs) != len(want) {
		t.Fatalf("%d segments, want %d: %+v", len(segs), len(want), segs)
	}
	for i, w := range want {
		s := segs[i]
		if !s.From.Equal(utc(w.from)) || !s.To.Equal(utc(w.to)) || s.PricePerKWh != w.price {
			t.Errorf("segment %d = %s..%s %v; want %s..%s %v", i, s.From, s.To, s.PricePerKWh, w.from, w.to, w.price)
		}
	}
}

// A window that crosses midnight in Europe/Berlin lasts 7 real hours on the
// spring-forward night and 9 on the fall-back night.
func TestNightWindowAcrossDST(t *testing.T) {
	p, err := Compile(Tariff{PricePerKWh: 0.30, Windows: []Window{{
		Name: "night", Start: "CRON_TZ=Europe/Berlin 0 22 * * *", End: "CRON_TZ=Europe/Berlin 0 6 * * *", PricePerKWh: 0.05}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		day        string
		start, end string // UTC
		hours      float64
	}{
		{"2026-03-21", "2026-03-21 21:00", "2026-03-22 05:00", 8}, // winter time (UTC+1)
		{"2026-03-28", "2026-03-28 21:00", "2026-03-29 04:00", 7}, // clocks go forward at 02:00
		{"2026-10-24", "2026-10-24 20:00", "2026-10-25 05:00", 9}, // clocks go back at 03:00
		{"2026-10-31", "2026-10-31 21:00", "2026-11-01 05:00", 8},
	} {
		from := utc(tc.day + " 12:00")
		segs := p.Segments(from, from.Add(24*time.Hour))
		var night []Segment
		for _, s := range segs {
			if s.Name == "night" {
				night = append(night, s)
			}
		}
		if len(night) != 1 {
			t.Fatalf("%s: %d night segments: %+v", tc.day, len(night), segs)
		}
		n := night[0]
		if !n.From.Equal(utc(tc.start)) || !n.To.Equal(utc(tc.end)) || n.To.Sub(n.From).Hours() != tc.hours {
			t.Errorf("%s: night %s..%s (%vh); want %s..%s (%vh)", tc.day, n.From, n.To, n.To.Sub(n.From).Hours(), tc.start, tc.end, tc.hours)
		}
	}
}

// robfig/cron skips a local time that does not exist (02:30 on the
// spring-forward day) and fires twice on a repeated one (02:30 on the
// fall-back day). A window follows the firings: no window on the skipped day,
// one window from the first firing on the repeated day.
func TestSkippedAndRepeatedStart(t *testing.T) {
	p, err := Compile(Tariff{PricePerKWh: 0.10, Windows: []Window{{
		Name: "w", Start: "CRON_TZ=Europe/Berlin 30 2 * * *", End: "CRON_TZ=Europe/Berlin 30 3 * * *", PricePerKWh: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	hoursIn := func(day string) float64 {
		from := utc(day + " 00:00").Add(-2 * time.Hour)
		var h float64
		for _, s := range p.Segments(from, from.Add(24*time.Hour)) {
			if s.Name == "w" {
				h += s.To.Sub(s.From).Hours()
			}
		}
		return h
	}
	if h := hoursIn("2026-03-28"); h != 1 {
		t.Errorf("an ordinary day: %vh in the window, want 1", h)
	}
	if h := hoursIn("2026-03-29"); h != 0 {
		t.Errorf("spring-forward day: %vh in the window, want 0 (02:30 does not exist)", h)
	}
	// Fall back: 02:30 CEST = 00:30 UTC and 02:30 CET = 01:30 UTC both fire;
	// 03:30 CET = 02:30 UTC ends it: 2 real hours.
	if h := hoursIn("2026-10-25"); h != 2 {
		t.Errorf("fall-back day: %vh in the window, want 2", h)
	}
}

// A window in a time zone keeps its local hours: 08:00-20:00 New York is
// 13:00-01:00 UTC in winter and 12:00-00:00 UTC in summer.
func TestTimeZoneWindow(t *testing.T) {
	p, err := Compile(Tariff{PricePerKWh: 0.1, Windows: []Window{{
		Start: "CRON_TZ=America/New_York 0 8 * * *", End: "CRON_TZ=America/New_York 0 20 * * *", PricePerKWh: 0.2}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at    string
		price float64
	}{
		{"2026-01-15 12:30", 0.1}, {"2026-01-15 13:00", 0.2}, {"2026-01-16 00:59", 0.2}, {"2026-01-16 01:00", 0.1},
		{"2026-07-15 11:59", 0.1}, {"2026-07-15 12:00", 0.2}, {"2026-07-15 23:59", 0.2}, {"2026-07-16 00:00", 0.1},
	} {
		if got := p.At(utc(tc.at)).PricePerKWh; got != tc.price {
			t.Errorf("At(%s UTC) = %v, want %v", tc.at, got, tc.price)
		}
	}
}

func TestFirstWindowWins(t *testing.T) {
	p, err := Compile(Tariff{PricePerKWh: 0.1, Windows: []Window{
		{Name: "a", Start: "0 10 * * *", End: "0 12 * * *", PricePerKWh: 0.5},
		{Name: "b", Start: "0 9 * * *", End: "0 13 * * *", PricePerKWh: 0.3},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range p.Segments(utc("2026-11-28 08:00"), utc("2026-11-28 14:00")) {
		got = append(got, s.From.Format("15:04")+" "+s.Name)
	}
	want := "08:00 default rate|09:00 b|10:00 a|12:00 b|13:00 default rate"
	if strings.Join(got, "|") != want {
		t.Errorf("segments %q, want %q", strings.Join(got, "|"), want)
	}
}

func TestSplitAndCharge(t *testing.T) {
	p := twoRate(t) // PUE 1.3
	// 3.6 MJ (1 kWh) drawn evenly over 07:00-09:00 on a Friday: half off-peak,
	// half peak. Facility energy 1.3 kWh: cost 0.65*0.10 + 0.65*0.20 = 0.195,
	// CO2 0.65*300 + 0.65*420 = 468 g.
	var sum Charge
	pieces := p.Split(3.6e6, utc("2026-11-27 07:00"), utc("2026-11-27 09:00"))
	if len(pieces) != 2 {
		t.Fatalf("%d pieces, want 2", len(pieces))
	}
	for _, pc := range pieces {
		sum = sum.Add(pc.Charge)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }
	if !near(sum.EnergyJ, 3.6e6) || !near(sum.FacilityEnergyJ, 1.3*3.6e6) || !near(sum.Cost, 0.195) || !near(sum.CO2G, 468) {
		t.Errorf("charge %+v; want 3.6 MJ, 4.68 MJ facility, cost 0.195, 468 g", sum)
	}
	if got := p.PriceIntegral(utc("2026-11-27 07:00"), utc("2026-11-27 09:00")); !near(got, 0.30) {
		t.Errorf("price integral %v, want 0.30", got)
	}
}

func TestCompileErrors(t *testing.T) {
	ok := Window{Start: "0 8 * * *", End: "0 20 * * *", PricePerKWh: 0.2}
	for _, tc := range []struct {
		name string
		t    Tariff
		want string
	}{
		{"negative price", Tariff{PricePerKWh: -1}, "price_per_kwh"},
		{"NaN carbon", Tariff{GCO2PerKWh: math.NaN()}, "gco2_per_kwh"},
		{"PUE below 1", Tariff{PUE: 0.5}, "pue"},
		{"negative carbon price", Tariff{CarbonPricePerTonne: -80}, "carbon_price_per_tonne"},
		{"infinite carbon price", Tariff{CarbonPricePerTonne: math.Inf(1)}, "carbon_price_per_tonne"},
		{"idle policy", Tariff{IdleEnergy: "drop"}, "idle_energy"},
		{"bad cron", Tariff{Windows: []Window{{Start: "0 8 * *", End: ok.End}}}, "windows[0].start"},
		{"CRON_TZ without schedule", Tariff{Windows: []Window{{Start: "CRON_TZ=UTC", End: ok.End}}}, "time zone but no schedule"},
		{"TZ without schedule", Tariff{Windows: []Window{ok, {Start: ok.Start, End: "TZ=Europe/Berlin"}}}, "windows[1].end"},
		{"unknown zone", Tariff{Windows: []Window{{Start: "CRON_TZ=Mars/Olympus 0 8 * * *", End: ok.End}}}, "windows[0].start"},
		{"empty end", Tariff{Windows: []Window{{Start: ok.Start}}}, "windows[0].end"},
		{"window too long", Tariff{Windows: []Window{{Start: "0 8 1 1 *", End: "0 8 1 6 *"}}}, "within a week"},
		{"never fires", Tariff{Windows: []Window{{Start: "0 8 30 2 *", End: ok.End}}}, "never fires"},
	} {
		_, err := Compile(tc.t)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v; want one naming %q", tc.name, err, tc.want)
		}
	}
}

func TestParseScheduleNeverPanics(t *testing.T) {
	for _, s := range []string{"CRON_TZ=", "TZ=", "CRON_TZ=UTC", "CRON_TZ= ", "@every", "@every x", "* * * * * * *", "60 * * * *", "CRON_TZ=UTC  "} {
		if _, err := ParseSchedule(s); err == nil {
			t.Errorf("ParseSchedule(%q) accepted it", s)
		}
	}
}

func TestParse(t *testing.T) {
	p, err := Parse([]byte(`{"currency": "EUR", "price_per_kwh": 0.10, "gco2_per_kwh": 300, "pue": 1.3, "windows": [{"start": "0 8 * * 1-5", "end": "0 20 * * 1-5", "price_per_kwh": 0.20, "gco2_per_kwh": 420}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.PUE() != 1.3 || p.At(utc("2026-11-27 09:00")).PricePerKWh != 0.20 {
		t.Errorf("parsed tariff %+v", p.Tariff())
	}
	for _, bad := range []string{`{"price_kwh": 0.1}`, `{"pue": 1.2} {}`, `[1]`, ``} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted it", bad)
		}
	}
}

// A carbon profile replaces the carbon intensity where it has rows; prices
// still come from the windows, and outside the profile the tariff's carbon
// applies.
func TestCarbonProfile(t *testing.T) {
	tt := Tariff{PricePerKWh: 0.10, GCO2PerKWh: 300, Windows: []Window{{Name: "peak", Start: "0 8 * * *", End: "0 20 * * *", PricePerKWh: 0.2, GCO2PerKWh: 420}},
		CarbonCSV: "time,gco2_per_kwh\n2026-11-28T06:00:00Z,100\n2026-11-28T07:00:00Z,150\n2026-11-28T09:00:00Z,50\n"}
	p, err := Compile(tt)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range p.Segments(utc("2026-11-28 05:00"), utc("2026-11-28 12:00")) {
		got = append(got, fmt.Sprintf("%s %v %v", s.From.Format("15:04"), s.PricePerKWh, s.GCO2PerKWh))
	}
	// 09:00's row holds 2 h (the gap before it): to 11:00.
	want := "05:00 0.1 300|06:00 0.1 100|07:00 0.1 150|08:00 0.2 150|09:00 0.2 50|11:00 0.2 420"
	if strings.Join(got, "|") != want {
		t.Errorf("segments\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
	for _, bad := range []string{"t,g\n2026-11-28T06:00:00Z,1", "time,gco2_per_kwh\n", "time,gco2_per_kwh\nmonday,1",
		"time,gco2_per_kwh\n2026-11-28T06:00:00Z,-1", "time,gco2_per_kwh\n2026-11-28T06:00:00Z,1\n2026-11-28T05:00:00Z,1"} {
		tt.CarbonCSV = bad
		if _, err := Compile(tt); err == nil || !strings.Contains(err.Error(), "carbon_csv") {
			t.Errorf("carbon_csv %q: error %v; want one naming carbon_csv", bad, err)
		}
	}
}

// The planning integral prices carbon at the internal carbon price on top of
// the energy price: 2 h at 0.10 EUR/kWh and 300 g, 1 h at 0.20 and 420 g, at
// 100 EUR/t, is 2*(0.10+0.03) + 1*(0.20+0.042) = 0.502 per kW.
func TestPlanningIntegralPricesCarbon(t *testing.T) {
	tt := Tariff{PricePerKWh: 0.10, GCO2PerKWh: 300, Windows: []Window{{Start: "0 8 * * *", End: "0 20 * * *", PricePerKWh: 0.2, GCO2PerKWh: 420}}}
	from, to := utc("2026-11-27 06:00"), utc("2026-11-27 09:00")
	for _, tc := range []struct {
		perTonne, want float64
	}{{0, 0.40}, {100, 0.502}} {
		tt.CarbonPricePerTonne = tc.perTonne
		p, err := Compile(tt)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.PlanningIntegral(from, to); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("carbon price %v: planning integral %v, want %v", tc.perTonne, got, tc.want)
		}
		if got := p.CarbonIntegral(from, to); math.Abs(got-1020) > 1e-9 {
			t.Errorf("carbon integral %v, want 1020 g*h/kWh", got)
		}
	}
}
