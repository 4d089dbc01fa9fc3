package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// writeJSON prints v as indented JSON, the API's own field names.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// formatEnergy writes joules in J below 1 kJ, kJ below 1 MJ, MJ above.
func formatEnergy(j float64) string {
	switch a := math.Abs(j); {
	case a < 1e3:
		return fmt.Sprintf("%.0f J", j)
	case a < 1e6:
		return fmt.Sprintf("%.1f kJ", j/1e3)
	default:
		return fmt.Sprintf("%.1f MJ", j/1e6)
	}
}

// formatAge writes a duration the short way: 45s, 12m, 3h20m, 2d5h.
func formatAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	default:
		days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
		if h == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%dh", days, h)
	}
}

// formatTime writes t in now's location with how long ago it was.
func formatTime(t, now time.Time) string {
	s := t.In(now.Location()).Format("2006-01-02 15:04:05 MST")
	d := now.Sub(t)
	if d >= 0 {
		return s + " (" + formatAge(d) + " ago)"
	}
	return s + " (in " + formatAge(-d) + ")"
}

func formatInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
