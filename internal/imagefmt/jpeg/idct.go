package jpeg

// The inverse DCTs of libjpeg-turbo 2.1 (jidctint.c jpeg_idct_islow, the
// default JDCT_ISLOW, and jidctred.c jpeg_idct_4x4, _2x2, _1x1 for scaled
// decoding), ported line by line so that the samples are djpeg's: the same
// constants, the same order of rounding, the same short cuts for all-zero
// columns and rows, and the same range limiting. They read coefficients in
// and the quantization table q, both in natural order, and multiply each
// coefficient they use as they read it (libjpeg's DEQUANTIZE); they write
// the level-shifted samples to dst, stride bytes a row.
//
// This code is derived from libjpeg-turbo, which is based in part on the work
// of the Independent JPEG Group; see LICENSE-libjpeg-turbo.md and README.ijg.

type block [blockSize]int32

const blockSize = 8 * 8

const (
	constBits = 13
	pass1Bits = 2

	fix0_211164243 = 1730
	fix0_298631336 = 2446
	fix0_390180644 = 3196
	fix0_509795579 = 4176
	fix0_541196100 = 4433
	fix0_601344887 = 4926
	fix0_720959822 = 5906
	fix0_765366865 = 6270
	fix0_850430095 = 6967
	fix0_899976223 = 7373
	fix1_061594337 = 8697
	fix1_175875602 = 9633
	fix1_272758580 = 10426
	fix1_451774981 = 11893
	fix1_501321110 = 12299
	fix1_847759065 = 15137
	fix1_961570560 = 16069
	fix2_053119869 = 16819
	fix2_172734803 = 17799
	fix2_562915447 = 20995
	fix3_072711026 = 25172
	fix3_624509785 = 29692
)

// descale is libjpeg's DESCALE: x / 2^n rounded, as an arithmetic shift.
func descale(x int64, n uint) int64 { return (x + 1<<(n-1)) >> n }

// idctLimit is libjpeg's IDCT_range_limit table, indexed by the descaled
// output (centred on 0) masked with RANGE_MASK (1023): -128..127 map to
// 0..255, larger values to 255, and the wrapped-around rest to 0, so that
// wildly out-of-range (corrupt) coefficients saturate as libjpeg's do.
var idctLimit = func() (t [1024]uint8) {
	for m := range t {
		switch {
		case m < 128:
			t[m] = uint8(m + 128)
		case m < 512:
			t[m] = 255
		case m < 896:
			t[m] = 0
		default:
			t[m] = uint8(m - 896)
		}
	}
	return t
}()

func limit(x int64) uint8 { return idctLimit[x&1023] }

