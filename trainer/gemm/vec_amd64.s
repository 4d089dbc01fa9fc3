//go:build !purego

#include "textflag.h"

// func adamAVX(params, grads, m1, m2 *float32, n int, c *adamConsts)
//
// One Adam step over n elements, n a multiple of 8; see adamGo for the
// formula, whose order of operations this follows exactly (no FMA).
TEXT ·adamAVX(SB), NOSPLIT, $0-48
	MOVQ params+0(FP), DI
	MOVQ grads+8(FP), SI
	MOVQ m1+16(FP), R8
	MOVQ m2+24(FP), R9
	MOVQ n+32(FP), CX
	MOVQ c+40(FP), AX
	VBROADCASTSS 0(AX), Y8   // weightDecay
	VBROADCASTSS 4(AX), Y9   // beta1
	VBROADCASTSS 8(AX), Y10  // 1-beta1
	VBROADCASTSS 12(AX), Y11 // beta2
	VBROADCASTSS 16(AX), Y12 // 1-beta2
	VBROADCASTSS 20(AX), Y13 // stepSize
	VBROADCASTSS 24(AX), Y14 // sqrtBC2
	VBROADCASTSS 28(AX), Y15 // eps
	SHRQ $3, CX
	JZ   done

loop:
	VMOVUPS (DI), Y0     // w
	VMOVUPS (SI), Y1
	VMULPS  Y8, Y0, Y2
	VADDPS  Y2, Y1, Y1   // grad = g + wd*w
	VMOVUPS (R8), Y3
	VMULPS  Y9, Y3, Y3
	VMULPS  Y10, Y1, Y4
	VADDPS  Y4, Y3, Y3   // m = beta1*m + (1-beta1)*grad
	VMOVUPS Y3, (R8)
	VMOVUPS (R9), Y5
	VMULPS  Y11, Y5, Y5
	VMULPS  Y12, Y1, Y6
	VMULPS  Y1, Y6, Y6
	VADDPS  Y6, Y5, Y5   // v = beta2*v + (1-beta2)*grad*grad
	VMOVUPS Y5, (R9)
	VSQRTPS Y5, Y6
	VDIVPS  Y14, Y6, Y6
	VADDPS  Y15, Y6, Y6  // denom = sqrt(v)/sqrtBC2 + eps
	VMULPS  Y13, Y3, Y7
	VDIVPS  Y6, Y7, Y7
	VSUBPS  Y7, Y0, Y0   // w - stepSize*m/denom
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	ADDQ    $32, R8
	ADDQ    $32, R9
	DECQ    CX
	JNZ     loop

done:
	VZEROUPPER
	RET

// func saxpyAVX(alpha float32, x, y *float32, n int)
// y[i] += alpha*x[i] for n a multiple of 8 (multiply, then add: no FMA).
TEXT ·saxpyAVX(SB), NOSPLIT, $0-32
	VBROADCASTSS alpha+0(FP), Y15
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DI
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	JZ   saxpydone

saxpyloop:
	VMULPS  (SI), Y15, Y0
	VADDPS  (DI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     saxpyloop

saxpydone:
	VZEROUPPER
	RET

// func addAVX(dst, src *float32, n int)
// dst[i] += src[i] for n a multiple of 8.
TEXT ·addAVX(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   adddone

addloop:
	VMOVUPS (DI), Y0
	VADDPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     addloop

adddone:
	VZEROUPPER
	RET

// func reluAVX(y, x *float32, n int)
// y[i] = max(x[i], 0) as Go computes it, for n a multiple of 8. VMAXPS
// returns its second source when either is NaN or both are zeros, so max(0,
// x) keeps NaN; adding +0 then turns -0 into +0 and leaves the rest alone.
TEXT ·reluAVX(SB), NOSPLIT, $0-24
	MOVQ   y+0(FP), DI
	MOVQ   x+8(FP), SI
	MOVQ   n+16(FP), CX
	VXORPS Y15, Y15, Y15
	SHRQ   $3, CX
	JZ     reludone

reluloop:
	VMOVUPS (SI), Y0
	VMAXPS  Y0, Y15, Y0
	VADDPS  Y15, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     reluloop

reludone:
	VZEROUPPER
	RET

// func reluGradAVX(dx, dy, y *float32, n int)
// dx[i] = y[i] > 0 ? dy[i] : 0 for n a multiple of 8 (ordered compare: NaN
// gives 0, as in Go).
TEXT ·reluGradAVX(SB), NOSPLIT, $0-32
	MOVQ   dx+0(FP), DI
	MOVQ   dy+8(FP), SI
	MOVQ   y+16(FP), DX
	MOVQ   n+24(FP), CX
	VXORPS Y15, Y15, Y15
	SHRQ   $3, CX
	JZ     rgdone

rgloop:
	VMOVUPS (DX), Y0
	VCMPPS  $0x1e, Y15, Y0, Y0 // y > 0 (GT_OQ)
	VANDPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	ADDQ    $32, DX
	DECQ    CX
	JNZ     rgloop

rgdone:
	VZEROUPPER
	RET
