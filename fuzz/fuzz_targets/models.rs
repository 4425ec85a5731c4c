//! Every model entry point: Alipay+ messages in both directions (with the
//! fixed-point property) and the WeChat Pay request builders.
#![no_main]
use cardbridge::alipayplus::model;
use cardbridge::validate::Direction;
use cardbridge::wechatpay::model as wx;
use cardbridge::wechatpay::model::WireOptions;
use libfuzzer_sys::fuzz_target;

const MESSAGES: [&str; 10] = [
    "notifyCardRegistration",
    "notifyCardRegistrationResponse",
    "issueCard",
    "issueCardResponse",
    "inquireCardDetail",
    "inquireCardDetailResponse",
    "updateCardDetail",
    "updateCardDetailResponse",
    "inquireMemberAssets",
    "inquireMemberAssetsResponse",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let message = MESSAGES[usize::from(selector) % MESSAGES.len()];
    for dir in [Direction::Inbound, Direction::Outbound] {
        if let Ok(once) = model::normalize(message, body, dir) {
            let twice = model::normalize(message, &once, dir).expect("a normalised body stays valid");
            assert_eq!(once, twice, "normalisation is a fixed point");
        }
    }
    let mut encrypt = |_: &cardbridge::validate::Path, clear: &str| Ok(format!("enc:{}", clear.len()));
    let _ = wx::prepare_confirm(body, WireOptions::default(), &mut encrypt);
    let _ = wx::prepare_update_user_card(body, WireOptions::default(), &mut encrypt);
    let _ = wx::prepare_get_user_card(body);
    let _ = wx::prepare_sync_points(body);
});
