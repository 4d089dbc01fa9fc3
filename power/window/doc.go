// Package window turns time windows written as pairs of cron expressions
// (robfig/cron/v3, CRON_TZ allowed) into the window in force at any instant
// and the spans of constant window over an interval. The power budget uses it
// (power.Budget); tariffs and carbon windows are the same kind of schedule.
//
// It is pure: no I/O, and it never reads the wall clock (every question names
// its time). It must not import storage, web, scheduler, net/http or bbolt.
package window
