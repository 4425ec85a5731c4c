//! Alipay+ inbound handler with a validly signed body: the input is the body
//! of a notifyCardRegistration (or, by its first byte, another API), so the
//! fuzzer reaches validation, claims and the answer path. Also asserts that
//! normalisation is a fixed point.
#![no_main]
use cardbridge::alipayplus::model;
use cardbridge::validate::Direction;
use cardbridge_fuzz::*;
use libfuzzer_sys::fuzz_target;

const APIS: [(&str, &str); 4] = [
    ("/v2/pds/memberships/notifyCardRegistration", "notifyCardRegistration"),
    ("/v2/pds/memberships/inquireCardDetail", "inquireCardDetail"),
    ("/v2/pds/memberships/updateCardDetail", "updateCardDetail"),
    ("/v2/pds/memberships/inquireMemberAssets", "inquireMemberAssets"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let (target, message) = APIS[usize::from(selector) % APIS.len()];
    let ap = alipay();
    check_alipay(&ap, &signed_alipay_request(target, body), selector & 0x80 != 0);
    for dir in [Direction::Inbound, Direction::Outbound] {
        if let Ok(once) = model::normalize(message, body, dir) {
            let twice = model::normalize(message, &once, dir).expect("a normalised body stays valid");
            assert_eq!(once, twice, "normalisation is a fixed point");
        }
    }
});
