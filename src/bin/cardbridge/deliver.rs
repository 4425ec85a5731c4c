//! Platform → merchant calls, made the way the platform makes them: a signed
//! Alipay+ `notifyCardRegistration` (or another inbound API) or a signed
//! WeChat Pay card-event callback, optionally spoiled, sent to the merchant's
//! endpoint; the merchant's answer is checked (signature, format, outcome)
//! and judged against what a correct merchant answers. Used by
//! `cardbridge notify` and by the emulator's control API.

use std::time::Duration;

use crate::emulator::{
    CallbackTamper, PlatformDriver, SAMPLE_BRAND_ID, Tamper as DriverTamper, WechatPayHandler, sample_event,
    sample_registration,
};
use cardbridge::alipayplus::{model, signature, time};
use cardbridge::error::{Error, ErrorKind, Result};
use cardbridge::http::{Header, HttpRequest, HttpResponse, Transport, TransportConfig, check_url, find_header};
use cardbridge::validate::Direction;
use clap::ValueEnum;
use serde_json::{Value, json};

use crate::platform::PlatformConfig;

/// How a call is spoiled (`--tamper`, the control API's `"tamper"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Tamper {
    /// A correct call: the merchant must accept it.
    None,
    /// The body is changed after signing: the signature does not verify.
    BadSignature,
    /// Signed correctly, but 10 minutes old (WeChat Pay: outside the 300 s
    /// window; Alipay+: only refused by merchants that check clock skew).
    Stale,
    /// The same call twice: both accepted, Alipay+ with the same answer body.
    Duplicate,
    /// WeChat Pay: a `WECHATPAY/SIGNTEST/` probe signature; Alipay+: no
    /// `Signature` header at all.
    Probe,
    /// Alipay+: signed with a freshly generated key.
    WrongKey,
    /// Alipay+: a `Signature` header without its `signature=` key.
    MalformedHeader,
    /// Alipay+: signed for, and carrying, another `Client-Id`.
    WrongClientId,
    /// WeChat Pay: the resource's AEAD tag is broken (the signature verifies).
    BadTag,
    /// WeChat Pay: `Wechatpay-Serial` names a key the merchant does not have.
    WrongSerial,
    /// WeChat Pay: no `Wechatpay-Signature` header.
    MissingHeader,
}

impl Tamper {
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }

    /// From the control API's text (the `--tamper` names).
    pub fn parse(text: &str) -> Result<Tamper> {
        <Tamper as ValueEnum>::from_str(text, false).map_err(|_| {
            let names: Vec<String> = Tamper::value_variants().iter().map(|t| t.name()).collect();
            Error::new(
                ErrorKind::InvalidParameter,
                format!("tamper: must be one of {}", names.join(", ")),
            )
            .with_field("tamper")
        })
    }

    fn not_for(self, platform: &str) -> Error {
        Error::new(
            ErrorKind::InvalidParameter,
            format!("tamper: {} does not apply to {platform}", self.name()),
        )
        .with_field("tamper")
    }
}

/// What a correct merchant answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Accept,
    Refuse,
    Either,
    AcceptTwiceSame,
    AcceptTwice,
}

impl Expect {
    fn text(self, platform: Platform) -> &'static str {
        match (self, platform) {
            (Expect::Accept, Platform::Alipay) => "accepted: a signed, well-formed S answer",
            (Expect::Accept, Platform::Wechat) => "accepted: HTTP 200 or 204",
            (Expect::Refuse, Platform::Alipay) => "refused: a signed, well-formed F answer",
            (Expect::Refuse, Platform::Wechat) => "refused: HTTP 4XX or 5XX with {\"code\",\"message\"}",
            (Expect::Either, _) => {
                "a signed, well-formed answer; refusing is optional (the clock-skew check is off by default)"
            }
            (Expect::AcceptTwiceSame, _) => "accepted twice, the second answer body byte-identical to the first",
            (Expect::AcceptTwice, _) => "accepted twice (the duplicate acknowledged)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Platform {
    Alipay,
    Wechat,
}

/// One answer, checked.
#[derive(Debug)]
pub struct Answer {
    status: u16,
    /// `None` where the platform does not sign (WeChat Pay callback answers).
    signature_valid: Option<bool>,
    format_valid: bool,
    /// Alipay+ `resultStatus`, `resultCode`, `resultMessage`; WeChat Pay `code`, `message`.
    outcome: Value,
    accepted: bool,
    refused: bool,
    body: Vec<u8>,
    problems: Vec<String>,
}

impl Answer {
    fn json(&self) -> Value {
        json!({"status": self.status, "signature_valid": self.signature_valid, "format_valid": self.format_valid,
               "accepted": self.accepted, "outcome": self.outcome, "body_bytes": self.body.len(),
               "problems": self.problems})
    }

