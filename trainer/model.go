package trainer

import (
	"github.com/joulehq/joule/api"

	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Files of a saved model directory.
const (
	modelWeightsFile    = "model.safetensors"
	modelPreprocessFile = "preprocess.json"
)

// Model is a trained network with its preprocessing, ready to predict. Its
// methods are safe for concurrent use (predictions take turns on the
// network's buffers).
type Model struct {
	Pre *Preprocessor
	net *MLP
	be  Backend
	mu  sync.Mutex // guards net's per-batch buffers
}

// Prediction is one row's prediction: the class and every class's
// probability for classification, the value for regression.
type Prediction = api.Prediction

func lossKind(task string) LossKind {
	switch task {
	case "binary":
		return BCEWithLogits
	case "regression":
		return MeanSquaredError
	}
	return SoftmaxCrossEntropy
}

func parseActivation(s string) (Activation, error) {
	switch s {
	case "relu", "":
		return ReLU, nil
	case "sigmoid":
		return Sigmoid, nil
	case "tanh":
		return Tanh, nil
	}
	return 0, fmt.Errorf("unknown activation %q: use relu, sigmoid or tanh", s)
}

// modelMeta is the architecture, stored in the weights file's metadata.
type modelMeta struct {
	Sizes      []int   `json:"sizes"`
	Activation string  `json:"activation"`
	Dropout    float32 `json:"dropout,omitempty"`
}

// saveModel writes dir/model.safetensors (weights in torch.nn.Linear layout,
// the architecture in the metadata) and dir/preprocess.json.
func saveModel(dir string, net *MLP, pre *Preprocessor) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	meta, _ := json.Marshal(modelMeta{Sizes: net.Sizes(), Activation: net.Act.String(), Dropout: net.Dropout})
	params, _ := net.Params()
	if err := writeSafetensors(filepath.Join(dir, modelWeightsFile), download(net.be, params, net.ParamNames()),
		map[string]string{"format": "pt", "joule_model": string(meta)}); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	pj, err := json.MarshalIndent(pre, "", " ")
	if err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, modelPreprocessFile), append(pj, '\n'))
}

func download(be Backend, ts []*Tensor, names []string) []namedTensor {
	out := make([]namedTensor, len(ts))
	for i, t := range ts {
		data := make([]float32, t.Len())
		be.Download(data, t)
		shape := []int{t.Rows, t.Cols}
		if t.Rows == 1 && strings.HasSuffix(names[i], ".bias") {
			shape = []int{t.Cols}
		}
		out[i] = namedTensor{Name: names[i], Shape: shape, Data: data}
	}
	return out
}

// upload copies named tensors from a file into ts, checking their sizes.
func upload(be Backend, ts []*Tensor, names []string, from map[string]namedTensor, source string) error {
	for i, t := range ts {
		nt, ok := from[names[i]]
		if !ok {
			return fmt.Errorf("%s lacks tensor %q", source, names[i])
		}
		if len(nt.Data) != t.Len() {
			return fmt.Errorf("%s: tensor %q has %d values, want %d", source, names[i], len(nt.Data), t.Len())
		}
		be.Upload(t, nt.Data)
	}
	return nil
}

// LoadModel reads a model saved by Run: dir is the run's OutDir/model, or
// the OutDir itself.
func LoadModel(dir string) (*Model, error) {
	if _, err := os.Stat(filepath.Join(dir, modelWeightsFile)); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(dir, "model", modelWeightsFile)); err == nil {
			dir = filepath.Join(dir, "model")
		}
	}
	pj, err := os.ReadFile(filepath.Join(dir, modelPreprocessFile))
	if err != nil {
		return nil, fmt.Errorf("load model: %w (is %s the directory a training run wrote?)", err, dir)
	}
	pre := &Preprocessor{}
	if err := json.Unmarshal(pj, pre); err != nil {
		return nil, fmt.Errorf("load model: %s: %w", modelPreprocessFile, err)
	}
	path := filepath.Join(dir, modelWeightsFile)
	tensors, meta, err := readSafetensors(path)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	var mm modelMeta
	if err := json.Unmarshal([]byte(meta["joule_model"]), &mm); err != nil || len(mm.Sizes) < 2 {
		return nil, fmt.Errorf("load model: %s has no joule_model metadata; it was not written by joule's trainer", path)
	}
	act, err := parseActivation(mm.Activation)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	if mm.Sizes[0] != pre.Inputs() {
		return nil, fmt.Errorf("load model: the network takes %d inputs but the preprocessing makes %d", mm.Sizes[0], pre.Inputs())
	}
	be := CPU{}
	net := NewMLP(be, mm.Sizes, act, 0, rand.New(rand.NewPCG(0, 0)))
	params, _ := net.Params()
	if err := upload(be, params, net.ParamNames(), tensors, path); err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	return &Model{Pre: pre, net: net, be: be}, nil
}

