// Package tariff turns an energy tariff (a default price and carbon intensity,
// windows written as cron pairs, a PUE factor) into the rate in force at any
// instant, and splits an interval of energy into its cost and CO2.
//
// It is pure: no I/O, and it never reads the wall clock (every question names
// its time). Window edges are computed with robfig/cron in each schedule's
// CRON_TZ, so daylight-saving days are handled the way cron fires on them.
// It must not import storage, web, scheduler, net/http or bbolt.
package tariff
