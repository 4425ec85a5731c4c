//! Ownership of handles and checked conversion of raw arguments
//! (`ffi-conventions.md` §2, §3.3, §5.1, §5.2), after rustls-ffi's `ffi.rs`.
//!
//! * [`Castable`] ties an opaque C type (`cardbridge_x`) to the Rust value
//!   behind it and fixes, once per type, whether C holds a `Box` (`cardbridge_x *`,
//!   mutable, one owner) or an `Arc` (`const cardbridge_x *`, immutable,
//!   shareable). The conversion helpers only compile for the right ownership.
//! * The `try_*!` macros NULL-check and convert one argument. On failure they
//!   `return` from the [`ffi_boundary!`] body with
//!   [`ErrorOrDefault::from_error`](crate::ffi::boundary::ErrorOrDefault), so
//!   a fallible export reports `NULL_PARAMETER` (with the parameter's name in
//!   `*error_out`) and a getter returns its neutral value.
//! * [`OutParam`] is a NULL-checked out-parameter that is written exactly once,
//!   at the end of a successful call (§3.3: outputs only on success).

use crate::error::{Error, ErrorKind, Result};
use crate::ffi::bytes::cardbridge_header;
use crate::http::Header;
use std::ffi::c_char;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

/// Marker: C holds a `Box<RustType>` as `cardbridge_x *`.
pub(crate) struct OwnershipBox;
/// Marker: C holds an `Arc<RustType>` as `const cardbridge_x *`.
pub(crate) struct OwnershipArc;

/// Sealed set of ownership markers.
pub(crate) trait OwnershipMarker {}
impl OwnershipMarker for OwnershipBox {}
impl OwnershipMarker for OwnershipArc {}

/// Links an opaque C handle type to the Rust value it stands for.
///
/// Implement it once next to the opaque struct:
///
/// ```ignore
/// /// A client ... (doc comment is emitted into the header)
/// pub struct cardbridge_thing {
///     _private: [u8; 0],
/// }
/// impl Castable for cardbridge_thing {
///     type Ownership = OwnershipArc; // or OwnershipBox
///     type RustType = crate::thing::Thing;
/// }
/// ```
pub(crate) trait Castable {
    /// [`OwnershipBox`] or [`OwnershipArc`].
    type Ownership: OwnershipMarker;
    /// The Rust value behind the pointer.
    type RustType;
}

/// Hands `value` to C as a `Box`; the pointer must come back through
/// [`free_box`] (or [`box_from_ptr`]) exactly once. `Send` is required because
/// C may move any object to another thread (header preamble, §5.4).
pub(crate) fn to_box_ptr<C>(value: C::RustType) -> *mut C
where
    C: Castable<Ownership = OwnershipBox>,
    C::RustType: Send,
{
    Box::into_raw(Box::new(value)).cast::<C>()
}

/// Hands `value` to C as an `Arc`; C releases its reference with [`free_arc`].
/// `Send + Sync` is required because `const` handles may be used from several
/// threads at once (§5.4).
pub(crate) fn to_arc_ptr<C>(value: C::RustType) -> *const C
where
    C: Castable<Ownership = OwnershipArc>,
    C::RustType: Send + Sync,
{
    Arc::into_raw(Arc::new(value)).cast::<C>()
}

/// Borrows the value behind a Box or Arc handle; `None` for NULL.
///
/// # Safety
/// `ptr` is NULL or came from [`to_box_ptr`]/[`to_arc_ptr`] for the same `C`
/// and has not been freed; the value is not mutated during `'a`.
pub(crate) unsafe fn ref_from_ptr<'a, C: Castable>(ptr: *const C) -> Option<&'a C::RustType> {
    // SAFETY: both Box::into_raw and Arc::into_raw point at the RustType itself.
    unsafe { ptr.cast::<C::RustType>().as_ref() }
}

/// Mutably borrows the value behind a Box handle; `None` for NULL.
///
/// # Safety
/// `ptr` is NULL or came from [`to_box_ptr`] for the same `C`, has not been
/// freed, and nothing else accesses it during `'a`.
#[allow(
    dead_code,
    reason = "used through try_mut! by mutable builder exports; covered by unit tests"
)]
pub(crate) unsafe fn mut_from_ptr<'a, C>(ptr: *mut C) -> Option<&'a mut C::RustType>
where
    C: Castable<Ownership = OwnershipBox>,
{
    // SAFETY: per the contract above.
    unsafe { ptr.cast::<C::RustType>().as_mut() }
}

