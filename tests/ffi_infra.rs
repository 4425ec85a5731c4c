//! Calls the C exports from Rust through raw pointers, the way C, ctypes and
//! P/Invoke do: NULL handling, the error object, owned byte buffers, result
//! names, the version, key handles and the response handle.

use cardbridge::ErrorKind;
use cardbridge::ffi::bytes::*;
use cardbridge::ffi::error::*;
use cardbridge::ffi::keys::*;
use cardbridge::ffi::version::*;
use cardbridge::http::HttpResponse;
use std::ffi::{CStr, c_char};
use std::ptr;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn c_str(p: *const c_char) -> String {
    assert!(!p.is_null());
    // SAFETY: the library returns NUL-terminated static strings.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string()
}

/// Reads a text accessor with the size-query-then-copy protocol.
fn text(
    accessor: extern "C" fn(*const cardbridge_error, *mut c_char, usize, *mut usize) -> cardbridge_result,
    err: *const cardbridge_error,
) -> String {
    let mut n = 0;
    assert_eq!(
        accessor(err, ptr::null_mut(), 0, &mut n),
        cardbridge_result::InsufficientSize
    );
    let mut buf = vec![0x7f as c_char; n];
    let mut written = 0;
    assert_eq!(accessor(err, buf.as_mut_ptr(), n, &mut written), cardbridge_result::Ok);
    assert_eq!(written + 1, n);
    assert_eq!(buf[written], 0, "NUL-terminated");
    String::from_utf8(buf[..written].iter().map(|&c| c as u8).collect()).unwrap()
}

/// Takes an error out-pointer: asserts it was set, reads code, message and
/// field, and frees it.
fn take_error(err: *mut cardbridge_error) -> (cardbridge_result, String, String) {
    assert!(!err.is_null(), "error_out was not filled");
    let detail = (
        cardbridge_error_code(err),
        text(cardbridge_error_message, err),
        text(cardbridge_error_field, err),
    );
    cardbridge_error_free(err);
    detail
}

fn load_private(pem: &str) -> (cardbridge_result, *const cardbridge_private_key, *mut cardbridge_error) {
    let mut key: *const cardbridge_private_key = ptr::null();
    let mut err: *mut cardbridge_error = ptr::null_mut();
    let rc = cardbridge_private_key_from_pem(pem.as_ptr().cast(), pem.len(), &mut key, &mut err);
    (rc, key, err)
}