    fn line(&self) -> String {
        let sig = match self.signature_valid {
            Some(true) => "signature valid",
            Some(false) => "signature INVALID",
            None => "not signed (WeChat Pay does not sign callback answers)",
        };
        let format = if self.format_valid {
            "format valid"
        } else {
            "format INVALID"
        };
        let parts: Vec<&str> = match &self.outcome {
            Value::Object(o) => o.values().filter_map(Value::as_str).filter(|s| !s.is_empty()).collect(),
            _ => Vec::new(),
        };
        let outcome = if parts.is_empty() {
            String::new()
        } else {
            format!(", {}", parts.join(" "))
        };
        let mut t = format!("HTTP {}, {sig}, {format}{outcome}", self.status);
        for p in &self.problems {
            t.push_str(&format!("\n    - {p}"));
        }
        t
    }
}

/// What happened to one delivery, and the verdict.
#[derive(Debug)]
pub struct Report {
    platform: Platform,
    what: String,
    url: String,
    tamper: Tamper,
    expect: Expect,
    request: Value,
    answers: Vec<Answer>,
    /// The merchant could not be reached, or did not answer.
    pub no_answer: Option<String>,
    pub pass: bool,
    reasons: Vec<String>,
}

impl Report {
    /// The report without the request body (what `notify` prints: the body
    /// may be the operator's own data).
    pub fn json_without_body(&self) -> Value {
        let mut doc = self.json();
        if let Some(http) = doc.pointer_mut("/request/http").and_then(Value::as_object_mut) {
            let n = http.get("body").and_then(Value::as_str).map_or(0, str::len);
            http.remove("body");
            http.insert("body_bytes".into(), json!(n));
        }
        doc
    }

    pub fn json(&self) -> Value {
        json!({
            "platform": match self.platform { Platform::Alipay => "alipayplus", Platform::Wechat => "wechatpay" },
            "call": self.what, "url": self.url, "tamper": self.tamper.name(), "request": self.request,
            "expected": self.expect.text(self.platform),
            "answers": self.answers.iter().map(Answer::json).collect::<Vec<_>>(),
            "no_answer": self.no_answer, "pass": self.pass,
            "verdict": if self.pass { "PASS" } else if self.no_answer.is_some() { "NO ANSWER" } else { "FAIL" },
            "reasons": self.reasons,
        })
    }

    pub fn text(&self) -> String {
        let verdict = if self.pass {
            "PASS"
        } else if self.no_answer.is_some() {
            "NO ANSWER"
        } else {
            "FAIL"
        };
        let mut t = format!(
            "{verdict}: {} to {} (tamper: {})\n  expected: {}",
            self.what,
            self.url,
            self.tamper.name(),
            self.expect.text(self.platform)
        );
        for (i, a) in self.answers.iter().enumerate() {
            t.push_str(&format!("\n  answer {}: {}", i + 1, a.line()));
        }
        if let Some(e) = &self.no_answer {
            t.push_str(&format!("\n  no answer: {e}"));
        }
        for r in &self.reasons {
            t.push_str(&format!("\n  {r}"));
        }
        t
    }