/// Takes back ownership of a Box handle (consuming calls, `_free`); `None` for NULL.
///
/// # Safety
/// `ptr` is NULL or came from [`to_box_ptr`] for the same `C` and is not used
/// again by the caller.
pub(crate) unsafe fn box_from_ptr<C>(ptr: *mut C) -> Option<Box<C::RustType>>
where
    C: Castable<Ownership = OwnershipBox>,
{
    if ptr.is_null() {
        return None;
    }
    // SAFETY: per the contract above.
    Some(unsafe { Box::from_raw(ptr.cast::<C::RustType>()) })
}

/// Gets a new strong reference to the value behind an Arc handle, so it can
/// be kept beyond the call (e.g. a client that keeps its key); `None` for NULL.
/// The caller's reference stays valid.
///
/// # Safety
/// `ptr` is NULL or came from [`to_arc_ptr`] for the same `C` and has not been freed.
#[allow(
    dead_code,
    reason = "used through try_clone_arc! by exports that keep shared handles; covered by unit tests"
)]
pub(crate) unsafe fn clone_arc_from_ptr<C>(ptr: *const C) -> Option<Arc<C::RustType>>
where
    C: Castable<Ownership = OwnershipArc>,
{
    if ptr.is_null() {
        return None;
    }
    let ptr = ptr.cast::<C::RustType>();
    // SAFETY: per the contract above; the increment pays for the Arc we return.
    unsafe {
        Arc::increment_strong_count(ptr);
        Some(Arc::from_raw(ptr))
    }
}

/// Releases a Box handle; NULL is a no-op (§2.3).
///
/// # Safety
/// As for [`box_from_ptr`].
pub(crate) unsafe fn free_box<C>(ptr: *mut C)
where
    C: Castable<Ownership = OwnershipBox>,
{
    // SAFETY: forwarded contract.
    drop(unsafe { box_from_ptr(ptr) });
}

/// Releases one reference to an Arc handle; NULL is a no-op (§2.3).
///
/// # Safety
/// `ptr` is NULL or came from [`to_arc_ptr`] for the same `C`, and the caller
/// gives up this reference.
pub(crate) unsafe fn free_arc<C>(ptr: *const C)
where
    C: Castable<Ownership = OwnershipArc>,
{
    if !ptr.is_null() {
        // SAFETY: per the contract above.
        drop(unsafe { Arc::from_raw(ptr.cast::<C::RustType>()) });
    }
}

/// A non-NULL out-parameter, written at most once (by value, without reading
/// or dropping what the caller left there).
pub(crate) struct OutParam<'a, T> {
    ptr: NonNull<T>,
    _borrow: PhantomData<&'a mut T>,
}

impl<T> OutParam<'_, T> {
    /// `None` for NULL.
    ///
    /// # Safety
    /// `ptr` is NULL or valid for writing one `T` (it may be uninitialised).
    pub(crate) unsafe fn new(ptr: *mut T) -> Option<Self> {
        NonNull::new(ptr).map(|ptr| OutParam {
            ptr,
            _borrow: PhantomData,
        })
    }

    /// Stores `value`; whatever was there before is overwritten, not dropped.
    pub(crate) fn write(self, value: T) {
        // SAFETY: `new` was given a pointer valid for writes.
        unsafe { self.ptr.as_ptr().write(value) }
    }
}

impl<C> OutParam<'_, *mut C>
where
    C: Castable<Ownership = OwnershipBox>,
    C::RustType: Send,
{
    /// Stores a new Box handle owning `value`.
    pub(crate) fn write_box(self, value: C::RustType) {
        self.write(to_box_ptr(value));
    }
}

impl<C> OutParam<'_, *const C>
where
    C: Castable<Ownership = OwnershipArc>,
    C::RustType: Send + Sync,
{
    /// Stores a new Arc handle owning `value`.
    pub(crate) fn write_arc(self, value: C::RustType) {
        self.write(to_arc_ptr(value));
    }
}

/// Error for a NULL argument, naming the parameter.
pub(crate) fn null_parameter(name: &str) -> Error {
    Error::new(ErrorKind::NullParameter, format!("{name}: must not be NULL")).with_field(name)
}

/// Borrows `(ptr, len)` as bytes; `len == 0` accepts NULL (§5.1).
///
/// # Safety
/// If `len > 0`, `ptr` is NULL or valid for reading `len` bytes that stay
/// unchanged during `'a`.
pub(crate) unsafe fn bytes_arg<'a>(ptr: *const u8, len: usize, name: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(null_parameter(name));
    }
    if len > isize::MAX as usize {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            format!("{name}: length {len} exceeds isize::MAX"),
        )
        .with_field(name));
    }
    // SAFETY: non-NULL, length in range, validity per the contract above.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrows `(ptr, len)` as UTF-8 text (no NUL terminator needed); `len == 0`