// idctIslow is jpeg_idct_islow: the accurate integer 8×8 IDCT.
func idctIslow(in, q *block, dst []byte, stride int) {
	var ws [blockSize]int32
	for c := 0; c < 8; c++ {
		if in[8+c] == 0 && in[16+c] == 0 && in[24+c] == 0 && in[32+c] == 0 &&
			in[40+c] == 0 && in[48+c] == 0 && in[56+c] == 0 {
			dc := in[c] * q[c] << pass1Bits
			for r := 0; r < 8; r++ {
				ws[8*r+c] = dc
			}
			continue
		}
		z2, z3 := int64(in[16+c])*int64(q[16+c]), int64(in[48+c])*int64(q[48+c])
		z1 := (z2 + z3) * fix0_541196100
		tmp2 := z1 + z3*-fix1_847759065
		tmp3 := z1 + z2*fix0_765366865
		z2, z3 = int64(in[c])*int64(q[c]), int64(in[32+c])*int64(q[32+c])
		tmp0 := (z2 + z3) << constBits
		tmp1 := (z2 - z3) << constBits
		tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
		tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2

		tmp0, tmp1, tmp2, tmp3 = int64(in[56+c])*int64(q[56+c]), int64(in[40+c])*int64(q[40+c]), int64(in[24+c])*int64(q[24+c]), int64(in[8+c])*int64(q[8+c])
		z1, z2, z3 = tmp0+tmp3, tmp1+tmp2, tmp0+tmp2
		z4 := tmp1 + tmp3
		z5 := (z3 + z4) * fix1_175875602
		tmp0 *= fix0_298631336
		tmp1 *= fix2_053119869
		tmp2 *= fix3_072711026
		tmp3 *= fix1_501321110
		z1 *= -fix0_899976223
		z2 *= -fix2_562915447
		z3 *= -fix1_961570560
		z4 *= -fix0_390180644
		z3 += z5
		z4 += z5
		tmp0 += z1 + z3
		tmp1 += z2 + z4
		tmp2 += z2 + z3
		tmp3 += z1 + z4

		const n = constBits - pass1Bits
		ws[c] = int32(descale(tmp10+tmp3, n))
		ws[56+c] = int32(descale(tmp10-tmp3, n))
		ws[8+c] = int32(descale(tmp11+tmp2, n))
		ws[48+c] = int32(descale(tmp11-tmp2, n))
		ws[16+c] = int32(descale(tmp12+tmp1, n))
		ws[40+c] = int32(descale(tmp12-tmp1, n))
		ws[24+c] = int32(descale(tmp13+tmp0, n))
		ws[32+c] = int32(descale(tmp13-tmp0, n))
	}
	for r := 0; r < 8; r++ {
		w := ws[8*r : 8*r+8 : 8*r+8]
		out := dst[r*stride : r*stride+8 : r*stride+8]
		if w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0 && w[6] == 0 && w[7] == 0 {
			v := limit(descale(int64(w[0]), pass1Bits+3))
			for x := range out {
				out[x] = v
			}
			continue
		}
		z2, z3 := int64(w[2]), int64(w[6])
		z1 := (z2 + z3) * fix0_541196100
		tmp2 := z1 + z3*-fix1_847759065
		tmp3 := z1 + z2*fix0_765366865
		tmp0 := (int64(w[0]) + int64(w[4])) << constBits
		tmp1 := (int64(w[0]) - int64(w[4])) << constBits
		tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
		tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2

		tmp0, tmp1, tmp2, tmp3 = int64(w[7]), int64(w[5]), int64(w[3]), int64(w[1])
		z1, z2, z3 = tmp0+tmp3, tmp1+tmp2, tmp0+tmp2
		z4 := tmp1 + tmp3
		z5 := (z3 + z4) * fix1_175875602
		tmp0 *= fix0_298631336
		tmp1 *= fix2_053119869
		tmp2 *= fix3_072711026
		tmp3 *= fix1_501321110
		z1 *= -fix0_899976223
		z2 *= -fix2_562915447
		z3 *= -fix1_961570560
		z4 *= -fix0_390180644
		z3 += z5
		z4 += z5
		tmp0 += z1 + z3
		tmp1 += z2 + z4
		tmp2 += z2 + z3
		tmp3 += z1 + z4

		const n = constBits + pass1Bits + 3
		out[0] = limit(descale(tmp10+tmp3, n))
		out[7] = limit(descale(tmp10-tmp3, n))
		out[1] = limit(descale(tmp11+tmp2, n))
		out[6] = limit(descale(tmp11-tmp2, n))
		out[2] = limit(descale(tmp12+tmp1, n))
		out[5] = limit(descale(tmp12-tmp1, n))
		out[3] = limit(descale(tmp13+tmp0, n))
		out[4] = limit(descale(tmp13-tmp0, n))
	}
}