    /// The first answer, for the control API.
    pub fn first_answer(&self) -> Option<&[u8]> {
        self.answers.first().map(|a| a.body.as_slice())
    }
}

fn transport(timeout: Duration) -> Result<Transport> {
    Transport::new(&TransportConfig {
        connect_timeout: timeout,
        read_timeout: timeout,
        ..TransportConfig::default()
    })
}

fn request_json(r: &HttpRequest) -> Value {
    json!({"method": r.method, "target": r.target,
           "headers": r.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
           "body": String::from_utf8_lossy(&r.body)})
}

pub fn random_digits(n: usize) -> String {
    let mut b = vec![0u8; n];
    cardbridge::crypto::random_bytes(&mut b);
    b.iter().map(|x| char::from(b'0' + x % 10)).collect()
}

/// What to send to an Alipay+ merchant.
pub struct AlipayCall {
    /// The merchant's endpoint: its full URL, or a base URL (then the
    /// default target `/v2/pds/memberships/<api>` is appended).
    pub url: String,
    /// The inbound API, `notifyCardRegistration` by default.
    pub api: String,
    /// The body; default: a sample registration with `request_id`.
    pub body: Option<Vec<u8>>,
    pub request_id: Option<String>,
    /// `Request-Time` to sign (default: now, or 10 minutes ago for `stale`).
    pub request_time: Option<String>,
    pub tamper: Tamper,
    pub timeout: Duration,
}

/// The full URL to send to and the request-target to sign.
fn alipay_endpoint(url: &str, api: &str) -> Result<(String, String)> {
    let checked =
        check_url(url).map_err(|e| Error::new(e.kind(), format!("url: {}", e.message())).with_field("url"))?;
    let parsed = url::Url::parse(checked.as_str()).map_err(|_| invalid_url())?;
    if parsed.path() == "/" && parsed.query().is_none() {
        let target = PlatformDriver::target_for(api);
        let base = checked.as_str().trim_end_matches('/').to_string();
        return Ok((format!("{base}{target}"), target));
    }
    let mut target = parsed.path().to_string();
    if let Some(q) = parsed.query() {
        target.push('?');
        target.push_str(q);
    }
    Ok((checked.as_str().to_string(), target))
}

/// Mints the request (signed, spoiled as asked) without sending it.
pub fn alipay_mint(config: &PlatformConfig, call: &AlipayCall, target: &str) -> Result<(HttpRequest, String)> {
    let request_id = call
        .request_id
        .clone()
        .unwrap_or_else(|| format!("CBN{}", random_digits(20)));
    let body = match &call.body {
        Some(b) => b.clone(),
        None if call.api == "notifyCardRegistration" => sample_registration(&request_id),
        None => {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                format!(
                    "body: required for {} (only notifyCardRegistration has a sample)",
                    call.api
                ),
            )
            .with_field("body"));
        }
    };
    let now = chrono::Utc::now().timestamp_millis();
    let time = match (&call.request_time, call.tamper) {
        (Some(t), _) => t.clone(),
        (None, Tamper::Stale) => time::format_request_time(now - 600_000, 0),
        (None, _) => time::format_request_time(now, 0),
    };
    let tamper = match call.tamper {
        Tamper::None | Tamper::Stale | Tamper::Duplicate => DriverTamper::None,
        Tamper::BadSignature => DriverTamper::BodyByte,
        Tamper::Probe => DriverTamper::Unsigned,
        Tamper::WrongKey => DriverTamper::WrongKey,
        Tamper::MalformedHeader => DriverTamper::MalformedHeader,
        Tamper::WrongClientId => DriverTamper::WrongClientId,
        t @ (Tamper::BadTag | Tamper::WrongSerial | Tamper::MissingHeader) => return Err(t.not_for("Alipay+")),
    };
    let request = config.driver().request(target, &body, &time, tamper)?;
    Ok((request, request_id))
}

/// Whether an Alipay+ merchant answer (its headers and body) is signed with
/// the merchant key over `POST <target>` (§4.8), and what is wrong if not.
pub fn alipay_answer_signature(
    config: &PlatformConfig,
    target: &str,
    headers: &[Header],
    body: &[u8],
) -> (bool, Vec<String>) {
    let mut problems = Vec::new();
    let sig = find_header(headers, "Signature");
    let rtime = find_header(headers, "Response-Time");
    let client = find_header(headers, "Client-Id").unwrap_or(&config.client_id);
    let valid = match (sig, rtime) {
        (None, None) => {
            problems.push("unsigned: no Signature and no Response-Time header".to_string());
            false
        }
        (Some(_), None) | (None, Some(_)) => {
            problems.push("only one of the Signature and Response-Time headers".to_string());
            false
        }
        (Some(_), Some(_)) if client != config.client_id => {
            problems.push("the answer's Client-Id is not the configured one".to_string());
            false
        }
        (Some(_), Some(t)) => {
            match signature::verify(&config.merchant_public_key, sig, "POST", target, client, t, body) {
                Ok(_) => true,
                Err(f) => {
                    problems.push(format!(
                        "signature does not verify with the merchant public key ({}) over POST {target}",
                        f.reason()
                    ));
                    false
                }
            }
        }
    };
    (valid, problems)
}