/// accepts NULL; invalid UTF-8 is `INVALID_UTF8` naming the byte offset.
///
/// # Safety
/// As for [`bytes_arg`].
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, len: usize, name: &str) -> Result<&'a str> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { bytes_arg(ptr.cast::<u8>(), len, name) }?;
    std::str::from_utf8(bytes).map_err(|e| {
        Error::new(
            ErrorKind::InvalidUtf8,
            format!("{name}: invalid UTF-8 at byte {}", e.valid_up_to()),
        )
        .with_field(name)
    })
}

/// Copies an array of [`cardbridge_header`] views into owned pairs; field
/// paths in errors read `headers[2].value`.
///
/// # Safety
/// If `count > 0`, `ptr` is NULL or valid for reading `count` headers whose
/// name/value views satisfy [`bytes_arg`]'s contract.
#[allow(
    dead_code,
    reason = "for the platform exports that take HTTP headers; covered by unit tests"
)]
pub(crate) unsafe fn headers_arg(ptr: *const cardbridge_header, count: usize, name: &str) -> Result<Vec<Header>> {
    let headers: &[cardbridge_header] = if count == 0 {
        &[]
    } else if ptr.is_null() {
        return Err(null_parameter(name));
    } else if count > isize::MAX as usize / size_of::<cardbridge_header>() {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            format!("{name}: count {count} is too large"),
        )
        .with_field(name));
    } else {
        // SAFETY: non-NULL, size in range, valid for `count` items per the contract above.
        unsafe { std::slice::from_raw_parts(ptr, count) }
    };
    headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            // SAFETY: each view is valid per the contract above.
            let n = unsafe { str_arg(h.name, h.name_len, &format!("{name}[{i}].name")) }?;
            let v = unsafe { str_arg(h.value, h.value_len, &format!("{name}[{i}].value")) }?;
            Ok((n.to_string(), v.to_string()))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Argument macros. Each one is used inside an `ffi_boundary!` body and, on
// failure, `return`s `ErrorOrDefault::from_error(..)` from that body. Pointer
// arguments are named by identifier so the error can name the parameter.
// ---------------------------------------------------------------------------

/// `Option` → value, or return `NULL_PARAMETER` naming `$name`.
macro_rules! non_null {
    ($opt:expr, $name:expr) => {
        match $opt {
            Some(value) => value,
            None => {
                return $crate::ffi::boundary::ErrorOrDefault::from_error($crate::ffi::handle::null_parameter($name));
            }
        }
    };
}

/// `crate::Result` → value, or return the error.
macro_rules! try_or_return {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(error) => return $crate::ffi::boundary::ErrorOrDefault::from_error(error),
        }
    };
}

/// `&RustType` from a Box or Arc handle pointer (`const` or not).
macro_rules! try_ref {
    ($ptr:ident) => {
        // SAFETY: the export's contract says `$ptr` is NULL or a live handle of this type.
        non_null!(unsafe { $crate::ffi::handle::ref_from_ptr($ptr) }, stringify!($ptr))
    };
}

/// `&mut RustType` from a Box handle pointer (mutable builders).
macro_rules! try_mut {
    ($ptr:ident) => {
        // SAFETY: the export's contract says `$ptr` is NULL or a live, unshared handle.
        non_null!(unsafe { $crate::ffi::handle::mut_from_ptr($ptr) }, stringify!($ptr))
    };
}

/// `Box<RustType>` taken from a Box handle pointer (consuming calls). The
/// export's doc must say it consumes the handle on every path (§2.5).
#[allow(unused_macros, reason = "for consuming exports; covered by unit tests")]
macro_rules! try_box {
    ($ptr:ident) => {
        // SAFETY: the export's contract says `$ptr` is NULL or a live handle it now consumes.
        non_null!(unsafe { $crate::ffi::handle::box_from_ptr($ptr) }, stringify!($ptr))
    };
}

/// `Arc<RustType>` (a new reference) from an Arc handle pointer, for values
/// that must outlive the call, e.g. a client keeping a key.
#[allow(
    unused_macros,
    reason = "for constructors that keep shared handles; covered by unit tests"
)]
macro_rules! try_clone_arc {
    ($ptr:ident) => {
        // SAFETY: the export's contract says `$ptr` is NULL or a live handle of this type.
        non_null!(
            unsafe { $crate::ffi::handle::clone_arc_from_ptr($ptr) },
            stringify!($ptr)
        )
    };
}

