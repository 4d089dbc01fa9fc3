package agent

import (
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"

	"github.com/joulehq/joule/api"
	"github.com/joulehq/joule/trainer"
)

// PredictMain is `agent predict`: it loads a trained model (with its
// preprocessing) and prints a prediction for every row of a CSV file.
func PredictMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("predict", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelDir := fs.String("model", "", "the model directory a training run wrote (its --out, or --out/model)")
	input := fs.String("input", "", "CSV file with a header and the training data's feature columns (the label column may be absent)")
	format := fs.String("o", "csv", "output: csv (a header, then one row per input row) or json")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: agent predict --model DIR --input FILE.csv [-o csv|json]\n\n"+
			"Prints one prediction per input row: the class and each class's probability,\n"+
			"or the value for regression.\n\nExample:\n  agent predict --model ./out/model --input new_flowers.csv\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *modelDir == "" || *input == "" || (*format != "csv" && *format != "json") {
		fs.Usage()
		return 2
	}
	m, err := trainer.LoadModel(*modelDir)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	f, err := os.Open(*input)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer f.Close()
	preds, err := m.PredictCSV(f)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *input, err)
		return 1
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(preds)
		return 0
	}
	if err := writePredictionsCSV(stdout, preds); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func writePredictionsCSV(w io.Writer, preds []api.Prediction) error {
	cw := csv.NewWriter(w)
	if len(preds) == 0 {
		return nil
	}
	if preds[0].Value != nil {
		cw.Write([]string{"value"})
		for _, p := range preds {
			cw.Write([]string{strconv.FormatFloat(*p.Value, 'g', 6, 64)})
		}
	} else {
		classes := slices.Sorted(maps.Keys(preds[0].Probabilities))
		head := []string{"label"}
		for _, c := range classes {
			head = append(head, "p_"+c)
		}
		cw.Write(head)
		for _, p := range preds {
			row := []string{p.Label}
			for _, c := range classes {
				row = append(row, strconv.FormatFloat(p.Probabilities[c], 'f', 4, 64))
			}
			cw.Write(row)
		}
	}
	cw.Flush()
	return cw.Error()
}
