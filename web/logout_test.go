package web

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
)

// The dashboard's logout button forgets the token cookie: the pages need a
// token again afterwards.
func TestDashboardLogout(t *testing.T) {
	ts := newLiveServer(t, t.TempDir(), "2026-11-26 10:00")
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := browser.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/queue?token=" + ts.token); code != 200 || !strings.Contains(body, `action="/logout"`) {
		t.Fatalf("logged in: %d; want the queue page with a logout button:\n%.300s", code, body)
	}
	resp, err := browser.Post(ts.URL+"/logout", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Logged out") {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
	if code, _ := get("/queue"); code != http.StatusUnauthorized {
		t.Fatalf("after logout the queue page answered %d; want 401", code)
	}
}
