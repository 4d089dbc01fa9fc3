package trainer

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// frame is a table of raw input: numeric columns as float64 (NaN where a
// value is missing or unparsable), string columns as strings ("" where
// missing), and the label column as strings ("" where missing).
type frame struct {
	source string   // file name, for errors
	names  []string // feature columns, in file order
	num    [][]float64
	cat    [][]string
	label  []string // nil when the input has no label column
	n      int
}

// isMissing says whether a CSV cell means "no value".
func isMissing(s string) bool {
	switch strings.TrimSpace(s) {
	case "", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "?":
		return true
	}
	return false
}

func parseNumber(s string) (float64, bool) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// readCSV reads a CSV file with a header row. Rows whose number of fields
// differs from the header's are left out; ragged lists their line numbers.
func readCSV(path string) (header []string, rows [][]string, ragged []int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open dataset: %w", err)
	}
	defer f.Close()
	return parseCSV(f, filepath.Base(path))
}

func parseCSV(r io.Reader, name string) (header []string, rows [][]string, ragged []int, err error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err = cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, nil, fmt.Errorf("%s is empty; it needs a header row and at least one data row", name)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read %s: %w", name, err)
	}
	for i := range header {
		header[i] = strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff"))
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("read %s: %w", name, err)
		}
		if len(rec) != len(header) {
			line, _ := cr.FieldPos(0)
			ragged = append(ragged, line)
			continue
		}
		rows = append(rows, rec)
	}
	if len(rows) == 0 && len(ragged) > 0 {
		return nil, nil, nil, fmt.Errorf("%s: none of its %d data rows has the header's %d fields; check the delimiter (a comma) and quoting", name, len(ragged), len(header))
	}
	if len(rows) == 0 {
		return nil, nil, nil, fmt.Errorf("%s has a header but no data rows; give it at least one row", name)
	}
	return header, rows, ragged, nil
}

// columnIndex finds name in header or says which columns there are.
func columnIndex(header []string, name, source string) (int, error) {
	for i, h := range header {
		if h == name {
			return i, nil
		}
	}
	return -1, fmt.Errorf("label column %q not in %s; columns are: %s (set dataset.label to one of them)", name, source, strings.Join(header, ", "))
}

// frameFromCSV builds a frame from a training CSV, inferring each column's
// kind: a column is numeric when at least half of its present values parse
// as numbers (the others then count as unparsable, i.e. missing); otherwise
// it is a string column, one-hot encoded later.
func frameFromCSV(header []string, rows [][]string, label, source string) (*frame, error) {
	li, err := columnIndex(header, label, source)
	if err != nil {
		return nil, err
	}
	if len(header) < 2 {
		return nil, fmt.Errorf("%s has only the label column %q; it needs at least one feature column", source, label)
	}
	f := &frame{source: source, n: len(rows), label: make([]string, len(rows))}
	for i, r := range rows {
		if !isMissing(r[li]) {
			f.label[i] = strings.TrimSpace(r[li])
		}
	}
	for c, name := range header {
		if c == li {
			continue
		}
		present, numeric := 0, 0
		for _, r := range rows {
			if isMissing(r[c]) {
				continue
			}
			present++
			if _, ok := parseNumber(r[c]); ok {
				numeric++
			}
		}
		f.names = append(f.names, name)
		if present > 0 && 2*numeric >= present {
			f.num = append(f.num, numericColumn(rows, c))
			f.cat = append(f.cat, nil)
		} else {
			f.num = append(f.num, nil)
			f.cat = append(f.cat, stringColumn(rows, c))
		}
	}
	return f, nil
}

func numericColumn(rows [][]string, c int) []float64 {
	col := make([]float64, len(rows))
	for i, r := range rows {
		v, ok := parseNumber(r[c])
		if !ok {
			v = math.NaN()
		}
		col[i] = v
	}
	return col
}

func stringColumn(rows [][]string, c int) []string {
	col := make([]string, len(rows))
	for i, r := range rows {
		if !isMissing(r[c]) {
			col[i] = strings.TrimSpace(r[c])
		}
	}
	return col
}

// frameWithSchema builds a frame from rows whose columns must include the
// features of cols (by name, any order); the label column is optional.
func frameWithSchema(header []string, rows [][]string, cols []Column, label, source string) (*frame, error) {
	index := map[string]int{}
	for i, h := range header {
		index[h] = i
	}
	var missing []string
	for _, c := range cols {
		if _, ok := index[c.Name]; !ok {
			missing = append(missing, c.Name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s lacks the model's feature columns %s; it has: %s", source, quoteList(missing, 10), strings.Join(header, ", "))
	}
	f := &frame{source: source, n: len(rows)}
	for _, c := range cols {
		i := index[c.Name]
		f.names = append(f.names, c.Name)
		if c.Kind == KindNumeric {
			f.num = append(f.num, numericColumn(rows, i))
			f.cat = append(f.cat, nil)
		} else {
			f.num = append(f.num, nil)
			f.cat = append(f.cat, stringColumn(rows, i))
		}
	}
	if li, ok := index[label]; ok && label != "" {
		f.label = stringColumn(rows, li)
	}
	return f, nil
}

func quoteList(names []string, most int) string {
	var q []string
	for i, n := range names {
		if i == most {
			q = append(q, fmt.Sprintf("and %d more", len(names)-most))
			break
		}
		q = append(q, strconv.Quote(n))
	}
	return strings.Join(q, ", ")
}

// missingAt says whether row i lacks any feature value.
func (f *frame) missingAt(i int) bool {
	for c := range f.names {
		if f.num[c] != nil {
			if math.IsNaN(f.num[c][i]) {
				return true
			}
		} else if f.cat[c][i] == "" {
			return true
		}
	}
	return false
}