/// Checks an Alipay+ merchant answer (§4.8, §9.3).
fn alipay_answer(config: &PlatformConfig, api: &str, target: &str, r: HttpResponse) -> Answer {
    let (signature_valid, mut problems) = alipay_answer_signature(config, target, &r.headers, &r.body);
    let mut format_valid = r.status == 200;
    if !format_valid {
        problems.push(format!("HTTP {} (the platform expects 200)", r.status));
    }
    if let Err(e) = model::normalize(&format!("{api}Response"), &r.body, Direction::Outbound) {
        format_valid = false;
        problems.push(format!("body: {}", e.message()));
    }
    let parsed: Value = serde_json::from_slice(&r.body).unwrap_or_default();
    let field = |k: &str| parsed.pointer(&format!("/result/{k}")).and_then(Value::as_str);
    let status = field("resultStatus").unwrap_or_default();
    let outcome = json!({"resultStatus": status, "resultCode": field("resultCode"),
                         "resultMessage": field("resultMessage")});
    Answer {
        status: r.status,
        signature_valid: Some(signature_valid),
        format_valid,
        accepted: status == "S",
        refused: status == "F",
        outcome,
        body: r.body,
        problems,
    }
}

/// Sends an Alipay+ call and judges the answer(s).
pub fn alipay_deliver(config: &PlatformConfig, call: &AlipayCall) -> Result<Report> {
    let (url, target) = alipay_endpoint(&call.url, &call.api)?;
    let (request, request_id) = alipay_mint(config, call, &target)?;
    let expect = match call.tamper {
        Tamper::None => Expect::Accept,
        Tamper::Stale => Expect::Either,
        Tamper::Duplicate if call.api == "notifyCardRegistration" => Expect::AcceptTwiceSame,
        Tamper::Duplicate => Expect::AcceptTwice,
        _ => Expect::Refuse,
    };
    let mut report = Report {
        platform: Platform::Alipay,
        what: call.api.clone(),
        url: url.clone(),
        tamper: call.tamper,
        expect,
        request: json!({"target": target, "requestId": request_id, "http": request_json(&request)}),
        answers: Vec::new(),
        no_answer: None,
        pass: false,
        reasons: Vec::new(),
    };
    let transport = transport(call.timeout)?;
    let mut requests = vec![request];
    if call.tamper == Tamper::Duplicate {
        // The platform's redelivery: same body, fresh Request-Time and signature.
        let again = AlipayCall {
            request_id: Some(request_id),
            body: Some(requests[0].body.clone()),
            url: call.url.clone(),
            api: call.api.clone(),
            request_time: None,
            tamper: Tamper::None,
            timeout: call.timeout,
        };
        requests.push(alipay_mint(config, &again, &target)?.0);
    }
    for r in &requests {
        match transport.send(&url, &r.method, &r.headers, &r.body) {
            Ok(resp) => report.answers.push(alipay_answer(config, &call.api, &target, resp)),
            Err(e) => {
                report.no_answer = Some(e.message().to_string());
                return Ok(report);
            }
        }
    }
    judge(&mut report);
    Ok(report)
}

/// What to send to a WeChat Pay merchant's `notify_url`.
pub struct WechatCall {
    pub url: String,
    pub event_type: String,
    pub original_type: String,
    /// The decrypted resource; default: a `USER_CARD.CREATE` sample.
    pub resource: Option<Value>,
    pub user_card_code: Option<String>,
    pub card_id: Option<String>,
    pub openid: Option<String>,
    pub now_unix: Option<i64>,
    pub tamper: Tamper,
    pub timeout: Duration,
}