/// [`OutParam`] from an out-pointer. Check every out-pointer before doing any
/// work, write them only once everything has succeeded.
macro_rules! try_out {
    ($ptr:ident) => {
        // SAFETY: the export's contract says `$ptr` is NULL or valid for writes.
        non_null!(unsafe { $crate::ffi::handle::OutParam::new($ptr) }, stringify!($ptr))
    };
}

/// `&str` from `(const char *ptr, size_t len)`: NULL allowed when `len == 0`,
/// invalid UTF-8 → `INVALID_UTF8`.
macro_rules! try_str {
    ($ptr:ident, $len:expr) => {
        // SAFETY: the export's contract says `$ptr` is valid for `$len` bytes (or NULL).
        try_or_return!(unsafe { $crate::ffi::handle::str_arg($ptr, $len, stringify!($ptr)) })
    };
}

/// `&[u8]` from `(const uint8_t *ptr, size_t len)`: NULL allowed when `len == 0`.
macro_rules! try_bytes {
    ($ptr:ident, $len:expr) => {
        // SAFETY: the export's contract says `$ptr` is valid for `$len` bytes (or NULL).
        try_or_return!(unsafe { $crate::ffi::handle::bytes_arg($ptr, $len, stringify!($ptr)) })
    };
}

/// `Vec<(String, String)>` from `(const cardbridge_header *ptr, size_t count)`.
macro_rules! try_headers {
    ($ptr:ident, $count:expr) => {
        // SAFETY: the export's contract says `$ptr` is valid for `$count` headers (or NULL).
        try_or_return!(unsafe { $crate::ffi::handle::headers_arg($ptr, $count, stringify!($ptr)) })
    };
}

