package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"

	"github.com/joulehq/joule/api"
)

// dataset is one split ready for the network: inputs x (n x width),
// loss targets t (n x tcols), and the truth for metrics: class indices
// (classification) or raw values (regression).
type dataset struct {
	n, width, tcols int
	x, t            []float32
	class           []int
	value           []float64
}

// prepared is the data of a run after cleaning and preprocessing.
type prepared struct {
	pre              *Preprocessor
	train, val, test *dataset // val and test may be nil
	rowsDropped      int
	rowsImputed      int
}

// RNG streams: each use of the seed draws from its own PCG stream.
const (
	streamSplit = 1 << 40
	streamInit  = 2 << 40
	// an epoch e uses stream e (shuffle, then dropout masks)
)

// prepareData loads the dataset, drops or imputes rows with missing values,
// splits train/validation with a seeded shuffle, fits the preprocessing on
// the training split and applies it to every split.
func prepareData(spec api.TrainSpec) (*prepared, error) {
	var train, test *frame
	var err error
	malformed := 0 // CSV rows with the wrong number of fields
	switch spec.Dataset.Format {
	case "mnist":
		train, test, err = loadMNIST(spec.Dataset.Path)
		if err != nil {
			return nil, err
		}
	default:
		header, rows, ragged, err := readCSV(spec.Dataset.Path)
		if err != nil {
			return nil, err
		}
		malformed += len(ragged)
		train, err = frameFromCSV(header, rows, spec.Dataset.Label, filepath.Base(spec.Dataset.Path))
		if err != nil {
			return nil, err
		}
		if spec.Dataset.TestPath != "" {
			h, r, ragged, err := readCSV(spec.Dataset.TestPath)
			if err != nil {
				return nil, fmt.Errorf("test set: %w", err)
			}
			malformed += len(ragged)
			name := filepath.Base(spec.Dataset.TestPath)
			test, err = frameWithSchema(h, r, schemaOf(train), spec.Dataset.Label, name)
			if err != nil {
				return nil, err
			}
			if test.label == nil {
				_, err := columnIndex(h, spec.Dataset.Label, name)
				return nil, err
			}
		}
	}
	out := &prepared{rowsDropped: malformed}
	drop := spec.Preprocess.Impute == "drop"
	usable := func(f *frame) []int {
		var rows []int
		for i := range f.n {
			if f.label[i] == "" || (drop && f.missingAt(i)) {
				out.rowsDropped++
				continue
			}
			rows = append(rows, i)
		}
		return rows
	}
	rows := usable(train)
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: none of its %d rows is usable: every row lacks the label or a feature value; fix the data or set preprocess.impute to mean or median", train.source, train.n)
	}
	labels := make([]string, len(rows))
	for i, r := range rows {
		labels[i] = train.label[r]
	}
	task, classes, err := resolveTask(spec.Model.Task, labels, train.source)
	if err != nil {
		return nil, err
	}

	rng := rand.New(rand.NewPCG(uint64(spec.Seed), streamSplit))
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	nVal := int(math.Round(spec.ValidationSplit * float64(len(rows))))
	if spec.ValidationSplit > 0 && nVal == 0 {
		nVal = 1
	}
	if nVal >= len(rows) {
		return nil, fmt.Errorf("%s has %d usable rows, too few to split off validation_split %g; add rows or lower it", train.source, len(rows), spec.ValidationSplit)
	}
	valRows, trainRows := rows[:nVal], rows[nVal:]
	// File order within each split: reads of the column-major frame stay
	// sequential, and epochs shuffle anyway.
	slices.Sort(valRows)
	slices.Sort(trainRows)

	out.pre, err = fitPreprocessor(spec, train, trainRows, task, classes)
	if err != nil {
		return nil, err
	}
	out.train = out.split(train, trainRows)
	if nVal > 0 {
		out.val = out.split(train, valRows)
	}
	if test != nil {
		testRows := usable(test)
		if len(testRows) == 0 {
			return nil, fmt.Errorf("test set %s: none of its %d rows is usable (each lacks the label or, with impute: drop, a feature); fix it or leave test_path out", test.source, test.n)
		}
		out.test = out.split(test, testRows)
	}
	return out, nil
}

func (p *prepared) split(f *frame, rows []int) *dataset {
	d := &dataset{n: len(rows), width: p.pre.Inputs()}
	var imputed int
	d.x, imputed = p.pre.transform(f, rows)
	p.rowsImputed += imputed
	d.t, d.tcols, d.class, d.value = p.pre.targets(f, rows)
	return d
}

// schemaOf lists a training frame's columns and kinds.
func schemaOf(f *frame) []Column {
	cols := make([]Column, len(f.names))
	for i, n := range f.names {
		cols[i] = Column{Name: n, Kind: KindNumeric}
		if f.num[i] == nil {
			cols[i].Kind = KindCategorical
		}
	}
	return cols
}
