//! Run-time choice between two builds of each hot loop: [`dispatch!`] compiles a
//! function body once for baseline x86-64 and once with AVX2 + FMA, and picks
//! the second when the CPU has them ([`simd`]). Every kernel and cell loop is
//! defined through it.

use super::Real;

/// Whether this CPU runs the AVX2 + FMA builds of the hot loops. The crate is
/// compiled for baseline x86-64 (so the binary runs anywhere); each hot loop is
/// compiled a second time with AVX2 and FMA enabled and picked at run time.
/// `CHARRNN_NO_SIMD=1` forces the baseline builds (to compare the two).
#[inline]
pub fn simd() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static ON: OnceLock<bool> = OnceLock::new();
        *ON.get_or_init(|| {
            std::env::var_os("CHARRNN_NO_SIMD").is_none()
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// a*b + c, fused when F (one rounding instead of two): [`dispatch`]'s `fma!`, and
/// the inlined helpers of its bodies, which take the body's FUSED.
#[inline(always)]
pub(crate) fn madd<T: Real, const F: bool>(a: T, b: T, c: T) -> T {
    if F { a.mul_add(b, c) } else { a * b + c }
}

/// Defines `pub fn $name` that runs `$body` compiled with AVX2 + FMA when the CPU
/// has them and compiled for baseline x86-64 otherwise. Inside `$body`, `fma!(a, b, c)`
/// is a*b + c, fused where the CPU can ([`madd`]).
macro_rules! dispatch {
    ($(#[$doc:meta])* pub fn $name:ident<T: Real>($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        pub fn $name<T: Real>($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<T: Real, const FUSED: bool>($($arg: $ty),*) $(-> $ret)? {
                #[allow(unused_macros)]
                macro_rules! fma { ($a:expr, $b:expr, $c:expr) => { $crate::linalg::madd::<T, FUSED>($a, $b, $c) }; }
                $body
            }
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn fast<T: Real>($($arg: $ty),*) $(-> $ret)? {
                    body::<T, true>($($arg),*)
                }
                if $crate::linalg::simd() {
                    // SAFETY: simd() checked that this CPU has AVX2 and FMA
                    return unsafe { fast::<T>($($arg),*) };
                }
            }
            body::<T, false>($($arg),*)
        }
    };
}

pub(crate) use dispatch;
