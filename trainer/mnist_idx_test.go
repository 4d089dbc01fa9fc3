package trainer

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/joulehq/joule/api"
)

// writeIDX writes an IDX file of unsigned bytes, gzipped when gz is set.
func writeIDX(t *testing.T, path string, dims []int, data []byte, gz bool) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var w io.Writer = f
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(f)
		w = zw
	}
	w.Write([]byte{0, 0, 0x08, byte(len(dims))})
	for _, d := range dims {
		binary.Write(w, binary.BigEndian, uint32(d))
	}
	w.Write(data)
	if zw != nil {
		zw.Close()
	}
}

// tinyMNIST writes a 4x4-pixel "MNIST" in which class k lights pixel k, the
// training files gzipped and the test files plain.
func tinyMNIST(t *testing.T) string {
	dir := t.TempDir()
	write := func(images, labels string, n int, gz bool) {
		img := make([]byte, n*16)
		lab := make([]byte, n)
		for i := range n {
			k := i % 4
			lab[i] = byte(k)
			img[i*16+k] = 255
			img[i*16+15] = byte(i * 7) // noise
		}
		suffix := ""
		if gz {
			suffix = ".gz"
		}
		writeIDX(t, filepath.Join(dir, images+suffix), []int{n, 4, 4}, img, gz)
		writeIDX(t, filepath.Join(dir, labels+suffix), []int{n}, lab, gz)
	}
	write(mnistTrainImages, mnistTrainLabels, 200, true)
	write(mnistTestImages, mnistTestLabels, 40, false)
	return dir
}

func TestMNISTFormat(t *testing.T) {
	dir := tinyMNIST(t)
	train, test, err := loadMNIST(dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.n != 200 || test.n != 40 || len(train.names) != 16 || train.names[15] != "pixel15" {
		t.Fatalf("train %d rows, test %d rows, %d columns", train.n, test.n, len(train.names))
	}
	if train.num[3][3] != 1 || train.label[3] != "3" || train.num[15][1] != 7.0/255 {
		t.Errorf("row 3: pixel3 %g, label %q; row 1 pixel15 %g", train.num[3][3], train.label[3], train.num[15][1])
	}
	out := t.TempDir()
	m, err := Run(context.Background(), api.TrainSpec{Dataset: api.DatasetSpec{Format: "mnist", Path: dir},
		Model: api.ModelSpec{Hidden: []int{8}}, Optimizer: api.OptimizerSpec{LR: 0.05}, Epochs: 20, BatchSize: 20, ValidationSplit: 0.1},
		Options{OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	if m.TestAccuracy == nil || *m.TestAccuracy != 1 || len(m.ConfusionMatrix) != 4 {
		t.Errorf("metrics %+v", m)
	}
	// An MNIST model predicts from CSV rows with pixel columns.
	model, err := LoadModel(out)
	if err != nil {
		t.Fatal(err)
	}
	header := make([]string, 16)
	row := make([]string, 16)
	for i := range header {
		header[i], row[i] = "pixel"+itoa(i), "0"
	}
	row[2] = "1"
	preds, err := model.PredictCSV(strings.NewReader(strings.Join(header, ",") + "\n" + strings.Join(row, ",") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if preds[0].Label != "2" {
		t.Errorf("predicted %+v, want class 2", preds[0])
	}
}

func TestMNISTBadFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, mnistTrainImages), []byte("not an idx file"), 0o644)
	_, _, err := loadMNIST(dir)
	if err == nil || !strings.Contains(err.Error(), "not an IDX file") {
		t.Errorf("garbage images: %v", err)
	}
	dir = tinyMNIST(t)
	writeIDX(t, filepath.Join(dir, mnistTestLabels), []int{3}, []byte{1, 2, 3}, false)
	_, _, err = loadMNIST(dir)
	if err == nil || !strings.Contains(err.Error(), "40 images but") {
		t.Errorf("label count mismatch: %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