/// Takes the value out of an `Option` slot of a handle, or returns
/// `ALREADY_USED` (§2.6) naming `$name`. For handles that stay allocated after
/// a consuming call (rustls-ffi `try_take!`).
#[allow(unused_macros, reason = "for handles with consuming methods; covered by unit tests")]
macro_rules! try_take {
    ($slot:expr, $name:expr) => {
        match $slot.take() {
            Some(value) => value,
            None => {
                return $crate::ffi::boundary::ErrorOrDefault::from_error(
                    $crate::error::Error::new(
                        $crate::error::ErrorKind::AlreadyUsed,
                        format!("{}: already used by an earlier consuming call", $name),
                    )
                    .with_field($name),
                );
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::boundary::ErrorOrDefault;
    use crate::ffi::error::cardbridge_result;

    struct Counter {
        hits: u32,
        taken: Option<String>,
    }
    /// A Box handle used only by these tests.
    struct test_box {
        _private: [u8; 0],
    }
    impl Castable for test_box {
        type Ownership = OwnershipBox;
        type RustType = Counter;
    }
    /// An Arc handle used only by these tests.
    struct test_arc {
        _private: [u8; 0],
    }
    impl Castable for test_arc {
        type Ownership = OwnershipArc;
        type RustType = String;
    }

    fn bump(h: *mut test_box) -> u32 {
        ffi_boundary!({
            let c = try_mut!(h);
            c.hits += 1;
            c.hits
        })
    }

    fn take(h: *mut test_box) -> crate::Result<String> {
        ffi_boundary!({
            let c = try_mut!(h);
            Ok(try_take!(c.taken, "h"))
        })
    }

    fn consume(h: *mut test_box) -> u32 {
        ffi_boundary!({ try_box!(h).hits })
    }

    fn keep(h: *const test_arc) -> crate::Result<Arc<String>> {
        ffi_boundary!({ Ok(try_clone_arc!(h)) })
    }

    fn err_kind<T: std::fmt::Debug>(r: crate::Result<T>) -> (ErrorKind, Option<String>) {
        let e = r.unwrap_err();
        (e.kind(), e.field().map(str::to_string))
    }

    #[test]
    fn box_handles_mutate_take_and_consume() {
        let h = to_box_ptr::<test_box>(Counter {
            hits: 0,
            taken: Some("x".into()),
        });
        assert_eq!(bump(h), 1);
        assert_eq!(bump(h), 2);
        assert_eq!(bump(std::ptr::null_mut()), 0, "NULL gives the default");
        assert_eq!(take(h).unwrap(), "x");
        assert_eq!(err_kind(take(h)), (ErrorKind::AlreadyUsed, Some("h".into())));
        assert_eq!(consume(h), 2);
        assert_eq!(consume(std::ptr::null_mut()), 0);
    }

    #[test]
    fn arc_handles_hand_out_independent_references() {
        let h = to_arc_ptr::<test_arc>("shared".to_string());
        let kept = keep(h).unwrap();
        // SAFETY: `h` is the handle created above, released exactly once.
        unsafe { free_arc(h) };
        assert_eq!(*kept, "shared", "the clone outlives the caller's reference");
        assert_eq!(Arc::strong_count(&kept), 1);
        assert_eq!(
            err_kind(keep(std::ptr::null())),
            (ErrorKind::NullParameter, Some("h".into()))
        );
        // SAFETY: NULL is a no-op.
        unsafe { free_arc::<test_arc>(std::ptr::null()) };
    }

    fn text(ptr: *const c_char, len: usize) -> crate::Result<String> {
        ffi_boundary!({ Ok(try_str!(ptr, len).to_string()) })
    }

    fn raw(body: *const u8, len: usize) -> crate::Result<Vec<u8>> {
        ffi_boundary!({ Ok(try_bytes!(body, len).to_vec()) })
    }

    fn headers(headers: *const cardbridge_header, n: usize) -> crate::Result<Vec<Header>> {
        ffi_boundary!({ Ok(try_headers!(headers, n)) })
    }

    #[test]
    fn slices_accept_null_only_when_empty() {
        assert_eq!(text(std::ptr::null(), 0).unwrap(), "");
        assert_eq!(raw(std::ptr::null(), 0).unwrap(), b"");
        assert_eq!(
            err_kind(text(std::ptr::null(), 3)),
            (ErrorKind::NullParameter, Some("ptr".into()))
        );
        assert_eq!(
            err_kind(raw(std::ptr::null(), 1)),
            (ErrorKind::NullParameter, Some("body".into()))
        );
        let s = "héllo";
        assert_eq!(text(s.as_ptr().cast(), s.len()).unwrap(), s);
        assert_eq!(raw(s.as_ptr(), 2).unwrap(), b"h\xc3");
        assert_eq!(err_kind(raw(s.as_ptr(), usize::MAX)).0, ErrorKind::InvalidParameter);
    }

    #[test]
    fn invalid_utf8_names_parameter_and_offset() {
        let bad = b"ok\xff";
        let e = text(bad.as_ptr().cast(), bad.len()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidUtf8);
        assert_eq!(e.message(), "ptr: invalid UTF-8 at byte 2");
    }

    fn view(name: &str, value: &[u8]) -> cardbridge_header {
        cardbridge_header {
            name: name.as_ptr().cast(),
            name_len: name.len(),
            value: value.as_ptr().cast(),
            value_len: value.len(),
        }
    }

    #[test]
    fn header_arrays_become_owned_pairs() {
        let hs = [
            view("Signature", b"a=1"),
            cardbridge_header {
                value: std::ptr::null(),
                value_len: 0,
                ..view("X", b"")
            },
        ];
        let got = headers(hs.as_ptr(), hs.len()).unwrap();
        assert_eq!(
            got,
            vec![("Signature".into(), "a=1".into()), ("X".into(), String::new())]
        );
        assert_eq!(headers(std::ptr::null(), 0).unwrap(), vec![]);
        assert_eq!(err_kind(headers(std::ptr::null(), 1)).0, ErrorKind::NullParameter);

        let bad = [view("A", b"1"), view("B", b"\xc3(")];
        let e = headers(bad.as_ptr(), 2).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidUtf8);
        assert_eq!(e.field(), Some("headers[1].value"));
        let null_name = [cardbridge_header {
            name: std::ptr::null(),
            ..view("Abc", b"")
        }];
        assert_eq!(
            err_kind(headers(null_name.as_ptr(), 1)),
            (ErrorKind::NullParameter, Some("headers[0].name".into()))
        );
    }

    #[test]
    fn out_params_are_written_only_when_asked() {
        fn produce(out: *mut u32, fail: bool) -> cardbridge_result {
            ffi_boundary!({
                let out = try_out!(out);
                if fail {
                    return cardbridge_result::from_error(Error::new(ErrorKind::Internal, "no"));
                }
                out.write(5);
                cardbridge_result::Ok
            })
        }
        let mut v = 1_u32;
        assert_eq!(produce(&mut v, true), cardbridge_result::Internal);
        assert_eq!(v, 1, "untouched on failure");
        assert_eq!(produce(&mut v, false), cardbridge_result::Ok);
        assert_eq!(v, 5);
        assert_eq!(produce(std::ptr::null_mut(), false), cardbridge_result::NullParameter);
    }
}
