//! The value parsers of the command line's numeric flags, shared by the
//! library's flag structs and the commands: each names the flag's range in its
//! message (clap adds the flag).

use std::str::FromStr;

/// An integer of at least 1.
pub fn positive_int<T: FromStr + PartialOrd + From<u8>>(s: &str) -> Result<T, String> {
    match s.parse::<T>() {
        Ok(v) if v >= T::from(1) => Ok(v),
        _ => Err(format!("must be a whole number of at least 1, got {s:?}")),
    }
}

/// A finite number greater than 0.
pub fn positive_float(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("must be a number greater than 0, got {s:?}")),
    }
}

/// A finite number of at least 0.
pub fn non_negative_float(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("must be a number of at least 0, got {s:?}")),
    }
}

/// A number in [0, 1).
pub fn unit_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "must be a number from 0 up to (not including) 1, got {s:?}"
        )),
    }
}

/// A number in (0, 1].
pub fn decay_factor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("must be a number above 0 and at most 1, got {s:?}")),
    }
}