#[test]
fn version_string_and_constants_match_the_crate() {
    assert_eq!(
        c_str(cardbridge_version()),
        format!("cardbridge/{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(CARDBRIDGE_VERSION_MINOR.to_string(), env!("CARGO_PKG_VERSION_MINOR"));
    assert_eq!(CARDBRIDGE_VERSION_NUMBER >> 16, CARDBRIDGE_VERSION_MAJOR);
}

#[test]
fn result_names_follow_the_codes() {
    assert_eq!(c_str(cardbridge_result_name(0)), "CARDBRIDGE_RESULT_OK");
    assert_eq!(c_str(cardbridge_result_name(200)), "CARDBRIDGE_RESULT_VALIDATION");
    assert_eq!(c_str(cardbridge_result_name(501)), "CARDBRIDGE_RESULT_REMOTE_UNKNOWN");
    for kind in ErrorKind::ALL {
        assert_eq!(
            c_str(cardbridge_result_name(kind.code())),
            format!("CARDBRIDGE_RESULT_{}", kind.name())
        );
    }
    for unknown in [8, 250, 9999, u32::MAX] {
        assert_eq!(
            c_str(cardbridge_result_name(unknown)),
            "CARDBRIDGE_RESULT_INVALID_PARAMETER",
            "{unknown}"
        );
    }
    // Static: the same pointer every time, nothing to free.
    assert_eq!(cardbridge_result_name(4), cardbridge_result_name(4));
}

#[test]
fn null_parameters_are_reported_by_name_and_outputs_stay_untouched() {
    let sentinel = ptr::dangling::<cardbridge_private_key>();
    let mut key = sentinel;
    let mut err: *mut cardbridge_error = ptr::null_mut();
    let rc = cardbridge_private_key_from_pem(ptr::null(), 10, &mut key, &mut err);
    assert_eq!(rc, cardbridge_result::NullParameter);
    assert_eq!(key, sentinel, "no output on failure");
    let (code, message, field) = take_error(err);
    assert_eq!(code, cardbridge_result::NullParameter);
    assert_eq!(field, "pem");
    assert!(message.contains("pem") && message.contains("NULL"), "{message}");

    let pem = fixture("spec_alipay_private.pem");
    let mut err: *mut cardbridge_error = ptr::null_mut();
    let rc = cardbridge_private_key_from_pem(pem.as_ptr().cast(), pem.len(), ptr::null_mut(), &mut err);
    assert_eq!(rc, cardbridge_result::NullParameter);
    assert_eq!(take_error(err).2, "key_out");

    // error_out may be NULL: the code alone is returned.
    assert_eq!(
        cardbridge_public_key_from_pem(ptr::null(), 1, ptr::null_mut(), ptr::null_mut()),
        cardbridge_result::NullParameter
    );
    let mut out = cardbridge_bytes {
        data: ptr::null_mut(),
        len: 0,
    };
    assert_eq!(
        cardbridge_private_key_public_key_pem(ptr::null(), &mut out, ptr::null_mut()),
        cardbridge_result::NullParameter
    );
    assert!(out.data.is_null());

    // Getters without an error channel return their neutral value.
    assert_eq!(cardbridge_error_code(ptr::null()), cardbridge_result::NullParameter);
    assert_eq!(cardbridge_error_http_status(ptr::null()), 0);
    assert_eq!(cardbridge_http_response_status(ptr::null()), 0);
    assert_eq!(cardbridge_http_response_header_count(ptr::null()), 0);
    let mut n = 0;
    assert_eq!(
        cardbridge_error_message(ptr::null(), ptr::null_mut(), 0, &mut n),
        cardbridge_result::NullParameter
    );

    // Every _free accepts NULL.
    cardbridge_error_free(ptr::null_mut());
    cardbridge_private_key_free(ptr::null());
    cardbridge_public_key_free(ptr::null());
    cardbridge_http_response_free(ptr::null_mut());
    cardbridge_bytes_free(ptr::null_mut());
}

#[test]
fn empty_and_non_utf8_text_inputs() {
    // len 0 accepts NULL and reaches the key parser, which explains the problem.
    let mut key: *const cardbridge_private_key = ptr::null();
    let mut err: *mut cardbridge_error = ptr::null_mut();
    assert_eq!(
        cardbridge_private_key_from_pem(ptr::null(), 0, &mut key, &mut err),
        cardbridge_result::InvalidKey
    );
    let (_, message, _) = take_error(err);
    assert!(message.contains("empty"), "{message}");

    let bad = b"-----BEGIN \xff";
    let mut err: *mut cardbridge_error = ptr::null_mut();
    let rc = cardbridge_public_key_from_pem(bad.as_ptr().cast(), bad.len(), &mut ptr::null(), &mut err);
    assert_eq!(rc, cardbridge_result::InvalidUtf8);
    let (code, message, field) = take_error(err);
    assert_eq!((code, field.as_str()), (cardbridge_result::InvalidUtf8, "pem"));
    assert!(message.contains("byte 11"), "{message}");
}

#[test]
fn key_load_errors_carry_a_message() {
    let (rc, key, err) = load_private(&fixture("spec_alipay_public.pem"));
    assert_eq!(rc, cardbridge_result::InvalidKey);
    assert!(key.is_null());
    let (code, message, field) = take_error(err);
    assert_eq!(code, cardbridge_result::InvalidKey);
    assert!(message.contains("expected PEM type PRIVATE KEY"), "{message}");
    assert_eq!(field, "", "no field for a key error");

    let (rc, _, err) = load_private(&fixture("rsa1024_private.pem"));
    assert_eq!(rc, cardbridge_result::InvalidKey);
    let (_, message, _) = take_error(err);
    assert!(message.contains("at least 2048"), "{message}");
    assert!(!message.contains("MII"), "no key material in messages");
}

#[test]
fn keys_load_and_export_the_public_half() {
    let (rc, key, err) = load_private(&fixture("spec_alipay_private.pem"));
    assert_eq!(rc, cardbridge_result::Ok);
    assert!(err.is_null(), "error_out untouched on success");
    assert!(!key.is_null());

    let mut pem = cardbridge_bytes {
        data: ptr::null_mut(),
        len: 0,
    };
    let mut err: *mut cardbridge_error = ptr::null_mut();
    assert_eq!(
        cardbridge_private_key_public_key_pem(key, &mut pem, &mut err),
        cardbridge_result::Ok
    );
    assert!(err.is_null());
    // SAFETY: the library filled `pem` with `len` bytes plus a NUL.
    let (bytes, nul) = unsafe { (std::slice::from_raw_parts(pem.data, pem.len), *pem.data.add(pem.len)) };
    assert_eq!(nul, 0, "text outputs carry a trailing NUL");
    let exported = std::str::from_utf8(bytes).unwrap().to_string();
    let expected = cardbridge::crypto::keys::PublicKey::from_pem(&fixture("spec_alipay_public.pem")).unwrap();
    assert_eq!(exported, expected.to_pem());

    // The exported PEM loads back as a public key.
    let mut public: *const cardbridge_public_key = ptr::null();
    let rc = cardbridge_public_key_from_pem(pem.data.cast(), pem.len, &mut public, ptr::null_mut());
    assert_eq!(rc, cardbridge_result::Ok);
    assert!(!public.is_null());

    cardbridge_bytes_free(&mut pem);
    cardbridge_public_key_free(public);
    cardbridge_private_key_free(key);
}

#[test]
fn const_key_handles_are_shared_between_threads() {
    let (rc, key, _) = load_private(&fixture("spec_alipay_private.pem"));
    assert_eq!(rc, cardbridge_result::Ok);
    // Raw pointers are not Send; pass the address, as a C host would.
    let addr = key as usize;
    let pems: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(move || {
                    let key = addr as *const cardbridge_private_key;
                    let mut out = cardbridge_bytes {
                        data: ptr::null_mut(),
                        len: 0,
                    };
                    assert_eq!(
                        cardbridge_private_key_public_key_pem(key, &mut out, ptr::null_mut()),
                        cardbridge_result::Ok
                    );
                    // SAFETY: filled by the library just above.
                    let text = unsafe { std::slice::from_raw_parts(out.data, out.len) }.to_vec();
                    cardbridge_bytes_free(&mut out);
                    String::from_utf8(text).unwrap()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(pems.windows(2).all(|w| w[0] == w[1]));
    cardbridge_private_key_free(key);
}

#[test]
fn bytes_free_is_idempotent() {
    let (_, key, _) = load_private(&fixture("spec_alipay_private.pem"));
    let mut out = cardbridge_bytes {
        data: ptr::null_mut(),
        len: 0,
    };
    assert_eq!(
        cardbridge_private_key_public_key_pem(key, &mut out, ptr::null_mut()),
        cardbridge_result::Ok
    );
    assert!(!out.data.is_null() && out.len > 0);
    cardbridge_bytes_free(&mut out);
    assert!(out.data.is_null());
    assert_eq!(out.len, 0);
    cardbridge_bytes_free(&mut out); // second free: no-op
    let mut zeroed = cardbridge_bytes {
        data: ptr::null_mut(),
        len: 0,
    };
    cardbridge_bytes_free(&mut zeroed);
    assert!(zeroed.data.is_null());
    cardbridge_private_key_free(key);
}

#[test]
fn error_message_buffer_protocol() {
    let (_, _, err) = load_private("not a key!");
    assert!(!err.is_null());
    let full = text(cardbridge_error_message, err);
    assert!(full.contains("neither PEM nor Base64"), "{full}");

    // One byte short (no room for the NUL): INSUFFICIENT_SIZE, size incl. NUL, and
    // the text truncated by one byte, NUL-terminated (rustls-ffi convention).
    let mut buf = vec![b'#' as c_char; full.len()];
    let mut n = 0;
    let rc = cardbridge_error_message(err, buf.as_mut_ptr(), buf.len(), &mut n);
    assert_eq!(rc, cardbridge_result::InsufficientSize);
    assert_eq!(n, full.len() + 1);
    assert_eq!(c_str(buf.as_ptr()), full[..full.len() - 1]);

    // A small fixed buffer (`char text[16]`) gets a readable prefix.
    let mut small = [b'#' as c_char; 16];
    let rc = cardbridge_error_message(err, small.as_mut_ptr(), small.len(), &mut n);
    assert_eq!(rc, cardbridge_result::InsufficientSize);
    assert_eq!(n, full.len() + 1, "the full length is reported");
    assert_eq!(c_str(small.as_ptr()), full[..15]);

    // Larger than needed: text + NUL, out_n = text length.
    let mut buf = vec![b'#' as c_char; full.len() + 10];
    assert_eq!(
        cardbridge_error_message(err, buf.as_mut_ptr(), buf.len(), &mut n),
        cardbridge_result::Ok
    );
    assert_eq!(n, full.len());
    assert_eq!(c_str(buf.as_ptr()), full);

    // NULL buffer with a non-zero length, or NULL out_n.
    assert_eq!(
        cardbridge_error_message(err, ptr::null_mut(), 8, &mut n),
        cardbridge_result::NullParameter
    );
    assert_eq!(
        cardbridge_error_message(err, buf.as_mut_ptr(), buf.len(), ptr::null_mut()),
        cardbridge_result::NullParameter
    );

    // Absent detail reads as empty text (still needs room for the NUL).
    assert_eq!(text(cardbridge_error_limit, err), "");
    assert_eq!(text(cardbridge_error_remote_code, err), "");
    assert_eq!(text(cardbridge_error_remote_status, err), "");
    cardbridge_error_free(err);
}

#[test]
fn http_response_handle_exposes_status_headers_and_body() {
    let resp = cardbridge_http_response::into_raw(HttpResponse {
        status: 202,
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("Signature".into(), String::new()),
        ],
        body: b"{\"ok\":true}".to_vec(),
    });
    assert_eq!(cardbridge_http_response_status(resp), 202);
    assert_eq!(cardbridge_http_response_header_count(resp), 2);

    let mut h = cardbridge_header {
        name: ptr::null(),
        name_len: 0,
        value: ptr::null(),
        value_len: 0,
    };
    assert_eq!(
        cardbridge_http_response_header(resp, 0, &mut h, ptr::null_mut()),
        cardbridge_result::Ok
    );
    // SAFETY: views borrowed from `resp`, which is still alive.
    let (name, value) = unsafe {
        (
            std::slice::from_raw_parts(h.name.cast::<u8>(), h.name_len),
            std::slice::from_raw_parts(h.value.cast::<u8>(), h.value_len),
        )
    };
    assert_eq!((name, value), (&b"Content-Type"[..], &b"application/json"[..]));
    assert_eq!(
        cardbridge_http_response_header(resp, 1, &mut h, ptr::null_mut()),
        cardbridge_result::Ok
    );
    assert_eq!(h.value_len, 0);

    let before = h.name;
    let mut err: *mut cardbridge_error = ptr::null_mut();
    assert_eq!(
        cardbridge_http_response_header(resp, 2, &mut h, &mut err),
        cardbridge_result::InvalidParameter
    );
    assert_eq!(h.name, before, "no output on failure");
    let (code, message, field) = take_error(err);
    assert_eq!((code, field.as_str()), (cardbridge_result::InvalidParameter, "index"));
    assert!(message.contains("2 headers"), "{message}");

    let mut body: *const u8 = ptr::null();
    let mut len = 0;
    assert_eq!(
        cardbridge_http_response_body(resp, &mut body, &mut len, ptr::null_mut()),
        cardbridge_result::Ok
    );
    // SAFETY: borrowed from `resp`.
    assert_eq!(unsafe { std::slice::from_raw_parts(body, len) }, b"{\"ok\":true}");
    let mut err: *mut cardbridge_error = ptr::null_mut();
    assert_eq!(
        cardbridge_http_response_body(resp, ptr::null_mut(), &mut len, &mut err),
        cardbridge_result::NullParameter
    );
    assert_eq!(take_error(err).2, "body_out");

    cardbridge_http_response_free(resp);
}

#[cfg(feature = "ffi-test")]
#[test]
fn panics_become_a_result_code_with_the_message() {
    let mut err: *mut cardbridge_error = ptr::null_mut();
    assert_eq!(
        cardbridge::ffi::cardbridge_test_panic(&mut err),
        cardbridge_result::Panic
    );
    let (code, message, _) = take_error(err);
    assert_eq!(code, cardbridge_result::Panic);
    assert!(message.contains("cardbridge_test_panic was called"), "{message}");
    // Without an error channel the code still comes back, and the process lives on.
    assert_eq!(
        cardbridge::ffi::cardbridge_test_panic(ptr::null_mut()),
        cardbridge_result::Panic
    );
}
