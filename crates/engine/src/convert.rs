//! Values a host hands in, converted to the engine's types. Numbers from JavaScript are `f64`s of any
//! size; a conversion that panics on what does not fit (`Duration::from_secs_f64`) would take the host
//! process down with it, so each conversion here says `None` instead and the host reports it.

use std::time::Duration;

/// `ms` milliseconds as a `Duration`; `None` for a negative, NaN, infinite or too large number (one
/// beyond `Duration::MAX`, some 584 billion years). Fractions of a millisecond are kept.
pub fn duration_from_ms(ms: f64) -> Option<Duration> {
    // Dividing cannot overflow or turn a finite number infinite; `try_from_secs_f64` refuses the rest.
    Duration::try_from_secs_f64(ms / 1000.0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refuses_what_does_not_fit() {
        for ms in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, -f64::MIN_POSITIVE, 1e23, 1e308, f64::MAX] {
            assert_eq!(duration_from_ms(ms), None, "{ms}");
        }
        assert_eq!(duration_from_ms(0.0), Some(Duration::ZERO));
        assert_eq!(duration_from_ms(-0.0), Some(Duration::ZERO));
        assert_eq!(duration_from_ms(250.0), Some(Duration::from_millis(250)));
        assert_eq!(duration_from_ms(0.5), Some(Duration::from_micros(500)));
        // JavaScript's largest exact integer, the bound the TypeScript layer checks, fits.
        assert!(duration_from_ms(9_007_199_254_740_991.0).is_some());
    }

    proptest! {
        /// Any f64 whatsoever: never a panic, and a duration exactly for the numbers that fit.
        #[test]
        fn any_number_converts_or_is_refused(bits in any::<u64>()) {
            let ms = f64::from_bits(bits);
            let fits = ms.is_finite() && ms >= 0.0 && ms / 1000.0 < Duration::MAX.as_secs_f64();
            prop_assert_eq!(duration_from_ms(ms).is_some(), fits);
        }

        /// Whole milliseconds in JavaScript's exact range come back as themselves.
        #[test]
        fn whole_milliseconds_round_trip(ms in 0u64..=(1 << 53) - 1) {
            let d = duration_from_ms(ms as f64).unwrap();
            prop_assert!(d.as_millis().abs_diff(ms as u128) <= 2, "{} ms became {:?}", ms, d);
        }
    }
}
