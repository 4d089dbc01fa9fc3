package trainer

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.safetensors")

// goldenTensors are checked by testdata/make_fixtures.py with torch:
// each tensor is arange(size)*0.5 - 1 in its shape.
func goldenTensors() []namedTensor {
	mk := func(name string, shape ...int) namedTensor {
		size := 1
		for _, d := range shape {
			size *= d
		}
		t := namedTensor{Name: name, Shape: shape, Data: make([]float32, size)}
		for i := range t.Data {
			t.Data[i] = float32(i)*0.5 - 1
		}
		return t
	}
	return []namedTensor{mk("layers.0.weight", 3, 2), mk("layers.0.bias", 3), mk("optim.exp_avg.layers.0.weight", 3, 2)}
}

// TestSafetensorsGolden pins the bytes Go writes to a file that PyTorch
// reads (see make_fixtures.py's check_golden_safetensors).
func TestSafetensorsGolden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.safetensors")
	if err := writeSafetensors(path, goldenTensors(), map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if *update {
		if err := os.WriteFile("testdata/golden.safetensors", got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/golden.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("safetensors bytes differ from testdata/golden.safetensors; if the change is intended, run with -update and make_fixtures.py")
	}
}

// TestSafetensorsLayout checks the format's rules on a written file: the
// header length prefix, 8-byte alignment, contiguous offsets in header
// order, little-endian float32 data.
func TestSafetensorsLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	ts := goldenTensors()
	if err := writeSafetensors(path, ts, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	n := binary.LittleEndian.Uint64(b)
	if n%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", n)
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &header); err != nil {
		t.Fatal(err)
	}
	body := b[8+n:]
	total := 0
	for _, nt := range ts {
		var e stEntry
		json.Unmarshal(header[nt.Name], &e)
		if e.Dtype != "F32" || e.DataOffsets[1]-e.DataOffsets[0] != 4*len(nt.Data) {
			t.Errorf("%s: entry %+v", nt.Name, e)
		}
		total += 4 * len(nt.Data)
	}
	if len(body) != total {
		t.Errorf("data is %d bytes, tensors need %d", len(body), total)
	}
	got, meta, err := readSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if meta["k"] != "v" {
		t.Errorf("metadata %v", meta)
	}
	for _, nt := range ts {
		g := got[nt.Name]
		if len(g.Data) != len(nt.Data) || g.Data[len(g.Data)-1] != nt.Data[len(nt.Data)-1] || len(g.Shape) != len(nt.Shape) {
			t.Errorf("%s read back as %+v", nt.Name, g)
		}
	}
}

func TestSafetensorsRejectsGarbage(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"short":   {1, 2, 3},
		"huge":    {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0},
		"badjson": append([]byte{8, 0, 0, 0, 0, 0, 0, 0}, []byte("{not js}")...),
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, content, 0o644)
		if _, _, err := readSafetensors(p); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
