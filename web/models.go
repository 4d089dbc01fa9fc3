package web

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/trainer"
)

// maxModelBytes caps an uploaded model archive.
const maxModelBytes = 512 << 20

// maxPredictRows caps the rows of one prediction request.
const maxPredictRows = 10000

// models caches loaded models: loading parses weights, predicting is cheap.
type models struct {
	mu     sync.Mutex
	loaded map[string]*trainer.Model
}

// uploadModel stores a train job's model, sent by its agent before it
// reports success.
func (s *Server) uploadModel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	j, ok := s.core.Job(id)
	s.mu.Unlock()
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, fmt.Sprintf("job %s not found", id))
		return
	case principalOf(r.Context()).Role == RoleAgent && j.Node != principalOf(r.Context()).Name:
		writeError(w, http.StatusForbidden, fmt.Sprintf("job %s ran on node %q; agent token %q may upload only its own jobs' models",
			id, j.Node, principalOf(r.Context()).Name))
		return
	case j.Spec.Workload.Train == nil:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("job %s is not a train job; it has no model", id))
		return
	}
	files, err := untar(http.MaxBytesReader(w, r.Body, maxModelBytes))
	if err != nil {
		writeError(w, http.StatusBadRequest, "model archive: "+err.Error())
		return
	}
	if err := s.db.SaveModel(id, files); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.models.mu.Lock()
	delete(s.models.loaded, id)
	s.models.mu.Unlock()
	s.log.Info("model stored", "job", id, "files", len(files))
	writeJSON(w, http.StatusOK, map[string]string{"status": "stored"})
}

// predict serves predictions from a finished job's model.
func (s *Server) predict(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req api.PredictRequest
	if err := decodeStrict(http.MaxBytesReader(w, r.Body, maxBodyBytes), &req); err != nil {
		writeError(w, http.StatusBadRequest, "predict: "+err.Error()+`; send {"rows": [{"column": value, ...}]}`)
		return
	}
	if len(req.Rows) == 0 || len(req.Rows) > maxPredictRows {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("predict: %d rows; send 1 to %d", len(req.Rows), maxPredictRows))
		return
	}
	m, err := s.model(id)
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	preds, err := m.PredictRows(req.Rows)
	if err != nil {
		writeError(w, http.StatusBadRequest, "predict: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, api.PredictReply{JobID: id, Predictions: preds})
}

func (s *Server) model(id string) (*trainer.Model, error) {
	s.models.mu.Lock()
	defer s.models.mu.Unlock()
	if m := s.models.loaded[id]; m != nil {
		return m, nil
	}
	dir, err := s.db.ModelDir(id)
	if err != nil {
		return nil, err
	}
	m, err := trainer.LoadModel(dir)
	if err != nil {
		return nil, err
	}
	if s.models.loaded == nil || len(s.models.loaded) >= 32 {
		s.models.loaded = map[string]*trainer.Model{} // a small cache: start over when full
	}
	s.models.loaded[id] = m
	return m, nil
}

// untar reads the plain files of a tar archive.
func untar(r io.Reader) (map[string][]byte, error) {
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("%q is not a plain file", h.Name)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files[h.Name] = data
	}
	if len(files) == 0 {
		return nil, errors.New("empty archive")
	}
	return files, nil
}
