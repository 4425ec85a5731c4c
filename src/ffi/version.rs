//! Version constants and `cardbridge_version()` (`ffi-conventions.md` §6.2, §7).
//!
//! The constants are literals so cbindgen emits them as `#define`s; the tests
//! tie them to `Cargo.toml`. Bump them together with the crate version.

use std::ffi::{CStr, c_char};

/// Major version of the library the header was generated from.
pub const CARDBRIDGE_VERSION_MAJOR: u32 = 0;
/// Minor version of the library the header was generated from.
pub const CARDBRIDGE_VERSION_MINOR: u32 = 1;
/// Patch version of the library the header was generated from.
pub const CARDBRIDGE_VERSION_PATCH: u32 = 0;
/// `(MAJOR << 16) | (MINOR << 8) | PATCH`, for `#if` comparisons.
pub const CARDBRIDGE_VERSION_NUMBER: u32 = 0x00_01_00;

// MINOR and PATCH get 8 bits each in the composite number.
const _: () = assert!(CARDBRIDGE_VERSION_MINOR < 256 && CARDBRIDGE_VERSION_PATCH < 256);

/// `cardbridge/<crate version>`, NUL-terminated.
const VERSION_STRING: &CStr =
    match CStr::from_bytes_with_nul(concat!("cardbridge/", env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(s) => s,
        // Evaluated at compile time: a stray NUL in the version would stop the build.
        Err(_) => panic!("crate version contains a NUL byte"),
    };

/// The library name and version, e.g. `"cardbridge/0.1.0"`. Wrappers compare
/// it with their own version when they load the library.
///
/// Borrowed: the returned string is static and NUL-terminated; never free it.
#[unsafe(no_mangle)]
pub extern "C" fn cardbridge_version() -> *const c_char {
    ffi_boundary!({ VERSION_STRING.as_ptr() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_cargo_toml() {
        assert_eq!(CARDBRIDGE_VERSION_MAJOR.to_string(), env!("CARGO_PKG_VERSION_MAJOR"));
        assert_eq!(CARDBRIDGE_VERSION_MINOR.to_string(), env!("CARGO_PKG_VERSION_MINOR"));
        assert_eq!(CARDBRIDGE_VERSION_PATCH.to_string(), env!("CARGO_PKG_VERSION_PATCH"));
    }

    #[test]
    fn composite_number_is_major_minor_patch() {
        // rustls-ffi once shifted MINOR twice and dropped PATCH; check the arithmetic itself.
        assert_eq!(
            CARDBRIDGE_VERSION_NUMBER,
            (CARDBRIDGE_VERSION_MAJOR << 16) | (CARDBRIDGE_VERSION_MINOR << 8) | CARDBRIDGE_VERSION_PATCH
        );
    }

    #[test]
    fn version_string_names_the_crate_version() {
        // SAFETY: static NUL-terminated string.
        let s = unsafe { CStr::from_ptr(cardbridge_version()) };
        assert_eq!(s.to_str().unwrap(), format!("cardbridge/{}", env!("CARGO_PKG_VERSION")));
    }
}
