package trainer

// classMetrics are the classification scores of predictions against truth,
// with scikit-learn's definitions: precision, recall and F1 are macro
// averages over the classes (a class with no predicted or no true samples
// scores 0 there, as with zero_division=0), and confusion[i][j] counts
// samples of true class i predicted as class j.
type classMetrics struct {
	accuracy, precision, recall, macroF1 float64
	confusion                            [][]int
}

func classification(truth, pred []int, classes int) classMetrics {
	m := classMetrics{confusion: make([][]int, classes)}
	for i := range m.confusion {
		m.confusion[i] = make([]int, classes)
	}
	correct := 0
	for i, t := range truth {
		if t < 0 || pred[i] < 0 {
			continue
		}
		m.confusion[t][pred[i]]++
		if t == pred[i] {
			correct++
		}
	}
	if len(truth) > 0 {
		m.accuracy = float64(correct) / float64(len(truth))
	}
	for c := range classes {
		tp := m.confusion[c][c]
		predicted, actual := 0, 0
		for k := range classes {
			predicted += m.confusion[k][c]
			actual += m.confusion[c][k]
		}
		var p, r, f float64
		if predicted > 0 {
			p = float64(tp) / float64(predicted)
		}
		if actual > 0 {
			r = float64(tp) / float64(actual)
		}
		if p+r > 0 {
			f = 2 * p * r / (p + r)
		}
		m.precision += p / float64(classes)
		m.recall += r / float64(classes)
		m.macroF1 += f / float64(classes)
	}
	return m
}

// regression returns the mean squared error and the coefficient of
// determination R^2 (1 when both residual and total sums of squares are 0,
// 0 when only the total is, as scikit-learn's r2_score).
func regression(truth, pred []float64) (mse, r2 float64) {
	if len(truth) == 0 {
		return 0, 0
	}
	m := mean(truth)
	var res, tot float64
	for i, y := range truth {
		res += (y - pred[i]) * (y - pred[i])
		tot += (y - m) * (y - m)
	}
	mse = res / float64(len(truth))
	switch {
	case tot == 0 && res == 0:
		r2 = 1
	case tot == 0:
		r2 = 0
	default:
		r2 = 1 - res/tot
	}
	return mse, r2
}
