//go:build !purego

#include "textflag.h"

// maskTable: 8 ones then 8 zeros; the 8 dwords at maskTable+4*(8-n) select
// the first n lanes of a YMM register.
DATA maskTable<>+0(SB)/4, $0xffffffff
DATA maskTable<>+4(SB)/4, $0xffffffff
DATA maskTable<>+8(SB)/4, $0xffffffff
DATA maskTable<>+12(SB)/4, $0xffffffff
DATA maskTable<>+16(SB)/4, $0xffffffff
DATA maskTable<>+20(SB)/4, $0xffffffff
DATA maskTable<>+24(SB)/4, $0xffffffff
DATA maskTable<>+28(SB)/4, $0xffffffff
DATA maskTable<>+32(SB)/4, $0
DATA maskTable<>+36(SB)/4, $0
DATA maskTable<>+40(SB)/4, $0
DATA maskTable<>+44(SB)/4, $0
DATA maskTable<>+48(SB)/4, $0
DATA maskTable<>+52(SB)/4, $0
DATA maskTable<>+56(SB)/4, $0
DATA maskTable<>+60(SB)/4, $0
GLOBL maskTable<>(SB), RODATA|NOPTR, $64

#define STORE8(r) \
	VMOVUPS r, (DI) \
	ADDQ    DX, DI

#define MSTORE8(r) \
	VMASKMOVPS r, Y0, (DI) \
	ADDQ       DX, DI

// func transpose8(dst *float32, ldd int, rows *[8]*float32, n int, lanes int)
//
// Transposes an 8 x 8n strip: for q < 8n and i < lanes,
// dst[q*ldd+i] = rows[i][q]. Lanes past `lanes` of dst are left alone.
TEXT ·transpose8(SB), NOSPLIT, $0-40
	// The mask first: under -dynlink a global's address may go through R15.
	MOVQ lanes+32(FP), BX
	LEAQ maskTable<>(SB), SI
	MOVQ $8, AX
	SUBQ BX, AX
	LEAQ (SI)(AX*4), SI
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), DX
	SHLQ $2, DX
	MOVQ rows+16(FP), AX
	MOVQ 0(AX), R8
	MOVQ 8(AX), R9
	MOVQ 16(AX), R10
	MOVQ 24(AX), R11
	MOVQ 32(AX), R12
	MOVQ 40(AX), R13
	MOVQ 48(AX), R14
	MOVQ 56(AX), R15
	MOVQ n+24(FP), CX
	XORQ AX, AX
	TESTQ CX, CX
	JZ    done

loop:
	VMOVUPS (R8)(AX*1), Y0
	VMOVUPS (R9)(AX*1), Y1
	VMOVUPS (R10)(AX*1), Y2
	VMOVUPS (R11)(AX*1), Y3
	VMOVUPS (R12)(AX*1), Y4
	VMOVUPS (R13)(AX*1), Y5
	VMOVUPS (R14)(AX*1), Y6
	VMOVUPS (R15)(AX*1), Y7
	VUNPCKLPS  Y1, Y0, Y8
	VUNPCKHPS  Y1, Y0, Y9
	VUNPCKLPS  Y3, Y2, Y10
	VUNPCKHPS  Y3, Y2, Y11
	VUNPCKLPS  Y5, Y4, Y12
	VUNPCKHPS  Y5, Y4, Y13
	VUNPCKLPS  Y7, Y6, Y14
	VUNPCKHPS  Y7, Y6, Y15
	VSHUFPS    $0x44, Y10, Y8, Y0
	VSHUFPS    $0xEE, Y10, Y8, Y1
	VSHUFPS    $0x44, Y11, Y9, Y2
	VSHUFPS    $0xEE, Y11, Y9, Y3
	VSHUFPS    $0x44, Y14, Y12, Y4
	VSHUFPS    $0xEE, Y14, Y12, Y5
	VSHUFPS    $0x44, Y15, Y13, Y6
	VSHUFPS    $0xEE, Y15, Y13, Y7
	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x31, Y7, Y3, Y15
	CMPQ BX, $8
	JNE  masked
	STORE8(Y8)
	STORE8(Y9)
	STORE8(Y10)
	STORE8(Y11)
	STORE8(Y12)
	STORE8(Y13)
	STORE8(Y14)
	STORE8(Y15)
	JMP next

masked:
	VMOVUPS (SI), Y0
	MSTORE8(Y8)
	MSTORE8(Y9)
	MSTORE8(Y10)
	MSTORE8(Y11)
	MSTORE8(Y12)
	MSTORE8(Y13)
	MSTORE8(Y14)
	MSTORE8(Y15)

next:
	ADDQ $32, AX
	DECQ CX
	JNZ  loop

done:
	VZEROUPPER
	RET

// func copyStrip(dst *float32, ldd int, src *float32, lds int, n int, w int)
//
// Copies n rows of w floats (w >= 1): dst[r*ldd+j] = src[r*lds+j] for j < w.
// Whole groups of 8 go through YMM registers, the last w%8 through masked
// moves, which never touch memory past the row.
TEXT ·copyStrip(SB), NOSPLIT, $0-48
	MOVQ w+40(FP), BX
	MOVQ BX, R10
	ANDQ $7, R10
	LEAQ maskTable<>(SB), R11
	MOVQ $8, AX
	SUBQ R10, AX
	VMOVUPS (R11)(AX*4), Y15
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), DX
	SHLQ $2, DX
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), R8
	SHLQ $2, R8
	MOVQ n+32(FP), CX
	SHRQ $3, BX // whole groups of 8
	TESTQ CX, CX
	JZ    copydone

copyrow:
	XORQ AX, AX
	MOVQ BX, R9
	TESTQ R9, R9
	JZ    copytail

copy8:
	VMOVUPS (SI)(AX*1), Y0
	VMOVUPS Y0, (DI)(AX*1)
	ADDQ    $32, AX
	DECQ    R9
	JNZ     copy8

copytail:
	TESTQ      R10, R10
	JZ         copynext
	VMASKMOVPS (SI)(AX*1), Y15, Y0
	VMASKMOVPS Y0, Y15, (DI)(AX*1)

copynext:
	ADDQ DX, DI
	ADDQ R8, SI
	DECQ CX
	JNZ  copyrow

copydone:
	VZEROUPPER
	RET
