// Package gemm is the trainer's hot kernel: single-precision matrix
// multiplication (SGEMM) on row-major slices, and the few vector kernels
// that a training step runs over every element (Adam, ReLU and its gradient,
// Saxpy, Add).
//
// Sgemm follows the GotoBLAS/BLIS design. op(B) is packed, one k block of kc
// rows at a time, into panels nr columns wide; op(A) is packed into panels mr
// rows high. A register-tile micro-kernel multiplies one A panel by one B
// panel (kc rank-1 updates) and writes the mr x nr tile of C scaled by alpha,
// plus beta times C. Packing makes every kernel read contiguous whatever the
// transposes and strides of the caller's matrices, keeps the B panel in L1
// and the A panels in L2. Edge tiles are computed into a scratch tile and
// merged, so the kernel only ever sees full tiles. The packers that must
// transpose use an AVX 8x8 transpose where the assembly kernels run.
//
// The micro-kernel is chosen once, at start-up, from what the CPU offers
// (golang.org/x/sys/cpu): AVX-512F (14x32 tile), else AVX2 with FMA (6x16
// tile), both in Go assembly, else a pure-Go 4x16 kernel. The build tag purego,
// or any GOARCH other than amd64, keeps only the pure-Go kernel.
//
// Work is shared out in two phases of small tasks that the workers (the
// caller's goroutine and up to GOMAXPROCS-1 more) take from an atomic
// counter, so a core slowed down by other load simply takes fewer of them:
// first op(B) is packed once for everybody, then each worker takes bands of
// rows of C, packs their op(A) and runs the kernel over them (for products
// with few rows the roles of A and B swap). Products below a few hundred
// thousand multiply-adds run on the caller's goroutine alone.
//
// The vector kernels use AVX where the CPU has AVX2 and give the same bits as
// their plain Go loops (same operations, same order, no fused multiply-add),
// so a caller can switch to them without changing any result.
//
// Results are deterministic for a given machine, kernel and k: each element
// of C is summed in the same order whatever the scheduling.
//
// The package imports nothing from joule, so that it can be benchmarked and
// tested alone.
package gemm
