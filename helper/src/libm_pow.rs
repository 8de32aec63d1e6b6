//! `pow` for glibc Linux, so that the helper does not load libm.so.6.
//!
//! Our only call into libm is `pow`, from tokio's multi-thread scheduler (the moving
//! average of task poll times behind its global-queue interval). Mapping a whole shared
//! library for that one function costs every helper process about 330 KiB of resident
//! memory (libm's code is mapped in large folios on current kernels) and the loader one
//! more library at each start. With `pow` defined in the executable, the linker's
//! `--as-needed` leaves libm.so.6 out (`tests/linked_libraries.rs` checks it). The maths
//! is the libm crate's (rust-lang's port of musl), not ours.

/// C `pow`, exported under its C name so that the static link resolves to it.
#[allow(unsafe_code)] // `no_mangle` exports a symbol; nothing else here is unsafe
#[no_mangle]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

#[cfg(test)]
mod tests {
    #[test]
    fn agrees_with_the_c_library_contract() {
        assert_eq!(super::pow(2.0, 10.0), 1024.0);
        assert_eq!(super::pow(9.0, 0.5), 3.0);
        assert_eq!(super::pow(5.0, 0.0), 1.0);
        assert!(super::pow(-1.0, 0.5).is_nan());
        // tokio's use: (1 - alpha)^n for the poll-time moving average.
        let v = super::pow(0.9, 3.5);
        assert!((v - (3.5 * 0.9f64.ln()).exp()).abs() < 1e-12, "{v}");
        // std's powf lowers to the `pow` symbol, which now resolves here.
        assert_eq!(
            std::hint::black_box(1.5f64).powf(std::hint::black_box(2.0)),
            2.25
        );
    }
}
