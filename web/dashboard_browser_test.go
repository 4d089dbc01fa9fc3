package web

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/joulehq/joule/api"
)

// findChromium returns a Chromium or Chrome binary, or "" when there is none.
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestDashboardInChromium opens every dashboard page in a real headless
// Chromium against a real server and bbolt file: no page logs a console
// error or throws, each shows its charts, and a job submitted through the API
// appears on the open queue page without a reload.
func TestDashboardInChromium(t *testing.T) {
	bin := findChromium()
	if bin == "" {
		t.Skip("no chromium on PATH: install Debian's chromium (apt-get install chromium) to run the browser test; .ci/run does")
	}
	if testing.Short() {
		t.Skip("-short: the browser test starts chromium")
	}
	ctx := context.Background()
	ts := newLiveServer(t, t.TempDir(), "2026-11-26 10:00")
	ts.do(t, "PUT", "/api/v1/tariff", twoRate)
	ts.cl.Register(ctx, "n1", api.Heartbeat{GPUs: hbGPUs("n1", 0, 0)})
	id, err := ts.cl.Submit(ctx, synthetic("first", "alice", "p1"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		ts.clock.set(fmt.Sprintf("2026-11-26 10:%02d", i))
		ts.cl.Heartbeat(ctx, "n1", api.Heartbeat{GPUs: hbGPUs("n1", float64(i)*2e5, float64(i)*1e4), Jobs: []api.JobReport{{ID: id, State: api.StateRunning}}})
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(profileDir(t)),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	defer cancelB()
	bctx, cancelT := context.WithTimeout(bctx, 60*time.Second)
	defer cancelT()

	var mu sync.Mutex
	var problems []string
	chromedp.ListenTarget(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError || ev.Type == runtime.APITypeWarning {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value))
				}
				problems = append(problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+ev.ExceptionDetails.Error())
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.LevelError {
				problems = append(problems, fmt.Sprintf("log %s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	})
	if err := chromedp.Run(bctx, log.Enable()); err != nil {
		t.Fatalf("start chromium %s: %v", bin, err)
	}

	// The browser signs in once: ?token= becomes a cookie.
	if err := chromedp.Run(bctx, chromedp.Navigate(ts.URL+"/?token="+ts.token), chromedp.WaitVisible("main h1", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	for _, pg := range []struct {
		path, heading string
		charts        int // at least
	}{
		{"/", "Cluster", 1},
		{"/queue", "Queue", 0},
		{"/jobs/" + id, "Job " + id, 2},
		{"/reports", "Energy reports", 4},
		{"/tariff", "Budget and tariffs", 2},
	} {
		var h1 string
		var charts, lines int
		err := chromedp.Run(bctx,
			chromedp.Navigate(ts.URL+pg.path),
			chromedp.WaitVisible("main h1", chromedp.ByQuery),
			chromedp.Text("main h1", &h1, chromedp.ByQuery),
			chromedp.Evaluate(`document.querySelectorAll("svg.chart").length`, &charts),
			chromedp.Evaluate(`document.querySelectorAll("svg.chart polyline, svg.chart rect.col").length`, &lines),
		)
		if err != nil {
			t.Fatalf("%s: %v", pg.path, err)
		}
		if !strings.HasPrefix(h1, pg.heading) {
			t.Errorf("%s: heading %q, want %q", pg.path, h1, pg.heading)
		}
		if charts < pg.charts || (pg.charts > 0 && lines == 0) {
			t.Errorf("%s: %d charts with %d lines or bars; want at least %d charts with data", pg.path, charts, lines, pg.charts)
		}
	}

	// The queue page is open; a job submitted now shows up by itself.
	if err := chromedp.Run(bctx, chromedp.Navigate(ts.URL+"/queue"), chromedp.WaitVisible("main h1", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	spec := synthetic("late", "bob", "p2")
	spec.Deferrable, spec.Walltime = true, &api.Duration{Duration: time.Hour}
	late, err := ts.cl.Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	var row string
	sel := fmt.Sprintf(`tr[data-job=%q]`, late)
	if err := chromedp.Run(bctx, chromedp.WaitVisible(sel, chromedp.ByQuery), chromedp.Text(sel, &row, chromedp.ByQuery)); err != nil {
		t.Fatalf("job %s never appeared on the queue page: %v", late, err)
	}
	if !strings.Contains(row, "deferred") || !strings.Contains(row, "deferred until 20:00 UTC") {
		t.Errorf("queue row %q; want the job deferred with its reason", row)
	}

	// A job submitted from the queue page's form, while the page keeps
	// refreshing, leads to its own page.
	var h1 string
	err = chromedp.Run(bctx,
		chromedp.Click("details.submit summary", chromedp.ByQuery),
		chromedp.WaitVisible("details.submit textarea", chromedp.ByQuery),
		chromedp.Sleep(2500*time.Millisecond), // a refresh passes: the open form stays
		chromedp.SetValue("details.submit textarea", "name: from-the-browser\ngpus: 1\nworkload: {synthetic: {duration: 5m, utilization: 0.5}}\n", chromedp.ByQuery),
		chromedp.Click("details.submit button", chromedp.ByQuery),
		chromedp.WaitVisible("dl.facts", chromedp.ByQuery),
		chromedp.Text("main h1", &h1, chromedp.ByQuery),
	)
	if err != nil || !strings.HasSuffix(h1, "· from-the-browser") {
		t.Errorf("submitting from the queue page: %v; landed on %q, want the new job's page", err, h1)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the browser reported:\n%s", strings.Join(problems, "\n"))
	}
}

// profileDir is chromium's profile directory. Chromium's helper processes can
// still write to it for a moment after the browser exits, which makes
// t.TempDir's cleanup fail; so it is removed with retries instead.
func profileDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "joule-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if os.RemoveAll(dir) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("left chromium profile %s behind", dir)
	})
	return dir
}
