// Package gemm is the trainer's hot kernel: single-precision matrix
// multiplication (SGEMM) on row-major slices, plus the few vector kernels the
// training loop calls once per element.
//
// Sgemm follows the GotoBLAS/BLIS design. op(B) is packed, kc rows at a time,
// into panels nr columns wide; op(A) is packed, mc rows at a time, into panels
// mr rows high (alpha is folded in while packing). A register-tile micro-kernel
// then multiplies one A panel by one B panel, kc rank-1 updates, and writes the
// mr x nr tile of C. Packing makes every kernel read contiguous and keeps the
// B panel in L1 and the A block in L2, whatever the transposes and strides of
// the caller's matrices. Edge tiles are computed into a scratch tile and
// merged, so the kernel itself only ever sees full tiles.
//
// The micro-kernel is chosen once, at start-up, from what the CPU offers
// (golang.org/x/sys/cpu): AVX-512F (14x32 tile), else AVX2 with FMA (6x16
// tile), both in Go assembly, else a pure-Go 4x4 kernel. The build tag purego,
// or any GOARCH other than amd64, keeps only the pure-Go kernel.
//
// Large products are split into as many rectangles of C as there are
// GOMAXPROCS (at most), and each rectangle runs on its own goroutine with its
// own pack buffers; products below a few hundred thousand multiply-adds stay
// on the caller's goroutine.
//
// Results are deterministic for a given machine, kernel and GOMAXPROCS: each
// element of C is summed in the same order whatever the scheduling.
//
// The package imports nothing from joule, so that it can be benchmarked and
// tested alone.
package gemm
