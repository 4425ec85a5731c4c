//! The panic boundary every export runs inside (`ffi-conventions.md` §4).
//!
//! Rust ≥ 1.81 aborts the process when a panic unwinds out of an
//! `extern "C"` function. [`ffi_boundary!`] catches it instead and turns it
//! into `CARDBRIDGE_RESULT_PANIC` (with the panic message in `*error_out`) or
//! into a typed default (`NULL`, `0`, `false`, nothing). No panic hook is
//! installed: the host process may own it.

use crate::error::{Error, ErrorKind};
use crate::ffi::error::cardbridge_result;
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What an export returns when it stops early with `error`: a NULL argument,
/// invalid UTF-8, a caught panic.
///
/// This one trait plays the roles of rustls-ffi's `PanicOrDefault` and
/// `NullParameterOrDefault`. Fallible exports have a body of type
/// `crate::Result<()>` and keep the whole error (it ends up in `*error_out`);
/// the other exports return their result code or a neutral value, because
/// they have nowhere to put the detail.
pub(crate) trait ErrorOrDefault {
    /// The value to return for `error`.
    fn from_error(error: Error) -> Self;
}

impl<T> ErrorOrDefault for crate::Result<T> {
    fn from_error(error: Error) -> Self {
        Err(error)
    }
}

impl ErrorOrDefault for cardbridge_result {
    fn from_error(error: Error) -> Self {
        error.kind().into()
    }
}

impl ErrorOrDefault for () {
    fn from_error(_: Error) -> Self {}
}

impl ErrorOrDefault for bool {
    fn from_error(_: Error) -> Self {
        false
    }
}

impl<T> ErrorOrDefault for *const T {
    fn from_error(_: Error) -> Self {
        std::ptr::null()
    }
}

impl<T> ErrorOrDefault for *mut T {
    fn from_error(_: Error) -> Self {
        std::ptr::null_mut()
    }
}

/// Numeric getters return 0 when they cannot answer.
macro_rules! zero_on_error {
    ($($t:ty),*) => {
        $(impl ErrorOrDefault for $t {
            fn from_error(_: Error) -> Self {
                0
            }
        })*
    };
}
zero_on_error!(u16, u32, u64, usize, i64);

/// Runs `body`, turning a panic into `T::from_error(PANIC error)`.
///
/// Used through [`ffi_boundary!`]; not meant to be called directly.
pub(crate) fn catch<T: ErrorOrDefault>(body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => T::from_error(panic_error(payload)),
    }
}

/// The `cardbridge_error` content for a caught panic.
fn panic_error(payload: Box<dyn Any + Send>) -> Error {
    let detail = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic payload is not a string".to_string()
    };
    // A payload's own Drop may panic (std's catch_unwind docs); that must not
    // unwind out of the export either.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
    Error::new(ErrorKind::Panic, format!("internal panic in cardbridge: {detail}"))
}

/// Runs an export body inside `catch_unwind`.
///
/// Two forms:
///
/// * `ffi_boundary!(error_out, { ...; Ok(()) })` for fallible exports returning
///   `cardbridge_result` with a trailing `cardbridge_error **error_out`. The
///   body has type `crate::Result<()>` (so `?` works on core results); `Err`
///   and panics become the returned code and, when `error_out` is not NULL, an
///   owned `cardbridge_error` in `*error_out`.
/// * `ffi_boundary!({ ... })` for every other export; the body has the
///   export's return type, and a panic yields its [`ErrorOrDefault`] value.
///
/// The `try_*!` macros of `handle.rs` `return` from the body (not from the
/// export), with the same value a failure would produce.
macro_rules! ffi_boundary {
    ($error_out:ident, $body:block) => {{
        let result: $crate::Result<()> = $crate::ffi::boundary::catch(|| $body);
        // SAFETY: every export documents `error_out` as NULL or valid for writes.
        unsafe { $crate::ffi::error::set_error_out($error_out, result) }
    }};
    ($body:block) => {
        $crate::ffi::boundary::catch(|| $body)
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::error::{cardbridge_error, cardbridge_error_free};

    // Panics print through the default hook; that noise is expected here.

    fn fallible(error_out: *mut *mut cardbridge_error, fail: u8) -> cardbridge_result {
        ffi_boundary!(error_out, {
            match fail {
                0 => Ok(()),
                1 => Err(Error::new(ErrorKind::InvalidKey, "bad key")),
                _ => panic!("boom {fail}"),
            }
        })
    }

    fn getter(fail: bool) -> u32 {
        ffi_boundary!({
            if fail {
                std::panic::panic_any(42_u8);
            }
            7
        })
    }

    fn take_error(err: *mut cardbridge_error) -> Error {
        assert!(!err.is_null());
        // SAFETY: `err` came from set_error_out; read it, then free it once.
        let e = unsafe { (*err.cast::<Error>()).clone() };
        cardbridge_error_free(err);
        e
    }

    #[test]
    fn fallible_body_maps_ok_error_and_panic() {
        let mut err: *mut cardbridge_error = std::ptr::null_mut();
        assert_eq!(fallible(&mut err, 0), cardbridge_result::Ok);
        assert!(err.is_null(), "success must not write *error_out");

        assert_eq!(fallible(&mut err, 1), cardbridge_result::InvalidKey);
        assert_eq!(take_error(err).message(), "bad key");

        let mut err: *mut cardbridge_error = std::ptr::null_mut();
        assert_eq!(fallible(&mut err, 2), cardbridge_result::Panic);
        let e = take_error(err);
        assert_eq!(e.kind(), ErrorKind::Panic);
        assert!(e.message().contains("boom 2"), "{}", e.message());

        // A NULL error_out is allowed and only loses the detail.
        assert_eq!(fallible(std::ptr::null_mut(), 2), cardbridge_result::Panic);
    }

    #[test]
    fn infallible_body_returns_default_on_panic() {
        assert_eq!(getter(false), 7);
        assert_eq!(getter(true), 0);
    }

    #[test]
    fn non_string_payload_is_described() {
        let e = panic_error(Box::new(3_i32));
        assert!(e.message().contains("not a string"), "{}", e.message());
    }
}
