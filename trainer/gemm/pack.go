package gemm

// zeros stands in for the rows of a panel past the matrix's edge when packing
// with transposeStrip; it is never written.
var zeros [maxKC]float32

// maxKC bounds every kernel's kc.
const maxKC = 512

// packA copies op(A)[i0:i0+mc, p0:p0+kc] into dst as panels of mr rows: panel
// r holds, for each p in [0, kc), the mr elements of column p
// (dst[r*kc + p*mr + i]). Rows past mc are zero, so the kernel can always
// compute a full tile.
func packA(dst, a []float32, lda int, trans bool, i0, mc, p0, kc, mr int, asm bool) {
	for r := 0; r < mc; r += mr {
		panel := dst[r*kc : r*kc+mr*kc]
		h := min(mr, mc-r)
		if trans {
			// op(A) = A^T: column p of op(A) is row p of a, contiguous.
			if asm {
				copyRows(panel, mr, a[p0*lda+i0+r:], lda, kc, h)
			} else {
				for p := 0; p < kc; p++ {
					copy(panel[p*mr:p*mr+h], a[(p0+p)*lda+i0+r:])
				}
			}
			if h < mr {
				for p := 0; p < kc; p++ {
					clear(panel[p*mr+h : p*mr+mr])
				}
			}
			continue
		}
		// op(A) = A: row i of the panel is contiguous in a; transpose.
		done := 0
		if asm {
			done = kc &^ 7
			var rows [8][]float32
			for g := 0; g < mr; g += 8 {
				for i := range rows {
					rows[i] = zeros[:]
					if row := r + g + i; g+i < mr && row < mc {
						rows[i] = a[(i0+row)*lda+p0:]
					}
				}
				transposeStrip(panel[g:], mr, &rows, done, min(8, mr-g))
			}
		}
		for i := 0; i < mr; i++ {
			if i >= h {
				for p := done; p < kc; p++ {
					panel[p*mr+i] = 0
				}
				continue
			}
			src := a[(i0+r+i)*lda+p0:]
			src = src[:kc]
			for p := done; p < kc; p++ {
				panel[p*mr+i] = src[p]
			}
		}
	}
}

// packB copies op(B)[p0:p0+kc, j0:j0+nc] into dst as panels of nr columns:
// panel s holds, for each p in [0, kc), the nr elements of row p
// (dst[s*kc + p*nr + j]). Columns past nc are zero.
func packB(dst, b []float32, ldb int, trans bool, p0, kc, j0, nc, nr int, asm bool) {
	for s := 0; s < nc; s += nr {
		panel := dst[s*kc : s*kc+nr*kc]
		w := min(nr, nc-s)
		if !trans {
			// op(B) = B: row p of the panel is contiguous in b.
			if asm {
				copyRows(panel, nr, b[p0*ldb+j0+s:], ldb, kc, w)
			} else {
				for p := 0; p < kc; p++ {
					copy(panel[p*nr:p*nr+w], b[(p0+p)*ldb+j0+s:])
				}
			}
			if w < nr {
				for p := 0; p < kc; p++ {
					clear(panel[p*nr+w : p*nr+nr])
				}
			}
			continue
		}
		// op(B) = B^T: column j of the panel is row j of b; transpose.
		done := 0
		if asm {
			done = kc &^ 7
			var rows [8][]float32
			for g := 0; g < nr; g += 8 {
				for j := range rows {
					rows[j] = zeros[:]
					if col := s + g + j; g+j < nr && col < nc {
						rows[j] = b[(j0+col)*ldb+p0:]
					}
				}
				transposeStrip(panel[g:], nr, &rows, done, min(8, nr-g))
			}
		}
		for j := 0; j < nr; j++ {
			if j >= w {
				for p := done; p < kc; p++ {
					panel[p*nr+j] = 0
				}
				continue
			}
			src := b[(j0+s+j)*ldb+p0:]
			src = src[:kc]
			for p := done; p < kc; p++ {
				panel[p*nr+j] = src[p]
			}
		}
	}
}
