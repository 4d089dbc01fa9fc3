package web

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"

	"github.com/joulehq/joule/api"
	"sigs.k8s.io/yaml"
)

// exampleSpec fills the queue page's submit form: a job a new user can send
// as it is.
const exampleSpec = `name: my-job
gpus: 1
energy_policy: balanced     # performance, balanced or efficient
deferrable: false           # true: may wait up to 24 h for cheaper or cleaner hours
workload:
  synthetic: {duration: 10m, utilization: 0.9}
`

// submitForm answers the queue page's form (POST /queue): the spec, YAML or
// JSON, as POST /api/v1/jobs takes it, submitted as the signed-in token's
// user. On success it redirects to the job's page; on bad input it shows the
// queue page again with the error and the text as typed, and changes
// nothing. The session cookie is SameSite=Strict, so another site cannot
// post this form with it.
func (s *Server) submitForm(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r.Context())
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	text := ""
	if err := r.ParseForm(); err == nil {
		text = r.PostForm.Get("spec")
	}
	fail := func(status int, msg string) {
		w.WriteHeader(status)
		s.queuePage(w, r, submitView{Spec: text, Error: msg})
	}
	js, err := yaml.YAMLToJSON([]byte(text))
	if err != nil || strings.TrimSpace(text) == "" {
		fail(http.StatusBadRequest, "the job spec is empty or not valid YAML or JSON")
		return
	}
	spec, err := api.DecodeJobSpecFor(bytes.NewReader(js), p.Name)
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	if p.Role == RoleUser && spec.User != p.Name {
		fail(http.StatusForbidden, fmt.Sprintf("user: you are signed in as %q and may submit only as %q; leave user out", p.Name, p.Name))
		return
	}
	job, err := s.submitJob(r.Context(), spec)
	if err != nil {
		fail(statusOf(err), err.Error())
		return
	}
	s.log.Info("job submitted from the dashboard", "id", job.ID, "name", spec.Name, "user", spec.User)
	http.Redirect(w, r, "/jobs/"+job.ID, http.StatusSeeOther)
}

// submitView is the queue page's submit form: the text in it and what was
// wrong with it.
type submitView struct {
	Spec, Error string
}

// cancelForm answers the job page's Cancel button (POST /jobs/{id}/cancel):
// it cancels the job as POST /api/v1/jobs/{id}/cancel does (an admin, or the
// job's own user) and shows the job's page again; a refusal is shown there.
func (s *Server) cancelForm(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.cancelJob(r.Context(), id); err != nil {
		w.WriteHeader(cancelStatus(err))
		s.jobPage(w, r, id, err.Error())
		return
	}
	http.Redirect(w, r, "/jobs/"+id, http.StatusSeeOther)
}
