//! Cryptography on aws-lc-rs: key loading, RSA PKCS#1 v1.5 SHA-256 signatures,
//! AES-GCM ([`aead`]), RSA-OAEP ([`oaep`]), X.509 parsing ([`x509`]), hashing
//! and randomness. Platform modules build their protocols on these.

pub mod aead;
pub mod keys;
pub mod oaep;
pub mod rsa;
pub mod x509;

use base64::Engine as _;

/// Standard Base64 with padding (RFC 4648 §4).
pub fn b64_encode(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Strict standard Base64: padding required, no whitespace. `None` on any error.
pub fn b64_decode_strict(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text.as_bytes()).ok()
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(64);
    for b in digest.as_ref() {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    hex
}

/// Fills `buf` from the system CSPRNG.
pub fn random_bytes(buf: &mut [u8]) {
    // aws-lc's RNG only fails if the OS gives no entropy at all; nothing sane to do then.
    aws_lc_rs::rand::fill(buf).expect("system random number generator failed");
}

/// A uniformly random number in `0..bound` (bound > 0), for backoff jitter.
pub fn random_below(bound: u64) -> u64 {
    let mut b = [0u8; 8];
    random_bytes(&mut b);
    u64::from_le_bytes(b) % bound.max(1)
}

/// What is wrong with a PEM text, without repeating any of it (the PEM
/// crate's messages quote header lines and bytes of the Base64 data).
pub(crate) fn pem_problem(e: &pem::PemError) -> &'static str {
    match e {
        pem::PemError::MismatchedTags(..) => "malformed PEM (BEGIN and END labels differ)",
        pem::PemError::MalformedFraming => "malformed PEM (framing)",
        pem::PemError::MissingBeginTag => "malformed PEM (no BEGIN line)",
        pem::PemError::MissingEndTag => "malformed PEM (no END line)",
        pem::PemError::MissingData => "malformed PEM (no data)",
        pem::PemError::InvalidData(_) => "malformed PEM (the data is not valid Base64)",
        pem::PemError::InvalidHeader(_) => "malformed PEM (invalid header line)",
        pem::PemError::NotUtf8(_) => "malformed PEM (not UTF-8)",
    }
}

/// A PEM label as shown in an error: as is when it looks like a label (at
/// most 40 upper-case letters, digits and spaces), `an unexpected type` otherwise.
pub(crate) fn pem_label(label: &str) -> &str {
    if !label.is_empty()
        && label.len() <= 40
        && label
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ')
    {
        label
    } else {
        "an unexpected type"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_base64_rejects_garbage_and_missing_padding() {
        assert_eq!(b64_decode_strict("QQ=="), Some(b"A".to_vec()));
        assert_eq!(b64_decode_strict("QQ"), None);
        assert_eq!(b64_decode_strict("!!!"), None);
        assert_eq!(b64_decode_strict("Q Q=="), None);
    }

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
