//! Alipay+ payload models: every documented limit just inside and just
//! outside, direction policy, exact error paths, round trips and the seed
//! samples (`alipayplus-mpp.md` §6, §7).

use cardbridge::ErrorKind;
use cardbridge::alipayplus::model::*;
use serde_json::{Value, json};

const IN: Direction = Direction::Inbound;
const OUT: Direction = Direction::Outbound;
const BOTH: [Direction; 2] = [IN, OUT];
const FORBIDDEN: &str = "must not contain '@', '#' or '?'";
const CONTROL: &str = "must not contain control characters";
const DATETIME: &str = "must be an ISO 8601 date-time with offset, e.g. 2019-11-27T00:00:00+08:00";
const KNOWN_APPS: &str = "ALIPAY_CN, ALIPAY_HK, ALIPAY_MO, TNG, GCASH, DANA, KAKAOPAY, BKASH, CHOPE, TRUEMONEY";

// Seed samples, verbatim from the official pages.
const NCR_SAMPLE: &str = r#"{
"appId": "2102010113769***",
"customerBelongsTo": "TNG",
"customerId": "1236450862137570***",
"requestId": "011164508621375700010170***",
"registrationFields": [
{
"fieldCode": "USER_NAME",
"fieldValue": "John Doe"
},
{
"fieldCode": "GENDER",
"fieldValue": "M"
},
{
"fieldCode": "BIRTH_DATE",
"fieldValue": "2002-07-25"
},
{
"fieldCode": "MOBILE_PHONE",
"fieldValue": "+658812****"
},
{
"fieldCode": "EMAIL",
"fieldValue": "email@example.com"
}
]
}"#;
const NCR_RESPONSE_SAMPLE: &str = r#"{
"result": {
"resultCode": "SUCCESS",
"resultMessage": "Success",
"resultStatus": "S"
}
}"#;
const IC_SAMPLE: &str = r#"{
    "requestId": "2019112987210000077771990****",
    "appId": "2102010113769***",
    "customerBelongsTo": "TNG",
    "customerId": "21091129***",
    "registerDate": "2022-02-17T00:00:00.00+08:00",
    "expireDate": "2023-01-26T00:00:00.00+08:00",
    "externalCardNo": "merchant_0121_000***",
    "externalCustomerId": "merchant_01***",
    "cardFields": [
        {
            "fieldCode": "POINT",
            "fieldValue": "123"
        },
        {
            "fieldCode": "BALANCE",
            "fieldValue": {
                "value": 100,
                "currency": "SGD"
            }
        },
        {
            "fieldCode": "LEVEL",
            "fieldValue": "GOLD"
        }
    ]
}"#;
const IC_RESPONSE_SAMPLE: &str = r#"{
    "cardNo": "011164508621375700010170***",
    "result": {
        "resultCode": "SUCCESS",
        "resultMessage": "Success",
        "resultStatus": "S"
    }
}"#;

// ---------------------------------------------------------------------------
// Table machinery: a valid body per API, a JSON-pointer edit, and a checker.
// ---------------------------------------------------------------------------

const NCR: &str = "notifyCardRegistration";
const NCR_R: &str = "notifyCardRegistrationResponse";
const IC: &str = "issueCard";
const IC_R: &str = "issueCardResponse";
const ICD: &str = "inquireCardDetail";
const ICD_R: &str = "inquireCardDetailResponse";
const UCD: &str = "updateCardDetail";
const UCD_R: &str = "updateCardDetailResponse";
const IMA: &str = "inquireMemberAssets";
const IMA_R: &str = "inquireMemberAssetsResponse";
const ALL_APIS: [&str; 10] = [NCR, NCR_R, IC, IC_R, ICD, ICD_R, UCD, UCD_R, IMA, IMA_R];

