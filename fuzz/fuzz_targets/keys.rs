//! Key and certificate parsing: PEM and DER, private, public and X.509.
#![no_main]
use cardbridge::crypto::keys::{PrivateKey, PublicKey};
use cardbridge::crypto::x509::Certificate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = PrivateKey::from_pem(&text);
    let _ = PublicKey::from_pem(&text);
    let _ = PublicKey::from_spki_der(data);
    let _ = Certificate::from_pem(&text);
    let _ = Certificate::from_der(data);
});