pub const DEFAULT_EVENT_TYPE: &str = "BRAND_MEMBER_CARD_SP.USER_CARD.CREATE";
pub const DEFAULT_ORIGINAL_TYPE: &str = "user_card";
pub const DEFAULT_CARD_ID: &str = "pbLatjvWOibDc5-TBnbUk1pD12o0";
pub const DEFAULT_OPENID: &str = "obLatjnx9gnqzS4myYGmLZ7LgLBA";

impl WechatCall {
    pub fn new(url: String, tamper: Tamper, timeout: Duration) -> Self {
        WechatCall {
            url,
            event_type: DEFAULT_EVENT_TYPE.into(),
            original_type: DEFAULT_ORIGINAL_TYPE.into(),
            resource: None,
            user_card_code: None,
            card_id: None,
            openid: None,
            now_unix: None,
            tamper,
            timeout,
        }
    }
}

/// A minted callback and the card it announces (code, card_id, openid, brand_id).
pub struct MintedCallback {
    pub request: HttpRequest,
    pub card: Option<(String, String, String, String)>,
}

/// Mints the callback (signed, spoiled as asked) without sending it.
pub fn wechat_mint(handler: &WechatPayHandler, call: &WechatCall) -> Result<MintedCallback> {
    let tamper = match call.tamper {
        Tamper::None | Tamper::Duplicate => CallbackTamper::None,
        Tamper::BadSignature => CallbackTamper::BodyByte,
        Tamper::Stale => CallbackTamper::StaleTimestamp,
        Tamper::Probe => CallbackTamper::SignTestProbe,
        Tamper::BadTag => CallbackTamper::BadTag,
        Tamper::WrongSerial => CallbackTamper::WrongSerial,
        Tamper::MissingHeader => CallbackTamper::MissingHeader,
        t @ (Tamper::WrongKey | Tamper::MalformedHeader | Tamper::WrongClientId) => {
            return Err(t.not_for("WeChat Pay"));
        }
    };
    // Without a resource, the sample of the event type (and its original_type,
    // unless one was chosen): every card event can be delivered.
    let mut original_type = call.original_type.clone();
    let resource = match &call.resource {
        Some(r) => r.clone(),
        None => {
            let code = call.user_card_code.clone().unwrap_or_else(|| random_digits(12));
            let (resource, kind) = sample_event(
                &call.event_type,
                &code,
                call.card_id.as_deref().unwrap_or(DEFAULT_CARD_ID),
                call.openid.as_deref().unwrap_or(DEFAULT_OPENID),
            );
            if original_type == DEFAULT_ORIGINAL_TYPE {
                original_type = kind.to_string();
            }
            resource
        }
    };
    let text = |k: &str| resource.get(k).and_then(Value::as_str).map(str::to_string);
    let card = match (text("user_card_code"), text("card_id"), text("openid")) {
        (Some(code), Some(card_id), Some(openid)) if call.event_type.ends_with(".USER_CARD.CREATE") => Some((
            code,
            card_id,
            openid,
            text("brand_id").unwrap_or_else(|| SAMPLE_BRAND_ID.into()),
        )),
        _ => None,
    };
    let now = call.now_unix.unwrap_or_else(|| chrono::Utc::now().timestamp());
    let request = handler.callback(&call.event_type, &original_type, &resource, now, tamper)?;
    Ok(MintedCallback { request, card })
}

