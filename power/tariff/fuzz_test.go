package tariff

import (
	"encoding/json"
	"testing"
	"time"
)

// Cron windows and whole tariffs never panic the parser (robfig/cron/v3
// panics on some inputs; ParseSchedule must catch them); an accepted tariff
// compiles again from its own JSON and gives a rate at any instant. Seeds:
// testdata/fuzz/FuzzParse... and the cases below; scripts/fuzz.sh runs them.
func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"0 8 * * 1-5", "CRON_TZ=Europe/Berlin 0 20 * * *", "CRON_TZ=", "TZ=UTC", "@daily", "*/15 * * * *",
		"0 8 31 2 *", "60 25 * * *", "0 8 * * MON-FRI", "@every 1h", "CRON_TZ=Nowhere/City 0 8 * * *", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseSchedule(spec)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if s == nil {
			t.Fatal("nil schedule without an error")
		}
		s.Next(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)) // must not hang or panic
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"currency": "EUR", "price_per_kwh": 0.10, "gco2_per_kwh": 300, "pue": 1.3, "windows": [{"name": "peak", "start": "0 8 * * 1-5", "end": "0 20 * * 1-5", "price_per_kwh": 0.20, "gco2_per_kwh": 420}]}`,
		`{"pue": 0.5}`,
		`{"windows": [{"start": "CRON_TZ=UTC", "end": "0 8 * * *"}]}`,
		`{"price_per_kwh": -1}`,
		`{"currency": "CHF", "price_per_kwh": 0.3, "pue": 1.5} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		js, err := json.Marshal(p.Tariff())
		if err != nil {
			t.Fatalf("accepted tariff does not encode: %v", err)
		}
		again, err := Parse(js)
		if err != nil {
			t.Fatalf("accepted tariff refused on its own JSON: %v\n%s", err, js)
		}
		at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
		if a, b := p.At(at), again.At(at); a != b {
			t.Fatalf("round trip changed the rate at %s: %+v vs %+v", at, a, b)
		}
	})
}
