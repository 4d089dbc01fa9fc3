package gemm

// packA copies alpha * op(A)[i0:i0+mc, p0:p0+kc] into dst as panels of mr
// rows: panel r holds, for each p in [0, kc), the mr elements of column p
// (dst[r*mr*kc + p*mr + i]). Rows past mc are zero, so the kernel can always
// compute a full tile.
func packA(dst, a []float32, lda int, trans bool, i0, mc, p0, kc, mr int, alpha float32) {
	for r := 0; r < mc; r += mr {
		panel := dst[r*kc : r*kc+mr*kc]
		h := min(mr, mc-r)
		if !trans {
			// op(A) = A: row i of the panel is contiguous in a.
			for i := 0; i < h; i++ {
				src := a[(i0+r+i)*lda+p0:]
				src = src[:kc]
				for p, v := range src {
					panel[p*mr+i] = alpha * v
				}
			}
		} else {
			// op(A) = A^T: column p of op(A) is row p of a, contiguous.
			for p := 0; p < kc; p++ {
				src := a[(p0+p)*lda+i0+r:]
				src = src[:h]
				d := panel[p*mr : p*mr+h]
				for i, v := range src {
					d[i] = alpha * v
				}
			}
		}
		if h < mr {
			for p := 0; p < kc; p++ {
				clear(panel[p*mr+h : p*mr+mr])
			}
		}
	}
}

// packB copies op(B)[p0:p0+kc, j0:j0+nc] into dst as panels of nr columns:
// panel s holds, for each p in [0, kc), the nr elements of row p
// (dst[s*nr*kc + p*nr + j]). Columns past nc are zero.
func packB(dst, b []float32, ldb int, trans bool, p0, kc, j0, nc, nr int) {
	for s := 0; s < nc; s += nr {
		panel := dst[s*kc : s*kc+nr*kc]
		w := min(nr, nc-s)
		if !trans {
			// op(B) = B: row p of the panel is contiguous in b.
			for p := 0; p < kc; p++ {
				src := b[(p0+p)*ldb+j0+s:]
				copy(panel[p*nr:p*nr+w], src[:w])
			}
		} else {
			// op(B) = B^T: column j of the panel is row j of b, contiguous.
			for j := 0; j < w; j++ {
				src := b[(j0+s+j)*ldb+p0:]
				src = src[:kc]
				for p, v := range src {
					panel[p*nr+j] = v
				}
			}
		}
		if w < nr {
			for p := 0; p < kc; p++ {
				clear(panel[p*nr+w : p*nr+nr])
			}
		}
	}
}