/// Checks a WeChat Pay callback answer: `200`/`204` accepts (any body, or
/// none); `4XX`/`5XX` refuses and must carry `{"code","message"}`.
fn wechat_answer(r: HttpResponse) -> Answer {
    let mut problems = Vec::new();
    let parsed = serde_json::from_slice::<Value>(&r.body).ok();
    let text = |k: &str| parsed.as_ref().and_then(|v| v.get(k)).and_then(Value::as_str);
    let accepted = matches!(r.status, 200 | 204);
    let refused = (400..600).contains(&r.status);
    let format_valid = if accepted {
        let ok = r.body.iter().all(u8::is_ascii_whitespace) || parsed.as_ref().is_some_and(Value::is_object);
        if !ok {
            problems.push("a 2XX body must be empty or a JSON object".to_string());
        }
        ok
    } else if refused {
        let ok = text("code").is_some() && text("message").is_some();
        if !ok {
            problems.push(format!(
                "HTTP {}: the body must be {{\"code\":\"FAIL\",\"message\":\"...\"}}",
                r.status
            ));
        }
        ok
    } else {
        problems.push(format!("HTTP {}: WeChat Pay expects 200/204 or 4XX/5XX", r.status));
        false
    };
    let outcome = json!({"code": text("code"), "message": text("message")});
    Answer {
        status: r.status,
        signature_valid: None,
        format_valid,
        accepted,
        refused,
        outcome,
        body: r.body,
        problems,
    }
}

/// Sends a WeChat Pay callback and judges the answer(s).
pub fn wechat_deliver(call: &WechatCall, minted: MintedCallback) -> Result<Report> {
    let checked =
        check_url(&call.url).map_err(|e| Error::new(e.kind(), format!("url: {}", e.message())).with_field("url"))?;
    let url = checked.as_str().to_string();
    let expect = match call.tamper {
        Tamper::None => Expect::Accept,
        Tamper::Duplicate => Expect::AcceptTwice,
        _ => Expect::Refuse,
    };
    let request = minted.request;
    let id = serde_json::from_slice::<Value>(&request.body)
        .ok()
        .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string));
    let mut report = Report {
        platform: Platform::Wechat,
        what: call.event_type.clone(),
        url: url.clone(),
        tamper: call.tamper,
        expect,
        request: json!({"id": id, "user_card_code": minted.card.as_ref().map(|c| c.0.clone()),
                        "http": request_json(&request)}),
        answers: Vec::new(),
        no_answer: None,
        pass: false,
        reasons: Vec::new(),
    };
    let transport = transport(call.timeout)?;
    let times = if call.tamper == Tamper::Duplicate { 2 } else { 1 };
    for _ in 0..times {
        // A redelivery is the same notification (same id, same bytes).
        match transport.send(&url, &request.method, &request.headers, &request.body) {
            Ok(resp) => report.answers.push(wechat_answer(resp)),
            Err(e) => {
                report.no_answer = Some(e.message().to_string());
                return Ok(report);
            }
        }
    }
    judge(&mut report);
    Ok(report)
}

/// The verdict: every answer signed (where the platform signs) and well
/// formed, and the outcome the tamper calls for.
fn judge(report: &mut Report) {
    let mut reasons = Vec::new();
    for (i, a) in report.answers.iter().enumerate() {
        let n = i + 1;
        if a.signature_valid == Some(false) {
            reasons.push(format!("answer {n} is not correctly signed by the merchant key"));
        }
        if !a.format_valid {
            reasons.push(format!("answer {n} is not well-formed"));
        }
        let wrong = match report.expect {
            Expect::Accept | Expect::AcceptTwice | Expect::AcceptTwiceSame => (!a.accepted).then_some("accepted"),
            Expect::Refuse => (!a.refused).then_some("refused"),
            Expect::Either => None,
        };
        if let Some(want) = wrong {
            reasons.push(format!("answer {n} should have {want} the call"));
        }
    }
    if report.expect == Expect::AcceptTwiceSame {
        if let [a, b] = report.answers.as_slice() {
            if a.body != b.body {
                reasons.push(
                    "the duplicate got another answer body: a requestId must always get the same answer".to_string(),
                );
            }
        }
    }
    if report.expect == Expect::Either {
        if let Some(a) = report.answers.first() {
            reasons.push(if a.refused {
                let code = a.outcome.get("resultCode").and_then(Value::as_str).unwrap_or_default();
                format!("note: the stale call was refused ({code}); refusing stale calls is allowed")
            } else {
                "note: the stale call was not refused (no clock-skew check; allowed, replay protection is by requestId)"
                    .to_string()
            });
        }
    }
    report.pass = !reasons.iter().any(|r| !r.starts_with("note:"));
    report.reasons = reasons;
}

fn invalid_url() -> Error {
    Error::new(ErrorKind::InvalidConfig, "url: is not valid").with_field("url")
}
