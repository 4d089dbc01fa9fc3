package trainer

import (
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// MNIST is read from the four IDX files under their usual names, gzipped or
// not. Pixels become features pixel0..pixel783 with values in [0, 1]
// (byte/255); labels become the classes "0".."9".
const (
	mnistTrainImages = "train-images-idx3-ubyte"
	mnistTrainLabels = "train-labels-idx1-ubyte"
	mnistTestImages  = "t10k-images-idx3-ubyte"
	mnistTestLabels  = "t10k-labels-idx1-ubyte"
)

// loadMNIST reads the training and test sets from dir.
func loadMNIST(dir string) (train, test *frame, err error) {
	train, err = mnistFrame(dir, mnistTrainImages, mnistTrainLabels)
	if err != nil {
		return nil, nil, err
	}
	test, err = mnistFrame(dir, mnistTestImages, mnistTestLabels)
	if err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

func mnistFrame(dir, images, labels string) (*frame, error) {
	img, err := readIDX(dir, images, 3)
	if err != nil {
		return nil, err
	}
	lab, err := readIDX(dir, labels, 1)
	if err != nil {
		return nil, err
	}
	n := img.dims[0]
	if lab.dims[0] != n {
		return nil, fmt.Errorf("mnist: %s has %d images but %s has %d labels", images, n, labels, lab.dims[0])
	}
	px := img.dims[1] * img.dims[2]
	f := &frame{source: images, n: n, label: make([]string, n), num: make([][]float64, px), cat: make([][]string, px)}
	for p := range px {
		f.names = append(f.names, "pixel"+strconv.Itoa(p))
		f.num[p] = make([]float64, n)
	}
	for i := range n { // image by image, the file's order
		for p, b := range img.data[i*px : (i+1)*px] {
			f.num[p][i] = float64(b) / 255
		}
	}
	for i, l := range lab.data {
		f.label[i] = strconv.Itoa(int(l))
	}
	return f, nil
}

type idx struct {
	dims []int
	data []byte
}

// readIDX reads dir/name or dir/name.gz, an IDX file of unsigned bytes with
// the given number of dimensions.
func readIDX(dir, name string, ndim int) (*idx, error) {
	path := filepath.Join(dir, name)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		path += ".gz"
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, fmt.Errorf("mnist: %s(.gz) not found in %s; dataset.path must be the directory holding the four IDX files: %w", name, dir, err)
	}
	defer f.Close()
	var r io.Reader = f
	if filepath.Ext(path) == ".gz" {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("mnist: %s: %w", path, err)
		}
		r = gz
	}
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, fmt.Errorf("mnist: %s: %w", path, err)
	}
	if magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || int(magic[3]) != ndim {
		return nil, fmt.Errorf("mnist: %s is not an IDX file of unsigned bytes with %d dimensions", path, ndim)
	}
	out := &idx{}
	size := 1
	for range ndim {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return nil, fmt.Errorf("mnist: %s: %w", path, err)
		}
		out.dims = append(out.dims, int(d))
		size *= int(d)
	}
	out.data = make([]byte, size)
	if _, err := io.ReadFull(r, out.data); err != nil {
		return nil, fmt.Errorf("mnist: %s is truncated: %w", path, err)
	}
	return out, nil
}
