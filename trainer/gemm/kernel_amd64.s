//go:build !purego

#include "textflag.h"

// One rank-1 update of the 6x16 tile: B row in Y12:Y13, A column broadcast
// into Y14/Y15 in turn. off is the byte offset of this step in the panels.
#define STEP6x16(aoff, boff) \
	VMOVUPS      boff(BX), Y12          \
	VMOVUPS      boff+32(BX), Y13       \
	VBROADCASTSS aoff(AX), Y14          \
	VFMADD231PS  Y12, Y14, Y0           \
	VFMADD231PS  Y13, Y14, Y1           \
	VBROADCASTSS aoff+4(AX), Y15        \
	VFMADD231PS  Y12, Y15, Y2           \
	VFMADD231PS  Y13, Y15, Y3           \
	VBROADCASTSS aoff+8(AX), Y14        \
	VFMADD231PS  Y12, Y14, Y4           \
	VFMADD231PS  Y13, Y14, Y5           \
	VBROADCASTSS aoff+12(AX), Y15       \
	VFMADD231PS  Y12, Y15, Y6           \
	VFMADD231PS  Y13, Y15, Y7           \
	VBROADCASTSS aoff+16(AX), Y14       \
	VFMADD231PS  Y12, Y14, Y8           \
	VFMADD231PS  Y13, Y14, Y9           \
	VBROADCASTSS aoff+20(AX), Y15       \
	VFMADD231PS  Y12, Y15, Y10          \
	VFMADD231PS  Y13, Y15, Y11

// Row stores: C = acc; C = acc + C; C = acc + beta*C (beta in Y14).
#define STORE0(r0, r1) \
	VMOVUPS r0, (DI)     \
	VMOVUPS r1, 32(DI)   \
	ADDQ    DX, DI

#define STORE1(r0, r1) \
	VADDPS  (DI), r0, r0   \
	VADDPS  32(DI), r1, r1 \
	VMOVUPS r0, (DI)       \
	VMOVUPS r1, 32(DI)     \
	ADDQ    DX, DI

#define STOREB(r0, r1) \
	VFMADD231PS (DI), Y14, r0   \
	VFMADD231PS 32(DI), Y14, r1 \
	VMOVUPS     r0, (DI)        \
	VMOVUPS     r1, 32(DI)      \
	ADDQ        DX, DI

// func sgemmKernel6x16AVX2(kc int, a, b, c *float32, ldc int, alpha, beta float32, mode int)
//
// Sets the 6x16 tile at c (row stride ldc) to alpha*a*b + beta*c, where a is
// a packed 6 x kc panel and b a packed kc x 16 panel. mode 0 stores
// alpha*a*b without reading c, mode 1 adds c, mode 2 adds beta*c.
TEXT ·sgemmKernel6x16AVX2(SB), NOSPLIT, $0-56
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), BX
	MOVQ c+24(FP), DI
	MOVQ ldc+32(FP), DX
	SHLQ $2, DX

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

	// Prefetch the C tile: it is written once the loop ends.
	MOVQ       DI, SI
	PREFETCHT0 (SI)
	PREFETCHT0 60(SI)
	ADDQ       DX, SI
	PREFETCHT0 (SI)
	PREFETCHT0 60(SI)
	ADDQ       DX, SI
	PREFETCHT0 (SI)
	PREFETCHT0 60(SI)
	ADDQ       DX, SI
	PREFETCHT0 (SI)
	PREFETCHT0 60(SI)
	ADDQ       DX, SI
	PREFETCHT0 (SI)
	PREFETCHT0 60(SI)
	ADDQ       DX, SI
	PREFETCHT0 (SI)
	PREFETCHT0 60(SI)

	MOVQ CX, R8
	SHRQ $2, R8
	JZ   tail

loop4:
	PREFETCHT0 384(BX)
	STEP6x16(0, 0)
	STEP6x16(24, 64)
	PREFETCHT0 448(BX)
	STEP6x16(48, 128)
	STEP6x16(72, 192)
	ADDQ $96, AX
	ADDQ $256, BX
	DECQ R8
	JNZ  loop4

tail:
	ANDQ $3, CX
	JZ   store

loop1:
	STEP6x16(0, 0)
	ADDQ $24, AX
	ADDQ $64, BX
	DECQ CX
	JNZ  loop1

store:
	VBROADCASTSS alpha+40(FP), Y15
	VMULPS Y15, Y0, Y0
	VMULPS Y15, Y1, Y1
	VMULPS Y15, Y2, Y2
	VMULPS Y15, Y3, Y3
	VMULPS Y15, Y4, Y4
	VMULPS Y15, Y5, Y5
	VMULPS Y15, Y6, Y6
	VMULPS Y15, Y7, Y7
	VMULPS Y15, Y8, Y8
	VMULPS Y15, Y9, Y9
	VMULPS Y15, Y10, Y10
	VMULPS Y15, Y11, Y11
	MOVQ mode+48(FP), SI
	CMPQ SI, $1
	JEQ  store1
	JGT  storeb

	STORE0(Y0, Y1)
	STORE0(Y2, Y3)
	STORE0(Y4, Y5)
	STORE0(Y6, Y7)
	STORE0(Y8, Y9)
	STORE0(Y10, Y11)
	VZEROUPPER
	RET

store1:
	STORE1(Y0, Y1)
	STORE1(Y2, Y3)
	STORE1(Y4, Y5)
	STORE1(Y6, Y7)
	STORE1(Y8, Y9)
	STORE1(Y10, Y11)
	VZEROUPPER
	RET

storeb:
	VBROADCASTSS beta+44(FP), Y14
	STOREB(Y0, Y1)
	STOREB(Y2, Y3)
	STOREB(Y4, Y5)
	STOREB(Y6, Y7)
	STOREB(Y8, Y9)
	STOREB(Y10, Y11)
	VZEROUPPER
	RET