// PredictCSV predicts every row of a CSV with a header row and the model's
// feature columns (in any order; the label column and others are ignored).
// Missing values are filled as in training (the training mean, median or
// most frequent level).
func (m *Model) PredictCSV(r io.Reader) ([]Prediction, error) {
	header, rows, ragged, err := parseCSV(r, "input")
	if err != nil {
		return nil, err
	}
	if len(ragged) > 0 {
		return nil, fmt.Errorf("input: line %d has a different number of fields than the header (%d); fix it to get a prediction for every row", ragged[0], len(header))
	}
	return m.predictTable(header, rows, "input")
}

// PredictRows predicts JSON rows: objects mapping every feature column to a
// number or string (null means missing, filled as in training).
func (m *Model) PredictRows(rows []map[string]any) ([]Prediction, error) {
	header := make([]string, len(m.Pre.Columns))
	for i, c := range m.Pre.Columns {
		header[i] = c.Name
	}
	table := make([][]string, len(rows))
	for r, row := range rows {
		rec := make([]string, len(header))
		for i, name := range header {
			v, ok := row[name]
			if !ok {
				return nil, fmt.Errorf("row %d lacks feature %q; every row needs the model's features: %s", r, name, strings.Join(header, ", "))
			}
			switch v := v.(type) {
			case nil:
			case string:
				rec[i] = v
			case float64:
				rec[i] = strconv.FormatFloat(v, 'g', -1, 64)
			case json.Number:
				rec[i] = v.String()
			case int:
				rec[i] = strconv.Itoa(v)
			case bool:
				rec[i] = strconv.FormatBool(v)
			default:
				return nil, fmt.Errorf("row %d, feature %q: %T is neither a number nor a string", r, name, v)
			}
		}
		table[r] = rec
	}
	return m.predictTable(header, table, "request")
}

func (m *Model) predictTable(header []string, rows [][]string, source string) ([]Prediction, error) {
	f, err := frameWithSchema(header, rows, m.Pre.Columns, m.Pre.Label, source)
	if err != nil {
		return nil, err
	}
	idx := make([]int, f.n)
	for i := range idx {
		idx[i] = i
	}
	x, _ := m.Pre.transform(f, idx)
	out := m.outputs(x, f.n)
	return m.predictions(out, f.n), nil
}

// outputs runs x (n rows) through the network in batches and returns the
// output layer's probabilities or values.
func (m *Model) outputs(x []float32, n int) []float32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return forwardAll(m.be, m.net, lossKind(m.Pre.Task), x, n, m.Pre.Inputs(), nil, nil)
}

func (m *Model) predictions(out []float32, n int) []Prediction {
	preds := make([]Prediction, n)
	cols := len(out) / max(n, 1)
	for i := range n {
		o := out[i*cols : (i+1)*cols]
		switch m.Pre.Task {
		case "regression":
			v := float64(o[0])*m.Pre.TargetStd + m.Pre.TargetMean
			preds[i].Value = &v
		case "binary":
			p1 := float64(o[0])
			preds[i].Probabilities = map[string]float64{m.Pre.Classes[0]: 1 - p1, m.Pre.Classes[1]: p1}
			preds[i].Label = m.Pre.Classes[btoi(p1 >= 0.5)]
		default:
			preds[i].Probabilities = map[string]float64{}
			best := 0
			for k, p := range o {
				preds[i].Probabilities[m.Pre.Classes[k]] = float64(p)
				if p > o[best] {
					best = k
				}
			}
			preds[i].Label = m.Pre.Classes[best]
		}
	}
	return preds
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// evalBatchRows is the batch size for evaluation and prediction.
const evalBatchRows = 1024

// forwardAll runs the network in evaluation mode over x (n x width) and
// returns the outputs (probabilities or values). With targets t (tcols wide)
// it also adds each batch's summed loss to *loss.
func forwardAll(be Backend, net *MLP, kind LossKind, x []float32, n, width int, t []float32, loss *float64) []float32 {
	outCols := net.Layers[len(net.Layers)-1].W.Rows
	out := make([]float32, n*outCols)
	var xb, tb, ob *Tensor
	for i := 0; i < n; i += evalBatchRows {
		rows := min(evalBatchRows, n-i)
		if xb == nil || xb.Rows != rows {
			xb, tb, ob = be.New(rows, width), be.New(rows, outCols), be.New(rows, outCols)
		}
		be.Upload(xb, x[i*width:(i+rows)*width])
		logits := net.Forward(xb, false, nil)
		if loss != nil {
			be.Upload(tb, t[i*outCols:(i+rows)*outCols])
			*loss += be.Loss(kind, logits, tb, nil) * float64(rows)
		}
		be.Output(kind, ob, logits)
		be.Download(out[i*outCols:(i+rows)*outCols], ob)
	}
	return out
}

// classesOf picks each row's class from outputs.
func classesOf(task string, out []float32, n int) []int {
	cols := len(out) / max(n, 1)
	pred := make([]int, n)
	for i := range n {
		o := out[i*cols : (i+1)*cols]
		if task == "binary" {
			pred[i] = btoi(o[0] >= 0.5)
			continue
		}
		best := 0
		for k, p := range o {
			if p > o[best] {
				best = k
			}
		}
		pred[i] = best
	}
	return pred
}