// idct4x4 is jpeg_idct_4x4: 4×4 samples from the 8×8 coefficients (row and
// column 4 unused).
func idct4x4(in, q *block, dst []byte, stride int) {
	var ws [8 * 4]int32
	for c := 0; c < 8; c++ {
		if c == 4 {
			continue
		}
		if in[8+c] == 0 && in[16+c] == 0 && in[24+c] == 0 && in[40+c] == 0 && in[48+c] == 0 && in[56+c] == 0 {
			dc := in[c] * q[c] << pass1Bits
			ws[c], ws[8+c], ws[16+c], ws[24+c] = dc, dc, dc, dc
			continue
		}
		tmp0 := int64(in[c]) * int64(q[c]) << (constBits + 1)
		z2, z3 := int64(in[16+c])*int64(q[16+c]), int64(in[48+c])*int64(q[48+c])
		tmp2 := z2*fix1_847759065 + z3*-fix0_765366865
		tmp10, tmp12 := tmp0+tmp2, tmp0-tmp2
		z1, z2, z3, z4 := int64(in[56+c])*int64(q[56+c]), int64(in[40+c])*int64(q[40+c]), int64(in[24+c])*int64(q[24+c]), int64(in[8+c])*int64(q[8+c])
		tmp0 = z1*-fix0_211164243 + z2*fix1_451774981 + z3*-fix2_172734803 + z4*fix1_061594337
		tmp2 = z1*-fix0_509795579 + z2*-fix0_601344887 + z3*fix0_899976223 + z4*fix2_562915447
		const n = constBits - pass1Bits + 1
		ws[c] = int32(descale(tmp10+tmp2, n))
		ws[24+c] = int32(descale(tmp10-tmp2, n))
		ws[8+c] = int32(descale(tmp12+tmp0, n))
		ws[16+c] = int32(descale(tmp12-tmp0, n))
	}
	for r := 0; r < 4; r++ {
		w := ws[8*r : 8*r+8 : 8*r+8]
		out := dst[r*stride : r*stride+4 : r*stride+4]
		if w[1] == 0 && w[2] == 0 && w[3] == 0 && w[5] == 0 && w[6] == 0 && w[7] == 0 {
			v := limit(descale(int64(w[0]), pass1Bits+3))
			out[0], out[1], out[2], out[3] = v, v, v, v
			continue
		}
		tmp0 := int64(w[0]) << (constBits + 1)
		tmp2 := int64(w[2])*fix1_847759065 + int64(w[6])*-fix0_765366865
		tmp10, tmp12 := tmp0+tmp2, tmp0-tmp2
		z1, z2, z3, z4 := int64(w[7]), int64(w[5]), int64(w[3]), int64(w[1])
		tmp0 = z1*-fix0_211164243 + z2*fix1_451774981 + z3*-fix2_172734803 + z4*fix1_061594337
		tmp2 = z1*-fix0_509795579 + z2*-fix0_601344887 + z3*fix0_899976223 + z4*fix2_562915447
		const n = constBits + pass1Bits + 3 + 1
		out[0] = limit(descale(tmp10+tmp2, n))
		out[3] = limit(descale(tmp10-tmp2, n))
		out[1] = limit(descale(tmp12+tmp0, n))
		out[2] = limit(descale(tmp12-tmp0, n))
	}
}

// idct2x2 is jpeg_idct_2x2: 2×2 samples (rows and columns 2, 4, 6 unused).
func idct2x2(in, q *block, dst []byte, stride int) {
	var ws [8 * 2]int32
	for c := 0; c < 8; c++ {
		if c == 2 || c == 4 || c == 6 {
			continue
		}
		if in[8+c] == 0 && in[24+c] == 0 && in[40+c] == 0 && in[56+c] == 0 {
			dc := in[c] * q[c] << pass1Bits
			ws[c], ws[8+c] = dc, dc
			continue
		}
		tmp10 := int64(in[c]) * int64(q[c]) << (constBits + 2)
		tmp0 := int64(in[56+c])*int64(q[56+c])*-fix0_720959822 + int64(in[40+c])*int64(q[40+c])*fix0_850430095 +
			int64(in[24+c])*int64(q[24+c])*-fix1_272758580 + int64(in[8+c])*int64(q[8+c])*fix3_624509785
		const n = constBits - pass1Bits + 2
		ws[c] = int32(descale(tmp10+tmp0, n))
		ws[8+c] = int32(descale(tmp10-tmp0, n))
	}
	for r := 0; r < 2; r++ {
		w := ws[8*r : 8*r+8 : 8*r+8]
		out := dst[r*stride : r*stride+2 : r*stride+2]
		if w[1] == 0 && w[3] == 0 && w[5] == 0 && w[7] == 0 {
			v := limit(descale(int64(w[0]), pass1Bits+3))
			out[0], out[1] = v, v
			continue
		}
		tmp10 := int64(w[0]) << (constBits + 2)
		tmp0 := int64(w[7])*-fix0_720959822 + int64(w[5])*fix0_850430095 +
			int64(w[3])*-fix1_272758580 + int64(w[1])*fix3_624509785
		const n = constBits + pass1Bits + 3 + 2
		out[0] = limit(descale(tmp10+tmp0, n))
		out[1] = limit(descale(tmp10-tmp0, n))
	}
}

// idct1x1 is jpeg_idct_1x1: the block's mean, DC/8.
func idct1x1(in, q *block, dst []byte) {
	dst[0] = limit(descale(int64(in[0])*int64(q[0]), 3))
}