fn success() -> Value {
    json!({"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "Success"})
}

/// A valid body for each API.
fn base(api: &str) -> Value {
    match api {
        NCR => serde_json::from_str(NCR_SAMPLE).unwrap(),
        IC => serde_json::from_str(IC_SAMPLE).unwrap(),
        IC_R => serde_json::from_str(IC_RESPONSE_SAMPLE).unwrap(),
        ICD => json!({"cardNo": "0111645", "appId": "2102010113769"}),
        ICD_R => json!({"result": success(), "cardFields": [
            {"fieldCode": "FIRST_NAME", "fieldValue": "Ann"},
            {"fieldCode": "POINT", "fieldValue": "10"},
            {"fieldCode": "BALANCE", "fieldValue": {"value": 5, "currency": "MYR"}}
        ]}),
        UCD => json!({"cardNo": "0111645", "requestTime": "2019-06-12T14:07:05+08:00",
            "cardFields": [{"fieldCode": "FIRST_NAME", "fieldValue": "Ann"}]}),
        IMA => json!({"cardNo": "0111645", "assetTypes": ["POINT", "BALANCE"],
            "queryConditions": "{\"benefitStatus\":[\"ACTIVATED\"],\"benefitPage\":{\"pageNum\":1}}"}),
        IMA_R => json!({"result": success(), "assetDetails": [
            {"assetType": "BALANCE", "assetValue": "{\"value\":100,\"currency\":\"SGD\"}"}
        ]}),
        NCR_R | UCD_R => json!({"result": success()}),
        _ => panic!("unknown api {api}"),
    }
}

/// Parses `v` as the payload of `api` in `dir`, then checks that the typed
/// value serialises and re-validates in the same direction.
fn check(api: &str, v: &Value, dir: Direction) -> cardbridge::Result<()> {
    fn go<T: Payload>(body: &[u8], dir: Direction) -> cardbridge::Result<()> {
        let typed: T = parse(body, dir)?;
        let out = to_json(&typed, dir).expect("a parsed value serialises");
        let again: T = parse(&out, dir).expect("emitted bytes re-parse");
        assert_eq!(to_json(&again, dir).unwrap(), out, "emission is stable");
        Ok(())
    }
    let body = serde_json::to_vec(v).unwrap();
    match api {
        NCR => go::<NotifyCardRegistrationRequest>(&body, dir),
        NCR_R => go::<NotifyCardRegistrationResponse>(&body, dir),
        IC => go::<IssueCardRequest>(&body, dir),
        IC_R => go::<IssueCardResponse>(&body, dir),
        ICD => go::<InquireCardDetailRequest>(&body, dir),
        ICD_R => go::<InquireCardDetailResponse>(&body, dir),
        UCD => go::<UpdateCardDetailRequest>(&body, dir),
        UCD_R => go::<UpdateCardDetailResponse>(&body, dir),
        IMA => go::<InquireMemberAssetsRequest>(&body, dir),
        IMA_R => go::<InquireMemberAssetsResponse>(&body, dir),
        _ => panic!("unknown api {api}"),
    }
}

/// `v` with the member at JSON pointer `ptr` set (or removed for `None`).
fn edit(mut v: Value, ptr: &str, new: Option<Value>) -> Value {
    let (parent, last) = ptr.rsplit_once('/').unwrap();
    match v.pointer_mut(parent).unwrap_or_else(|| panic!("no parent at {ptr}")) {
        Value::Object(m) => {
            match new {
                Some(x) => m.insert(last.to_owned(), x),
                None => m.shift_remove(last),
            };
        }
        Value::Array(a) => {
            let i: usize = last.parse().unwrap();
            match new {
                Some(x) if i == a.len() => a.push(x),
                Some(x) => a[i] = x,
                None => drop(a.remove(i)),
            }
        }
        _ => panic!("parent of {ptr} is not a container"),
    }
    v
}

/// `ptr` as a field path: `/cardFields/3/fieldCode` → `api.cardFields[3].fieldCode`.
fn field_path(api: &str, ptr: &str) -> String {
    let mut out = api.to_owned();
    for seg in ptr.split('/').skip(1) {
        if seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            out.push('.');
            out.push_str(seg);
        }
    }
    out
}

/// Expects success.
fn ok(api: &str, dir: Direction, ptr: &str, val: Value) {
    let v = edit(base(api), ptr, Some(val));
    if let Err(e) = check(api, &v, dir) {
        panic!("{api} {dir:?} {ptr}: expected ok, got {e:?}");
    }
}

/// Expects a validation error at the field `ptr` names, with `rule` and `limit`.
fn bad(api: &str, dir: Direction, ptr: &str, val: Option<Value>, rule: &str, limit: Option<&str>) {
    bad_at(api, dir, ptr, val, &field_path(api, ptr), rule, limit);
}

fn bad_at(api: &str, dir: Direction, ptr: &str, val: Option<Value>, field: &str, rule: &str, limit: Option<&str>) {
    let v = edit(base(api), ptr, val);
    let e = check(api, &v, dir).expect_err(&format!("{api} {dir:?} {ptr}: expected an error"));
    assert_eq!(e.kind(), ErrorKind::Validation, "{e:?}");
    assert_eq!(e.message(), format!("{field}: {rule}"), "{api} {dir:?} {ptr}");
    assert_eq!(e.field(), Some(field));
    assert_eq!(e.limit(), limit, "{api} {dir:?} {ptr}");
}

fn s(c: &str, n: usize) -> Value {
    Value::String(c.repeat(n))
}

fn field(code: &str, value: Value) -> Value {
    json!({"fieldCode": code, "fieldValue": value})
}

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

/// Every ID-like field and extendInfo: (api, member, max).
const ID_FIELDS: &[(&str, &str, usize)] = &[
    (NCR, "appId", 32),
    (NCR, "requestId", 64),
    (NCR, "customerId", 64),
    (NCR, "extendInfo", 2048),
    (NCR_R, "extendInfo", 2048),
    (IC, "appId", 32),
    (IC, "requestId", 64),
    (IC, "customerId", 64),
    (IC, "externalCustomerId", 64),
    (IC, "externalCardNo", 64),
    (IC, "extendInfo", 2048),
    (IC_R, "cardNo", 64),
    (IC_R, "extendInfo", 2048),
    (ICD, "cardNo", 64),
    (ICD, "appId", 32),
    (ICD, "extendInfo", 2048),
    (ICD_R, "extendInfo", 2048),
    (UCD, "cardNo", 64),
    (UCD, "extendInfo", 2048),
    (UCD_R, "extendInfo", 2048),
    (IMA, "cardNo", 64),
    (IMA, "extendInfo", 2048),
    (IMA_R, "extendInfo", 2048),
];

#[test]
fn id_fields_length_limits_in_characters() {
    for &(api, key, max) in ID_FIELDS {
        let ptr = format!("/{key}");
        let rule = format!("must be at most {max} characters");
        let limit = max.to_string();
        for dir in BOTH {
            // ASCII, 2-byte, 3-byte and 4-byte characters all count as one.
            for c in ["a", "é", "中", "🎉"] {
                ok(api, dir, &ptr, s(c, max));
                bad(api, dir, &ptr, Some(s(c, max + 1)), &rule, Some(&limit));
            }
        }
    }
}

#[test]
fn id_fields_character_rule_is_outbound_only() {
    for &(api, key, _) in ID_FIELDS {
        let ptr = format!("/{key}");
        for (c, rule) in [
            ("@", FORBIDDEN),
            ("#", FORBIDDEN),
            ("?", FORBIDDEN),
            ("\n", CONTROL),
            ("\u{7f}", CONTROL),
        ] {
            let val = json!(format!("ab{c}cd"));
            bad(api, OUT, &ptr, Some(val.clone()), rule, None);
            // inbound: accepted and kept verbatim
            ok(api, IN, &ptr, val);
        }
    }
}

#[test]
fn array_limits() {
    let personal = field("GENDER", json!("M"));
    let card = field("LEVEL", json!("GOLD"));
    let asset = json!({"assetType": "POINT", "assetValue": "{}"});
    let cases: [(&str, &str, Value, usize); 6] = [
        (NCR, "registrationFields", personal.clone(), 10),
        (IC, "cardFields", card.clone(), 10),
        (ICD_R, "cardFields", card, 10),
        (UCD, "cardFields", personal, 10),
        (IMA, "assetTypes", json!("POINT"), 3),
        (IMA_R, "assetDetails", asset, 3),
    ];
    for (api, key, item, max) in cases {
        let ptr = format!("/{key}");
        for dir in BOTH {
            ok(api, dir, &ptr, Value::Array(vec![item.clone(); max]));
            bad(
                api,
                dir,
                &ptr,
                Some(Value::Array(vec![item.clone(); max + 1])),
                &format!("must have at most {max} elements"),
                Some(&max.to_string()),
            );
        }
    }
}

#[test]
fn card_field_value_limits_per_code() {
    // (api, array member, code, max): per-code limits apply in every variant.
    let cases = [
        (NCR, "registrationFields", "FIRST_NAME", 20),
        (NCR, "registrationFields", "LAST_NAME", 20),
        (NCR, "registrationFields", "USER_NAME", 20),
        (NCR, "registrationFields", "EMAIL", 256),
        (NCR, "registrationFields", "PASSWORD", 256),
        (NCR, "registrationFields", "GENDER", 256),
        (UCD, "cardFields", "FIRST_NAME", 20),
        (UCD, "cardFields", "LAST_NAME", 20),
        (UCD, "cardFields", "USER_NAME", 20),
        (UCD, "cardFields", "MOBILE_PHONE", 256),
        (IC, "cardFields", "LEVEL", 256),
        (IC, "cardFields", "POINT", 256),
        (IC, "cardFields", "FIRST_NAME", 20),
        (ICD_R, "cardFields", "USER_NAME", 20),
        (ICD_R, "cardFields", "EMAIL", 256),
    ];
    for (api, key, code, max) in cases {
        let ptr = format!("/{key}/0");
        let at = format!("{api}.{key}[0].fieldValue");
        let rule = format!("must be at most {max} characters");
        for dir in BOTH {
            for c in ["x", "é", "中"] {
                ok(api, dir, &ptr, field(code, s(c, max)));
                bad_at(
                    api,
                    dir,
                    &ptr,
                    Some(field(code, s(c, max + 1))),
                    &at,
                    &rule,
                    Some(&max.to_string()),
                );
            }
        }
    }
}

#[test]
fn card_field_codes_and_value_types() {
    // Unknown variant (a) codes and salutations are accepted in both directions.
    for dir in BOTH {
        ok(NCR, dir, "/registrationFields/0", field("NICKNAME", s("x", 256)));
        ok(
            NCR,
            dir,
            "/registrationFields/0",
            field("USER_SALUTATION", json!("DR.")),
        );
        ok(UCD, dir, "/cardFields/0", field("USER_SALUTATION", json!("MRS.")));
    }
    // Lower-case / odd codes: kept inbound, rejected outbound with the pattern.
    let pattern = "^[A-Z][A-Z0-9_]{0,63}$";
    for code in ["level", "1ST", "A-B", "x@y"] {
        ok(IC, IN, "/cardFields/3", field(code, json!("v")));
        bad_at(
            IC,
            OUT,
            "/cardFields/3",
            Some(field(code, json!("v"))),
            "issueCard.cardFields[3].fieldCode",
            &format!("must match {pattern}"),
            Some(pattern),
        );
        ok(NCR, IN, "/registrationFields/0", field(code, json!("v")));
        bad_at(
            NCR,
            OUT,
            "/registrationFields/0",
            Some(field(code, json!("v"))),
            "notifyCardRegistration.registrationFields[0].fieldCode",
            &format!("must match {pattern}"),
            Some(pattern),
        );
    }
    for dir in BOTH {
        ok(IC, dir, "/cardFields/2/fieldCode", s("A", 64));
        bad(
            IC,
            dir,
            "/cardFields/2/fieldCode",
            Some(s("A", 65)),
            "must be at most 64 characters",
            Some("64"),
        );
        bad(
            IC,
            dir,
            "/cardFields/0/fieldCode",
            Some(json!("")),
            "must not be empty",
            Some("1"),
        );
        bad(IC, dir, "/cardFields/0/fieldCode", None, "is required", None);
        bad(IC, dir, "/cardFields/0/fieldValue", None, "is required", None);
        bad(
            IC,
            dir,
            "/cardFields/0/fieldCode",
            Some(json!(7)),
            "must be a string",
            None,
        );
        // Variant (b): numbers become strings; other types are refused.
        ok(IC, dir, "/cardFields/0/fieldValue", json!(123));
        bad(
            IC,
            dir,
            "/cardFields/0/fieldValue",
            Some(json!(true)),
            "must be a string",
            None,
        );
        bad(
            IC,
            dir,
            "/cardFields/0/fieldValue",
            Some(json!({"value": 1, "currency": "SGD"})),
            "must be a string",
            None,
        );
        // Variant (a): strings only.
        bad(
            NCR,
            dir,
            "/registrationFields/0/fieldValue",
            Some(json!(123)),
            "must be a string",
            None,
        );
        bad(
            UCD,
            dir,
            "/cardFields/0/fieldValue",
            Some(json!({"a": 1})),
            "must be a string",
            None,
        );
        // BALANCE needs an Amount (object or Amount JSON text).
        ok(
            IC,
            dir,
            "/cardFields/1/fieldValue",
            json!("{\"value\":5,\"currency\":\"SGD\"}"),
        );
        for v in [json!("5"), json!("GOLD"), json!(5), json!([1]), json!("[1]")] {
            bad(
                IC,
                dir,
                "/cardFields/1/fieldValue",
                Some(v),
                "must be an Amount object",
                None,
            );
        }
        bad_at(
            IC,
            dir,
            "/cardFields/1/fieldValue",
            Some(json!("{\"value\":5,\"currency\":\"sgd\"}")),
            "issueCard.cardFields[1].fieldValue.currency",
            "must be 3 uppercase letters (ISO 4217)",
            Some("3"),
        );
        bad(IC, dir, "/cardFields/1", Some(json!("x")), "must be an object", None);
        bad(IC, dir, "/cardFields", Some(json!({})), "must be an array", None);
        bad(IC, dir, "/cardFields", None, "is required", None);
        ok(ICD_R, dir, "/cardFields", json!([]));
    }
}

#[test]
fn amount_rules() {
    let value = "/cardFields/1/fieldValue/value";
    let range = "must be between 0 and 2147483647";
    let not_int = "must be an integer or a string of digits";
    for dir in BOTH {
        for v in [
            json!(0),
            json!(2_147_483_647u32),
            json!("100"),
            json!("2147483647"),
            json!("0"),
        ] {
            ok(IC, dir, value, v);
        }
        bad(IC, dir, value, Some(json!(2_147_483_648u32)), range, Some("2147483647"));
        bad(IC, dir, value, Some(json!("2147483648")), range, Some("2147483647"));
        bad(IC, dir, value, Some(json!(-1)), range, Some("0"));
        for v in [
            json!(1.5),
            json!(100.0),
            json!("-1"),
            json!("1.5"),
            json!("1e3"),
            json!(""),
            json!(null),
            json!(true),
        ] {
            let want = if v.is_null() { "is required" } else { not_int };
            bad(IC, dir, value, Some(v), want, None);
        }
        let currency = "/cardFields/1/fieldValue/currency";
        ok(IC, dir, currency, json!("SGD"));
        for v in ["sg", "SGDX", "sgd", "SG", "", "S1D", "ÉUR"] {
            bad(
                IC,
                dir,
                currency,
                Some(json!(v)),
                "must be 3 uppercase letters (ISO 4217)",
                Some("3"),
            );
        }
        bad(IC, dir, currency, None, "is required", None);
    }
    // Exponent notation in the raw text: refused (it parses as a float).
    let text = IC_SAMPLE.replace("\"value\": 100", "\"value\": 1e3");
    assert_ne!(text, IC_SAMPLE);
    let e = parse::<IssueCardRequest>(text.as_bytes(), IN).unwrap_err();
    assert_eq!(
        e.message(),
        format!("issueCard.cardFields[1].fieldValue.value: {not_int}")
    );
    // A numeric string is emitted as a number.
    let v = edit(base(IC), value, Some(json!("100")));
    let req: IssueCardRequest = parse(&serde_json::to_vec(&v).unwrap(), OUT).unwrap();
    let out: Value = serde_json::from_slice(&to_json(&req, OUT).unwrap()).unwrap();
    assert_eq!(
        out["cardFields"][1]["fieldValue"],
        json!({"value": 100, "currency": "SGD"})
    );
}

#[test]
fn customer_belongs_to_policy() {
    for api in [NCR, IC] {
        for known in CustomerBelongsTo::KNOWN {
            for dir in BOTH {
                ok(api, dir, "/customerBelongsTo", json!(known));
            }
        }
        ok(api, IN, "/customerBelongsTo", json!("NEW_WALLET"));
        let rule = format!("must be one of {KNOWN_APPS}");
        bad(
            api,
            OUT,
            "/customerBelongsTo",
            Some(json!("NEW_WALLET")),
            &rule,
            Some(KNOWN_APPS),
        );
        bad(
            api,
            OUT,
            "/customerBelongsTo",
            Some(json!("tng")),
            &rule,
            Some(KNOWN_APPS),
        );
        for dir in BOTH {
            bad(
                api,
                dir,
                "/customerBelongsTo",
                Some(json!("")),
                "must not be empty",
                Some("1"),
            );
            bad(api, dir, "/customerBelongsTo", Some(json!(1)), "must be a string", None);
        }
    }
    let v = edit(base(NCR), "/customerBelongsTo", Some(json!("NEW_WALLET")));
    let req: NotifyCardRegistrationRequest = parse(&serde_json::to_vec(&v).unwrap(), IN).unwrap();
    assert_eq!(req.customer_belongs_to, CustomerBelongsTo::Other("NEW_WALLET".into()));
    assert!(!req.customer_belongs_to.is_known());
    // Kept verbatim when re-emitted inbound-style, refused when sent.
    assert!(
        String::from_utf8(to_json(&req, IN).unwrap())
            .unwrap()
            .contains("\"customerBelongsTo\":\"NEW_WALLET\"")
    );
    assert_eq!(
        to_json(&req, OUT).unwrap_err().field(),
        Some("notifyCardRegistration.customerBelongsTo")
    );
    assert_eq!(CustomerBelongsTo::from("GCASH"), CustomerBelongsTo::Gcash);
    assert_eq!(CustomerBelongsTo::Kakaopay.as_str(), "KAKAOPAY");
}

#[test]
fn datetime_fields() {
    let valid = [
        "2019-11-27T00:00:00+08:00",
        "2022-02-17T00:00:00.00+08:00",
        "2019-06-12T14:07:05Z",
        "2019-06-12T14:07:05.123456789-05:30",
    ];
    let invalid = [
        "2019-11-27",
        "2019-11-27T00:00:00",
        "2019-11-27T00:00:00+0800",
        "2019-11-27 00:00:00+08:00",
        "2019-02-30T00:00:00+08:00",
        "2019-11-27T24:00:00+08:00",
        "2019-11-27T00:00:00.+08:00",
        "1574784000000",
        "27/11/2019",
        "",
    ];
    for (api, ptr) in [(IC, "/registerDate"), (IC, "/expireDate"), (UCD, "/requestTime")] {
        for dir in BOTH {
            for v in valid {
                ok(api, dir, ptr, json!(v));
            }
            for v in invalid {
                bad(api, dir, ptr, Some(json!(v)), DATETIME, None);
            }
            bad(api, dir, ptr, Some(json!(20191127)), "must be a string", None);
        }
    }
    for dir in BOTH {
        bad(IC, dir, "/registerDate", None, "is required", None);
        bad(UCD, dir, "/requestTime", None, "is required", None);
        ok(IC, dir, "/expireDate", Value::Null);
    }
}

#[test]
fn required_members_and_types() {
    let required: [(&str, &[&str]); 8] = [
        (
            NCR,
            &[
                "appId",
                "customerBelongsTo",
                "requestId",
                "customerId",
                "registrationFields",
            ],
        ),
        (
            IC,
            &[
                "appId",
                "customerBelongsTo",
                "requestId",
                "customerId",
                "externalCustomerId",
                "registerDate",
                "cardFields",
            ],
        ),
        (IC_R, &["result"]),
        (ICD, &["appId"]),
        (UCD, &["cardNo", "requestTime", "cardFields"]),
        (IMA, &["cardNo", "assetTypes"]),
        (IMA_R, &["result", "assetDetails"]),
        (NCR_R, &["result"]),
    ];
    for (api, keys) in required {
        for key in keys {
            let ptr = format!("/{key}");
            for dir in BOTH {
                bad(api, dir, &ptr, None, "is required", None);
                bad(api, dir, &ptr, Some(Value::Null), "is required", None);
            }
        }
    }
    for dir in BOTH {
        bad(IC, dir, "/appId", Some(json!(5)), "must be a string", None);
        bad(IC, dir, "/requestId", Some(json!("")), "must not be empty", Some("1"));
        bad(IC, dir, "/extendInfo", Some(json!({"a": 1})), "must be a string", None);
        bad(IC_R, dir, "/result", Some(json!("S")), "must be an object", None);
        // Optional members may be null (treated as absent, never re-emitted).
        ok(IC, dir, "/externalCardNo", Value::Null);
        ok(IC, dir, "/extendInfo", Value::Null);
    }
}

#[test]
fn inquire_card_detail_needs_card_no_or_login_identity() {
    let rule = "is required when loginIdentity is absent";
    for dir in BOTH {
        bad(ICD, dir, "/cardNo", None, rule, None);
        bad(ICD, dir, "/cardNo", Some(json!("")), rule, None);
        // loginIdentity is carried raw, whatever its shape.
        for identity in [
            json!({"loginIdType": "MOBILE", "loginId": "+6012"}),
            json!("opaque"),
            json!([1, {"a": null}]),
        ] {
            let v = edit(
                edit(base(ICD), "/cardNo", None),
                "/loginIdentity",
                Some(identity.clone()),
            );
            check(ICD, &v, dir).unwrap();
            let req: InquireCardDetailRequest = parse(&serde_json::to_vec(&v).unwrap(), dir).unwrap();
            assert_eq!(req.login_identity, Some(identity));
            assert_eq!(req.card_no, None);
        }
    }
}

#[test]
fn inquire_member_assets_rules() {
    for dir in BOTH {
        for t in ["BENEFIT", "POINT", "BALANCE"] {
            ok(IMA, dir, "/assetTypes/0", json!(t));
        }
        bad(
            IMA,
            dir,
            "/assetTypes/0",
            Some(json!("CASH")),
            "must be one of BENEFIT, POINT, BALANCE",
            Some("BENEFIT, POINT, BALANCE"),
        );
        bad(IMA, dir, "/assetTypes/0", Some(json!(1)), "must be a string", None);
        bad(IMA, dir, "/assetTypes", Some(json!("POINT")), "must be an array", None);

        // queryConditions: JSON text of an object, counted arrays, unknown keys kept.
        let q = "/queryConditions";
        let qc = |v: Value| json!(v.to_string());
        ok(
            IMA,
            dir,
            q,
            qc(json!({"benefitStatus": ["A", "B", "C"], "useThresholdByOrderItems": vec![json!({}); 120], "x": 1})),
        );
        ok(IMA, dir, q, qc(json!({"useThresholdByOrderType": "PICKUP"})));
        bad_at(
            IMA,
            dir,
            q,
            Some(qc(json!({"benefitStatus": ["A", "B", "C", "D"]}))),
            "inquireMemberAssets.queryConditions.benefitStatus",
            "must have at most 3 elements",
            Some("3"),
        );
        bad_at(
            IMA,
            dir,
            q,
            Some(qc(json!({"useThresholdByOrderItems": vec![json!({}); 121]}))),
            "inquireMemberAssets.queryConditions.useThresholdByOrderItems",
            "must have at most 120 elements",
            Some("120"),
        );
        bad_at(
            IMA,
            dir,
            q,
            Some(qc(json!({"benefitStatus": [1]}))),
            "inquireMemberAssets.queryConditions.benefitStatus[0]",
            "must be a string",
            None,
        );
        for text in ["not json", "[1]", "\"s\"", ""] {
            bad(IMA, dir, q, Some(json!(text)), "must be JSON text of an object", None);
        }
        bad(
            IMA,
            dir,
            q,
            Some(json!({"benefitStatus": []})),
            "must be a string",
            None,
        );

        // assetDetails: BALANCE is an Amount (text or object), others any JSON.
        let d = "/assetDetails/0";
        ok(
            IMA_R,
            dir,
            d,
            json!({"assetType": "BALANCE", "assetValue": {"value": 1, "currency": "SGD"}}),
        );
        ok(
            IMA_R,
            dir,
            d,
            json!({"assetType": "POINT", "assetValue": "{\"points\":5}"}),
        );
        ok(
            IMA_R,
            dir,
            d,
            json!({"assetType": "BENEFIT", "assetValue": [{"id": "b1"}]}),
        );
        bad(
            IMA_R,
            dir,
            "/assetDetails/0/assetValue",
            Some(json!("nope")),
            "must be an Amount object",
            None,
        );
        bad_at(
            IMA_R,
            dir,
            "/assetDetails/0/assetValue",
            Some(json!("{\"value\":-1,\"currency\":\"SGD\"}")),
            "inquireMemberAssetsResponse.assetDetails[0].assetValue.value",
            "must be between 0 and 2147483647",
            Some("0"),
        );
        bad(
            IMA_R,
            dir,
            "/assetDetails/0/assetType",
            Some(json!("CASH")),
            "must be one of BENEFIT, POINT, BALANCE",
            Some("BENEFIT, POINT, BALANCE"),
        );
        bad_at(
            IMA_R,
            dir,
            d,
            Some(json!({"assetType": "POINT", "assetValue": "{oops"})),
            "inquireMemberAssetsResponse.assetDetails[0].assetValue",
            "must be JSON text",
            None,
        );
    }
    // The order type list is closed outbound only.
    let v = json!(json!({"useThresholdByOrderType": "DRIVE_THRU"}).to_string());
    ok(IMA, IN, "/queryConditions", v.clone());
    bad_at(
        IMA,
        OUT,
        "/queryConditions",
        Some(v),
        "inquireMemberAssets.queryConditions.useThresholdByOrderType",
        "must be one of PICKUP, DINEIN, DELIVERY",
        Some("PICKUP, DINEIN, DELIVERY"),
    );
}

#[test]
fn asset_value_is_emitted_as_json_text() {
    let v = edit(
        base(IMA_R),
        "/assetDetails/0/assetValue",
        Some(json!({"value": 1, "currency": "SGD"})),
    );
    let resp: InquireMemberAssetsResponse = parse(&serde_json::to_vec(&v).unwrap(), OUT).unwrap();
    assert_eq!(resp.asset_details[0].asset_value, r#"{"value":1,"currency":"SGD"}"#);
    let out: Value = serde_json::from_slice(&to_json(&resp, OUT).unwrap()).unwrap();
    assert_eq!(
        out["assetDetails"][0]["assetValue"],
        json!(r#"{"value":1,"currency":"SGD"}"#)
    );

    let built = InquireMemberAssetsResponse::new(
        ResultInfo::success(),
        vec![AssetDetail::new(
            AssetType::Balance,
            &json!({"value": 7, "currency": "MYR"}),
        )],
    );
    assert_eq!(
        String::from_utf8(to_json(&built, OUT).unwrap()).unwrap(),
        r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"Success"},"assetDetails":[{"assetType":"BALANCE","assetValue":"{\"value\":7,\"currency\":\"MYR\"}"}]}"#
    );
}

#[test]
fn result_rules() {
    let responses = [NCR_R, IC_R, ICD_R, UCD_R, IMA_R];
    for api in responses {
        ok(api, OUT, "/result/resultCode", s("C", 64));
        bad(
            api,
            OUT,
            "/result/resultCode",
            Some(s("C", 65)),
            "must be at most 64 characters",
            Some("64"),
        );
        ok(api, OUT, "/result/resultMessage", s("m", 256));
        bad(
            api,
            OUT,
            "/result/resultMessage",
            Some(s("m", 257)),
            "must be at most 256 characters",
            Some("256"),
        );
        bad(
            api,
            OUT,
            "/result/resultStatus",
            Some(json!("A")),
            "must be one of S, F, U",
            Some("S, F, U"),
        );
        bad(api, OUT, "/result/resultMessage", None, "is required", None);
        for st in ["S", "F", "U"] {
            ok(api, OUT, "/result/resultStatus", json!(st));
        }
        // The platform's answer is surfaced as given.
        ok(api, IN, "/result/resultStatus", json!("A"));
        ok(api, IN, "/result/resultMessage", s("m", 300));
        ok(api, IN, "/result/resultMessage", Value::Null);
        for dir in BOTH {
            bad(api, dir, "/result/resultStatus", None, "is required", None);
            bad(api, dir, "/result/resultCode", None, "is required", None);
            bad(api, dir, "/result/resultCode", Some(json!(1)), "must be a string", None);
        }
    }
    let r = ResultInfo::success();
    assert_eq!(
        (
            r.result_status.as_str(),
            r.result_code.as_str(),
            r.result_message.as_str()
        ),
        ("S", "SUCCESS", "Success")
    );
    let r = ResultInfo::new("F", "PARAM_ILLEGAL", "x".repeat(300));
    assert_eq!(
        (r.result_status.as_str(), r.result_code.as_str(), r.result_message.len()),
        ("F", "PARAM_ILLEGAL", 256)
    );
}

// ---------------------------------------------------------------------------
// Round trips, samples, entry points
// ---------------------------------------------------------------------------

#[test]
fn seed_samples_parse() {
    let ncr: NotifyCardRegistrationRequest = parse(NCR_SAMPLE.as_bytes(), IN).unwrap();
    assert_eq!(ncr.app_id, "2102010113769***");
    assert_eq!(ncr.customer_belongs_to, CustomerBelongsTo::Tng);
    assert_eq!(ncr.registration_fields.len(), 5);
    assert_eq!(
        ncr.registration_fields[4].field_value,
        FieldValue::Text("email@example.com".into())
    );
    // The sample IDs contain '*', which is allowed; it is also valid outbound.
    parse::<NotifyCardRegistrationRequest>(NCR_SAMPLE.as_bytes(), OUT).unwrap();
    let ncr_resp: NotifyCardRegistrationResponse = parse(NCR_RESPONSE_SAMPLE.as_bytes(), IN).unwrap();
    assert_eq!(ncr_resp, NotifyCardRegistrationResponse::new(ResultInfo::success()));

    let ic: IssueCardRequest = parse(IC_SAMPLE.as_bytes(), OUT).unwrap();
    assert_eq!(ic.register_date, "2022-02-17T00:00:00.00+08:00");
    assert_eq!(ic.card_fields[0], CardField::text("POINT", "123"));
    assert_eq!(ic.card_fields[1], CardField::balance(Amount::new(100, "SGD")));
    assert_eq!(ic.card_fields[2], CardField::text("LEVEL", "GOLD"));
    let out = String::from_utf8(to_json(&ic, OUT).unwrap()).unwrap();
    assert_eq!(
        out,
        r#"{"appId":"2102010113769***","customerBelongsTo":"TNG","requestId":"2019112987210000077771990****","customerId":"21091129***","externalCustomerId":"merchant_01***","externalCardNo":"merchant_0121_000***","registerDate":"2022-02-17T00:00:00.00+08:00","expireDate":"2023-01-26T00:00:00.00+08:00","cardFields":[{"fieldCode":"POINT","fieldValue":"123"},{"fieldCode":"BALANCE","fieldValue":{"value":100,"currency":"SGD"}},{"fieldCode":"LEVEL","fieldValue":"GOLD"}]}"#
    );

    let ic_resp: IssueCardResponse = parse(IC_RESPONSE_SAMPLE.as_bytes(), IN).unwrap();
    assert_eq!(ic_resp.card_no.as_deref(), Some("011164508621375700010170***"));
    assert_eq!(ic_resp.result, ResultInfo::success());
    // cardNo is optional at parse level (an F answer has none).
    let f: IssueCardResponse = parse(br#"{"result":{"resultCode":"PROCESS_FAIL","resultStatus":"F"}}"#, IN).unwrap();
    assert_eq!((f.card_no, f.result.result_message.as_str()), (None, ""));
}

#[test]
fn unknown_members_survive_a_round_trip() {
    let mut v = base(IC);
    v["zTop"] = json!({"nested": [1, null, "x"]});
    v["cardFields"][0]["unit"] = json!("pts");
    v["cardFields"][1]["fieldValue"]["precision"] = json!(2);
    let mut resp = base(IC_R);
    resp["result"]["traceId"] = json!("t-1");
    resp["newFlag"] = json!(true);
    for (api, v) in [(IC, v), (IC_R, resp)] {
        for dir in BOTH {
            let body = serde_json::to_vec(&v).unwrap();
            let out: Value = match api {
                IC => serde_json::from_slice(&to_json(&parse::<IssueCardRequest>(&body, dir).unwrap(), dir).unwrap()),
                _ => serde_json::from_slice(&to_json(&parse::<IssueCardResponse>(&body, dir).unwrap(), dir).unwrap()),
            }
            .unwrap();
            assert_eq!(out, v, "{api} {dir:?}");
        }
    }
    // Order of extra members inside a card field is kept.
    let text = r#"{"cardNo":"c","requestTime":"2019-06-12T14:07:05+08:00","cardFields":[{"z":1,"fieldCode":"GENDER","a":2,"fieldValue":"F","m":3}]}"#;
    let req: UpdateCardDetailRequest = parse(text.as_bytes(), IN).unwrap();
    assert_eq!(
        String::from_utf8(to_json(&req, IN).unwrap()).unwrap(),
        r#"{"cardNo":"c","requestTime":"2019-06-12T14:07:05+08:00","cardFields":[{"fieldCode":"GENDER","fieldValue":"F","z":1,"a":2,"m":3}]}"#
    );
}

#[test]
fn card_field_values_are_normalised() {
    // Numbers become strings (variant (b)); BALANCE text becomes the object.
    let v = edit(
        edit(base(IC), "/cardFields/0/fieldValue", Some(json!(123))),
        "/cardFields/1/fieldValue",
        Some(json!("{\"value\":\"250\",\"currency\":\"SGD\"}")),
    );
    let req: IssueCardRequest = parse(&serde_json::to_vec(&v).unwrap(), OUT).unwrap();
    assert_eq!(req.card_fields[0].field_value, FieldValue::Text("123".into()));
    assert_eq!(
        req.card_fields[1].field_value,
        FieldValue::Amount(Amount::new(250, "SGD"))
    );

    // A hand-built BALANCE given as text is emitted as an object.
    let mut built = req.clone();
    built.card_fields[1].field_value = FieldValue::Text(r#"{"value":9,"currency":"SGD"}"#.into());
    let out: Value = serde_json::from_slice(&to_json(&built, OUT).unwrap()).unwrap();
    assert_eq!(
        out["cardFields"][1]["fieldValue"],
        json!({"value": 9, "currency": "SGD"})
    );
    assert_eq!(out["cardFields"][0]["fieldValue"], json!("123"));
}

#[test]
fn hand_built_values_are_validated_before_sending() {
    let reg: NotifyCardRegistrationRequest = parse(NCR_SAMPLE.as_bytes(), IN).unwrap();
    let req = IssueCardRequest::from_registration(
        &reg,
        "merchant_01".into(),
        "2019-11-27T00:00:00+08:00".into(),
        vec![
            CardField::text("POINT", "0"),
            CardField::balance(Amount::new(100, "SGD")),
        ],
    );
    assert_eq!(
        (req.app_id.as_str(), req.request_id.as_str(), req.customer_id.as_str()),
        (reg.app_id.as_str(), reg.request_id.as_str(), reg.customer_id.as_str())
    );
    assert_eq!(req.customer_belongs_to, reg.customer_belongs_to);
    assert_eq!(
        (&req.external_card_no, &req.expire_date, &req.extend_info),
        (&None, &None, &None)
    );
    let out = String::from_utf8(to_json(&req, OUT).unwrap()).unwrap();
    assert!(!out.contains("null"), "{out}");

    type Mutation = fn(&mut IssueCardRequest);
    let cases: Vec<(Mutation, &str, &str)> = vec![
        (|r| r.request_id = "a?b".into(), "issueCard.requestId", FORBIDDEN),
        (
            |r| r.external_card_no = Some("x".repeat(65)),
            "issueCard.externalCardNo",
            "must be at most 64 characters",
        ),
        (
            |r| r.register_date = "2019-11-27".into(),
            "issueCard.registerDate",
            DATETIME,
        ),
        (
            |r| r.customer_belongs_to = CustomerBelongsTo::Other("X".into()),
            "issueCard.customerBelongsTo",
            "must be one of ALIPAY_CN, ALIPAY_HK, ALIPAY_MO, TNG, GCASH, DANA, KAKAOPAY, BKASH, CHOPE, TRUEMONEY",
        ),
        (
            |r| r.card_fields[1] = CardField::balance(Amount::new(2_147_483_648, "SGD")),
            "issueCard.cardFields[1].fieldValue.value",
            "must be between 0 and 2147483647",
        ),
        (
            |r| r.card_fields[1] = CardField::balance(Amount::new(1, "sgd")),
            "issueCard.cardFields[1].fieldValue.currency",
            "must be 3 uppercase letters (ISO 4217)",
        ),
        (
            |r| r.card_fields = vec![CardField::text("LEVEL", "G"); 11],
            "issueCard.cardFields",
            "must have at most 10 elements",
        ),
        (
            |r| r.card_fields.push(CardField::text("level", "G")),
            "issueCard.cardFields[2].fieldCode",
            "must match ^[A-Z][A-Z0-9_]{0,63}$",
        ),
    ];
    for (mutate, field, rule) in cases {
        let mut r = req.clone();
        mutate(&mut r);
        let e = to_json(&r, OUT).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation);
        assert_eq!(e.message(), format!("{field}: {rule}"));
    }

    // Responses we emit: no nulls, fixed member order.
    assert_eq!(
        String::from_utf8(to_json(&IssueCardResponse::new(ResultInfo::success()), OUT).unwrap()).unwrap(),
        r#"{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"Success"}}"#
    );
    assert_eq!(
        to_json(&UpdateCardDetailResponse::new(ResultInfo::new("A", "X", "y")), OUT)
            .unwrap_err()
            .message(),
        "updateCardDetailResponse.result.resultStatus: must be one of S, F, U"
    );
    let mut card = InquireCardDetailResponse::new(ResultInfo::success());
    assert_eq!(
        to_json(&card, OUT).unwrap(),
        to_json(&UpdateCardDetailResponse::new(ResultInfo::success()), OUT).unwrap()
    );
    card.card_fields = Some(vec![CardField::text("FIRST_NAME", "x".repeat(21))]);
    assert_eq!(
        to_json(&card, OUT).unwrap_err().message(),
        "inquireCardDetailResponse.cardFields[0].fieldValue: must be at most 20 characters"
    );
}

#[test]
fn debug_redacts_personal_values() {
    let ncr: NotifyCardRegistrationRequest = parse(NCR_SAMPLE.as_bytes(), IN).unwrap();
    let mut fields = ncr.registration_fields.clone();
    fields.push(CardField::text("PASSWORD", "s3cret-pw"));
    let text = format!("{fields:?}");
    for secret in [
        "John Doe",
        "\"M\"",
        "2002-07-25",
        "+658812****",
        "email@example.com",
        "s3cret-pw",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    // Every value is hidden, whatever its code; the codes stay visible.
    assert_eq!(text.matches("<redacted>").count(), 6);
    assert!(text.contains("USER_NAME") && text.contains("PASSWORD"), "{text}");
    let whole = format!("{ncr:?}");
    for secret in ["John Doe", "email@example.com", "1236450862137570"] {
        assert!(!whole.contains(secret), "{secret} leaked: {whole}");
    }
    assert!(
        whole.contains("011164508621375700010170"),
        "the requestId identifies the call: {whole}"
    );
}

#[test]
fn body_errors() {
    for api in ALL_APIS {
        for (body, want) in [
            (&b"{"[..], "body is not valid JSON"),
            (b"", "body is not valid JSON"),
            (b"\xff\xfe", "body is not valid JSON"),
            (b"{\"a\":1} x", "body is not valid JSON"),
            (b"[]", "body must be a JSON object"),
            (b"\"x\"", "body must be a JSON object"),
            (b"null", "body must be a JSON object"),
        ] {
            let e = match api {
                NCR => parse::<NotifyCardRegistrationRequest>(body, IN).map(drop),
                NCR_R => parse::<NotifyCardRegistrationResponse>(body, IN).map(drop),
                IC => parse::<IssueCardRequest>(body, IN).map(drop),
                IC_R => parse::<IssueCardResponse>(body, IN).map(drop),
                ICD => parse::<InquireCardDetailRequest>(body, IN).map(drop),
                ICD_R => parse::<InquireCardDetailResponse>(body, IN).map(drop),
                UCD => parse::<UpdateCardDetailRequest>(body, IN).map(drop),
                UCD_R => parse::<UpdateCardDetailResponse>(body, IN).map(drop),
                IMA => parse::<InquireMemberAssetsRequest>(body, IN).map(drop),
                _ => parse::<InquireMemberAssetsResponse>(body, IN).map(drop),
            }
            .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidJson, "{api}");
            assert!(e.message().starts_with(&format!("{api}: {want}")), "{}", e.message());
        }
    }
    // Deep nesting is refused by the parser, not by a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(
        parse::<IssueCardRequest>(deep.as_bytes(), IN).unwrap_err().kind(),
        ErrorKind::InvalidJson
    );
}

#[test]
fn all_bases_are_valid_both_ways() {
    for api in ALL_APIS {
        for dir in BOTH {
            check(api, &base(api), dir).unwrap_or_else(|e| panic!("{api} {dir:?}: {e:?}"));
        }
    }
}

#[test]
fn build_takes_every_optional_member_and_validates_it_when_built() {
    let reg: NotifyCardRegistrationRequest = parse(NCR_SAMPLE.as_bytes(), IN).unwrap();
    let build = |options: &IssueCardOptions| {
        IssueCardRequest::build(
            &reg,
            "merchant_01",
            "2019-11-27T00:00:00+08:00",
            vec![CardField::text("POINT", "0")],
            options,
        )
    };
    let req = build(&IssueCardOptions {
        external_card_no: Some("C".repeat(64)),
        expire_date: Some("2029-11-27T00:00:00+08:00".into()),
        extend_info: Some("e".repeat(2048)),
    })
    .unwrap();
    assert_eq!(req.external_card_no.as_deref(), Some("C".repeat(64).as_str()));
    assert_eq!(req.expire_date.as_deref(), Some("2029-11-27T00:00:00+08:00"));
    assert_eq!(req.extend_info.as_ref().map(String::len), Some(2048));
    assert_eq!(req.request_id, reg.request_id);
    let none = build(&IssueCardOptions::default()).unwrap();
    assert_eq!(
        (none.external_card_no, none.expire_date, none.extend_info),
        (None, None, None)
    );

    // Just outside each limit: refused now, naming the field path and limit.
    let cases = [
        (
            IssueCardOptions {
                external_card_no: Some("C".repeat(65)),
                ..Default::default()
            },
            "issueCard.externalCardNo",
            Some("64"),
        ),
        (
            IssueCardOptions {
                extend_info: Some("e".repeat(2049)),
                ..Default::default()
            },
            "issueCard.extendInfo",
            Some("2048"),
        ),
        (
            IssueCardOptions {
                expire_date: Some("2029-11-27".into()),
                ..Default::default()
            },
            "issueCard.expireDate",
            None,
        ),
        (
            IssueCardOptions {
                external_card_no: Some("C#1".into()),
                ..Default::default()
            },
            "issueCard.externalCardNo",
            None,
        ),
    ];
    for (options, field, limit) in cases {
        let e = build(&options).unwrap_err();
        assert_eq!(
            (e.kind(), e.field()),
            (ErrorKind::Validation, Some(field)),
            "{}",
            e.message()
        );
        if limit.is_some() {
            assert_eq!(e.limit(), limit, "{field}");
        }
        assert!(
            !e.message().contains("eeee") && !e.message().contains("CCCC"),
            "{}",
            e.message()
        );
    }

    // The raw form (C ABI, bindings): only the optional members; null is absent.
    let raw = |options: Value| {
        let Value::Object(o) = options else { unreachable!() };
        IssueCardRequest::build_from_json(&reg, "m", "2019-11-27T00:00:00+08:00", json!([]), o)
    };
    assert_eq!(raw(json!({"extendInfo": null})).unwrap().extend_info, None);
    let e = raw(json!({"cardNo": "1"})).unwrap_err();
    assert_eq!((e.kind(), e.field()), (ErrorKind::Validation, Some("issueCard.cardNo")));
    let e = raw(json!({"expireDate": 5})).unwrap_err();
    assert_eq!(e.field(), Some("issueCard.expireDate"));
}
