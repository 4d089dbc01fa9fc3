package trainer

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// The safetensors format (https://github.com/huggingface/safetensors): an
// 8-byte little-endian header length N, N bytes of JSON header mapping each
// tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// into the data that follows) plus an optional "__metadata__" map of
// strings, then the tensors' bytes. The header is padded with spaces to a
// multiple of 8 bytes. Only F32 tensors are written and read here.

type namedTensor struct {
	Name  string
	Shape []int
	Data  []float32
}

type stEntry struct {
	Dtype       string `json:"dtype"`
	Shape       []int  `json:"shape"`
	DataOffsets [2]int `json:"data_offsets"`
}

// writeSafetensors writes tensors and metadata to path atomically: to a
// temporary file in the same directory, synced, then renamed over path.
func writeSafetensors(path string, tensors []namedTensor, meta map[string]string) error {
	header := map[string]any{}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	off := 0
	for _, t := range tensors {
		n := 4 * len(t.Data)
		header[t.Name] = stEntry{Dtype: "F32", Shape: t.Shape, DataOffsets: [2]int{off, off + n}}
		off += n
	}
	h, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	buf := make([]byte, 8+len(h)+off)
	binary.LittleEndian.PutUint64(buf, uint64(len(h)))
	copy(buf[8:], h)
	p := 8 + len(h)
	for _, t := range tensors {
		for _, v := range t.Data {
			binary.LittleEndian.PutUint32(buf[p:], math.Float32bits(v))
			p += 4
		}
	}
	return writeFileAtomic(path, buf)
}

// writeFileAtomic replaces path with data so that a crash leaves either the
// old or the new file, never a torn one.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// readSafetensors reads an F32 safetensors file: tensors by name, and metadata.
func readSafetensors(path string) (map[string]namedTensor, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var n uint64
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil {
		return nil, nil, fmt.Errorf("%s: not a safetensors file: %w", path, err)
	}
	if n > 100<<20 {
		return nil, nil, fmt.Errorf("%s: header of %d bytes is too large; not a safetensors file?", path, n)
	}
	h := make([]byte, n)
	if _, err := io.ReadFull(f, h); err != nil {
		return nil, nil, fmt.Errorf("%s: truncated header: %w", path, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(h, &raw); err != nil {
		return nil, nil, fmt.Errorf("%s: bad header: %w", path, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	meta := map[string]string{}
	tensors := map[string]namedTensor{}
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return nil, nil, fmt.Errorf("%s: bad metadata: %w", path, err)
			}
			continue
		}
		var e stEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, fmt.Errorf("%s: tensor %q: %w", path, name, err)
		}
		if e.Dtype != "F32" {
			return nil, nil, fmt.Errorf("%s: tensor %q is %s; only F32 is supported", path, name, e.Dtype)
		}
		size := 1
		for _, d := range e.Shape {
			size *= d
		}
		b, end := e.DataOffsets[0], e.DataOffsets[1]
		if b < 0 || end > len(data) || end-b != 4*size {
			return nil, nil, fmt.Errorf("%s: tensor %q: offsets %v do not fit shape %v in %d data bytes", path, name, e.DataOffsets, e.Shape, len(data))
		}
		t := namedTensor{Name: name, Shape: e.Shape, Data: make([]float32, size)}
		for i := range t.Data {
			t.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[b+4*i:]))
		}
		tensors[name] = t
	}
	return tensors, meta, nil
}
