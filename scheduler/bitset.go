package scheduler

import "math/bits"

// bitset is a set of small non-negative integers (node ordinals). The
// placement index keeps one per (GPU model, free-GPU count), so "the first
// node by name with at least g free GPUs" is a find-first-set over a few
// words instead of a scan of every node.
type bitset []uint64

func (b *bitset) set(i int) {
	w := i >> 6
	for w >= len(*b) {
		*b = append(*b, 0)
	}
	(*b)[w] |= 1 << (uint(i) & 63)
}

func (b bitset) clear(i int) {
	if w := i >> 6; w < len(b) {
		b[w] &^= 1 << (uint(i) & 63)
	}
}

// next returns the smallest member >= from, or -1.
func (b bitset) next(from int) int {
	if from < 0 {
		from = 0
	}
	w := from >> 6
	if w >= len(b) {
		return -1
	}
	word := b[w] &^ (1<<(uint(from)&63) - 1)
	for {
		if word != 0 {
			return w<<6 + bits.TrailingZeros64(word)
		}
		w++
		if w >= len(b) {
			return -1
		}
		word = b[w]
	}
}
