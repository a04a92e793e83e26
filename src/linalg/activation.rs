//! Activations: exp and tanh written without branches or library calls so that
//! the cells' loops over a slice vectorise (f64: Cephes' routines, about 1 ulp;
//! f32: approximations within 3e-7). [`Real`](super::Real) builds its
//! activations (and sigmoid) from these; `softmax` builds on those.

/// e^x for f64 within about 1 ulp on [-708, 709] (0 below, saturating above), without
/// branches or library calls so loops vectorise. Cephes' exp: x = n ln2 + r,
/// e^r = 1 + 2r P(r^2) / (Q(r^2) - r P(r^2)), 2^n built in the exponent bits.
#[inline(always)]
pub fn exp_f64(x: f64) -> f64 {
    let (p, q, two_n) = exp_f64_parts(x);
    let e = (1.0 + 2.0 * p / (q - p)) * two_n;
    // 0 below the range (softmax excludes a character with -inf); NaN stays NaN
    if x < -708.0 { 0.0 } else { e }
}

/// The pieces of [`exp_f64`]: e^x = 2^n (q + p) / (q - p) for x in range.
#[inline(always)]
fn exp_f64_parts(x: f64) -> (f64, f64, f64) {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    const C1: f64 = 6.931_457_519_531_25e-1;
    const C2: f64 = 1.428_606_820_309_417_2e-6;
    // adding 1.5 * 2^52 rounds to an integer n, which then sits in the low mantissa
    // bits: bits(t) - bits(ROUND) = n, so 2^n is built with integer adds and shifts
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let xc = x.clamp(-708.0, 709.0);
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND;
    let r = xc - n * C1 - n * C2;
    let rr = r * r;
    let p = r * ((1.261_771_930_748_105_9e-4 * rr + 3.029_944_077_074_419_6e-2) * rr + 1.0);
    let q = ((3.001_985_051_386_644_5e-6 * rr + 2.524_483_403_496_841e-3) * rr
        + 2.272_655_482_081_550_3e-1)
        * rr
        + 2.0;
    let two_n = f64::from_bits(t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(1023) << 52);
    (p, q, two_n)
}

/// tanh for f64 within about 1 ulp, branch-free (Cephes' tanh): x + x z P(z) / Q(z)
/// with z = x^2 for |x| < 0.625, 1 - 2 / (e^2|x| + 1) beyond. With e^2|x| =
/// 2^n (q + p) / (q - p) the latter is 1 - 2 (q - p) / (2^n (q + p) + q - p), so
/// both cases end in one division, taken once on whichever numerator and
/// denominator apply (divisions are what a vectorised tanh waits on).
#[inline(always)]
pub fn tanh_f64(x: f64) -> f64 {
    let z = x * x;
    let sp =
        (-9.643_991_794_250_522e-1 * z - 9.928_772_310_019_186e1) * z - 1.614_687_684_417_084_5e3;
    let sq = ((z + 1.128_116_784_916_329_3e2) * z + 2.235_488_390_601_004_6e3) * z
        + 4.844_063_053_251_255e3;
    let (p, q, two_n) = exp_f64_parts(2.0 * x.abs());
    let small = x.abs() < 0.625;
    let num = if small { x * z * sp } else { 2.0 * (q - p) };
    let den = if small { sq } else { two_n * (q + p) + (q - p) };
    let r = num / den;
    if small { x + r } else { (1.0 - r).copysign(x) }
}

/// e^x for f32 within 2 ulp on [-87, 88] (0 below, saturating above, which is all
/// that softmax, sigmoid and tanh need), written without branches or library calls so that a
/// loop over a slice vectorises (libm's expf/tanhf took a fifth of LSTM training).
/// Cephes' expf: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial,
/// 2^n built in the exponent bits.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // adding 1.5 * 2^23 rounds to an integer n held in the low mantissa bits (see exp_f64)
    const ROUND: f32 = 12_582_912.0;
    // keeps 2^n a normal number: e^88 < f32::MAX, e^-87 > the smallest normal
    let xc = x.clamp(-87.0, 88.0);
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = (((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2)
        * r
        + 1.666_666_5e-1)
        * r
        + 0.5)
        * r
        * r
        + r
        + 1.0;
    let two_n = f32::from_bits(t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
    let e = p * two_n;
    // 0 below the range (softmax excludes a character with -inf); NaN stays NaN
    if x < -87.0 { 0.0 } else { e }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::*;

    #[test]
    fn fast_f32_activations_are_accurate() {
        let mut worst = (0.0f64, 0.0f64, 0.0f64);
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4 * 4.5; // [-90, 90]
            let e = (x as f64).exp();
            if (-87.0..=88.0).contains(&x) {
                worst.0 = worst.0.max(((exp_f32(x) as f64 - e) / e).abs());
            }
            worst.1 = worst.1.max((x.tanh_act() as f64 - (x as f64).tanh()).abs());
            worst.2 = worst
                .2
                .max((x.sigmoid() as f64 - 1.0 / (1.0 + (-x as f64).exp())).abs());
        }
        assert!(worst.0 < 3e-7, "exp relative error {}", worst.0);
        assert!(worst.1 < 3e-7, "tanh absolute error {}", worst.1);
        assert!(worst.2 < 2e-7, "sigmoid absolute error {}", worst.2);
        assert_eq!(exp_f32(1000.0), exp_f32(88.0), "saturates, finite");
        assert!(exp_f32(1000.0).is_finite());
        assert_eq!(exp_f32(-1000.0), 0.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(100f32.tanh_act(), 1.0);
        assert_eq!((-100f32).tanh_act(), -1.0);
    }

    #[test]
    fn fast_f64_exp_and_tanh_are_within_a_few_ulp() {
        let mut worst = (0.0f64, 0.0f64);
        for i in -2_000_000..=2_000_000 {
            let x = i as f64 * 3.5e-4; // [-700, 700]
            worst.0 = worst.0.max(((exp_f64(x) - x.exp()) / x.exp()).abs());
            let y = i as f64 * 1e-5; // [-20, 20], dense around 0
            let t = y.tanh();
            if t != 0.0 {
                worst.1 = worst.1.max(((tanh_f64(y) - t) / t).abs());
            }
        }
        assert!(worst.0 < 5e-16, "exp relative error {}", worst.0);
        assert!(worst.1 < 5e-16, "tanh relative error {}", worst.1);
        assert_eq!(tanh_f64(0.0), 0.0);
        assert_eq!(tanh_f64(1e-300), 1e-300);
        assert_eq!(tanh_f64(50.0), 1.0);
        assert_eq!(tanh_f64(-50.0), -1.0);
        assert!(exp_f64(1e4).is_finite());
        assert_eq!(exp_f64(f64::NEG_INFINITY), 0.0);
        assert!(exp_f64(f64::NAN).is_nan() && tanh_f64(f64::NAN).is_nan());
    }
}
