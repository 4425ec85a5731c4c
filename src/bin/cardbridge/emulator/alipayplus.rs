//! The Alipay+ side of the emulator.
//!
//! * [`AlipayPlatformEmulator`]: the platform's `issueCard` endpoint
//!   (`alipayplus-mpp.md` §7.2). It verifies the merchant signature like the
//!   platform (§4.1, §4.4), is idempotent by `requestId` (§7.2, §8.2), signs its
//!   answers (§4.7) and can be told to misbehave with [`Fault`]s.
//! * [`PlatformDriver`]: builds the platform → merchant calls (§7.1, §7.3–7.5),
//!   correctly or deliberately wrongly signed ([`Tamper`]), sends them to a
//!   loopback merchant endpoint and verifies the merchant's answer (§4.8).

use super::server::{Action, HttpServer, text_response};
use cardbridge::alipayplus::signature;
use cardbridge::crypto::keys::{PrivateKey, PublicKey};
use cardbridge::crypto::{b64_decode_strict, b64_encode};
use cardbridge::error::{Error, ErrorKind, Result};
use cardbridge::http::{Header, HttpRequest, HttpResponse, Transport, TransportConfig, find_header};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// `restfulPath` of `issueCard`; the emulator serves it under the configured prefix.
pub const ISSUE_CARD_PATH: &str = "/v2/pds/memberships/issueCard";

const JSON_CONTENT_TYPE: &str = "application/json; charset=UTF-8";

/// `resultCode` of a signature that does not verify. The mini-program V2
/// list has no such code; the gateway's Antom code is used (`alipayplus-mpp.md`
/// §9.2, UNVERIFIED for membership): `F`, terminal.
pub const SIGNATURE_INVALID_CODE: &str = "INVALID_SIGNATURE";

/// The gateway's refusal text in front of its echoed string-to-sign
/// ("signature check failed: check the string-to-sign, or whether the
/// signing private key matches the application public key; ").
const SIGNATURE_INVALID_MESSAGE: &str = "验签出错,建议检查签名字符串或签名私钥与应用公钥是否匹配,";

/// Fields of an `issueCard` request the emulator insists on (§7.2). Deeper
/// validation is the library's job, not the emulator's.
const REQUIRED_STRINGS: [&str; 6] = [
    "appId",
    "customerBelongsTo",
    "requestId",
    "customerId",
    "externalCustomerId",
    "registerDate",
];

/// How the emulator is keyed and addressed.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Signs the emulator's answers (the merchant verifies them with the public half).
    pub platform_private_key: PrivateKey,
    /// Verifies the merchant's `issueCard` requests.
    pub merchant_public_key: PublicKey,
    /// The merchant's `Client-Id`; requests must carry exactly this value.
    pub client_id: String,
    /// Path prefix in front of `/v2/pds/memberships/issueCard` (§2), default
    /// `/api/open`; empty or starting with `/` and not ending with `/`.
    pub path_prefix: String,
    /// `keyVersion` written into the emulator's `Signature` headers, default `1`.
    pub key_version: String,
}

impl EmulatorConfig {
    /// A configuration with the default prefix `/api/open` and key version `1`.
    pub fn new(platform_private_key: PrivateKey, merchant_public_key: PublicKey, client_id: impl Into<String>) -> Self {
        EmulatorConfig {
            platform_private_key,
            merchant_public_key,
            client_id: client_id.into(),
            path_prefix: "/api/open".into(),
            key_version: "1".into(),
        }
    }
}

/// A misbehaviour for the next `issueCard` request. Faults queue up (FIFO);
/// each one is used up by exactly one `issueCard` request, whatever that
/// request contains. "Processed" means the request went through normal
/// handling (signature check, validation, card issued or replayed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer `U` `UNKNOWN_EXCEPTION`, signed; the request is not processed.
    Unknown,
    /// Answer `F` with this code and message, signed; not processed and not
    /// remembered (a retry with the same `requestId` is handled normally).
    Fail {
        /// `resultCode`, e.g. `PROCESS_FAIL`.
        code: String,
        /// `resultMessage`.
        message: String,
    },
    /// Answer `F` `REQUEST_TRAFFIC_EXCEED_LIMIT`, signed; not processed.
    TrafficLimit,
    /// Answer this HTTP status with a plain-text, unsigned body; not processed.
    HttpStatus(u16),
    /// Process the request, then answer only after this delay (set it past the
    /// client's read timeout to emulate a lost answer).
    DelayThenAnswer(Duration),
    /// Process the request, then close the connection without answering.
    DropAfterProcessing,
    /// Process the request, then answer without `Signature` and `Response-Time`.
    Unsigned,
    /// Process the request, then answer with a `Signature` that does not verify.
    BadSignature,
    /// Answer `S` `SUCCESS`, signed, but without `cardNo`; not processed.
    SuccessWithoutCardNo,
    /// Process the request as if a proxy on the way had re-serialised its
    /// JSON body ([`super::Alteration::ReserializedBody`]): the signature no longer verifies
    /// and the refusal echoes the string-to-sign built from the altered body.
    BodyReencodedInTransit,
}

/// A card issued for one `requestId`: the exact answer body is kept so
/// replays are byte-identical.
struct Issued {
    card_no: String,
    body: Vec<u8>,
}

#[derive(Default)]
struct State {
    faults: VecDeque<Fault>,
    issue_card_hits: usize,
    hits: HashMap<String, usize>,
    bodies: HashMap<String, Vec<Vec<u8>>>,
    issued: HashMap<String, Issued>,
    next_card: u64,
    last_request: Option<HttpRequest>,
}

/// How an answer is signed.
enum Signing {
    Valid,
    Corrupted,
    Unsigned,
}

struct Platform {
    config: EmulatorConfig,
    issue_card_path: String,
    state: Mutex<State>,
}

impl Platform {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Counters stay usable even if a handler thread panicked mid-update.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn handle(&self, request: &HttpRequest) -> Action {
        let fault = {
            let mut st = self.lock();
            st.last_request = Some(request.clone());
            let path = request.target.split('?').next().unwrap_or_default();
            if request.method != "POST" || path != self.issue_card_path {
                drop(st);
                let body = result_body("F", "INVALID_API", "The called API is invalid or not active.");
                return Action::Respond(self.answer(request, body, Signing::Valid));
            }
            st.issue_card_hits += 1;
            if let Some(id) = request_id_of(&request.body) {
                *st.hits.entry(id.clone()).or_default() += 1;
                st.bodies.entry(id).or_default().push(request.body.clone());
            }
            st.faults.pop_front()
        };
        let signed = |body| Action::Respond(self.answer(request, body, Signing::Valid));
        match fault {
            None => Action::Respond(self.process(request, Signing::Valid)),
            Some(Fault::Unknown) => signed(result_body(
                "U",
                "UNKNOWN_EXCEPTION",
                "An API calling is failed, which is caused by unknown reasons.",
            )),
            Some(Fault::Fail { code, message }) => signed(result_body("F", &code, &message)),
            Some(Fault::TrafficLimit) => signed(result_body(
                "F",
                "REQUEST_TRAFFIC_EXCEED_LIMIT",
                "The request traffic exceeds the limit.",
            )),
            Some(Fault::HttpStatus(status)) => Action::Respond(text_response(status, "emulated platform HTTP failure")),
            Some(Fault::SuccessWithoutCardNo) => signed(result_body("S", "SUCCESS", "Success")),
            Some(Fault::DelayThenAnswer(delay)) => Action::RespondAfter(delay, self.process(request, Signing::Valid)),
            Some(Fault::DropAfterProcessing) => {
                // The card is issued; only the answer is lost.
                let _ = self.process(request, Signing::Valid);
                Action::Drop
            }
            Some(Fault::Unsigned) => Action::Respond(self.process(request, Signing::Unsigned)),
            Some(Fault::BadSignature) => Action::Respond(self.process(request, Signing::Corrupted)),
            Some(Fault::BodyReencodedInTransit) => {
                let altered = super::Alteration::ReserializedBody.apply(request);
                let body = match self.check(&altered) {
                    Ok(request_id) => self.issue(&request_id),
                    Err(refusal) => refusal,
                };
                Action::Respond(self.answer(request, body, Signing::Valid))
            }
        }
    }

    /// Normal handling: verify, validate, issue or replay.
    fn process(&self, request: &HttpRequest, signing: Signing) -> HttpResponse {
        let body = match self.check(request) {
            Ok(request_id) => self.issue(&request_id),
            Err(refusal) => refusal,
        };
        self.answer(request, body, signing)
    }

    /// Signature and field checks; `Err` carries the `F` answer body.
    fn check(&self, request: &HttpRequest) -> std::result::Result<String, Vec<u8>> {
        let denied = |why: &str| result_body("F", "ACCESS_DENIED", why);
        let illegal = |why: &str| result_body("F", "PARAM_ILLEGAL", why);
        let client_id =
            find_header(&request.headers, "Client-Id").ok_or_else(|| illegal("Client-Id header is required"))?;
        let request_time =
            find_header(&request.headers, "Request-Time").ok_or_else(|| illegal("Request-Time header is required"))?;
        if client_id != self.config.client_id {
            return Err(denied("unknown Client-Id"));
        }
        // The merchant's keyVersion is not checked: the emulator knows one merchant key.
        let sig = find_header(&request.headers, "Signature");
        match signature::verify(
            &self.config.merchant_public_key,
            sig,
            &request.method,
            &request.target,
            client_id,
            request_time,
            &request.body,
        ) {
            Ok(_) => {}
            // A readable signature that does not match: the gateway's refusal,
            // echoing the string-to-sign it built (what a merchant compares).
            Err(signature::SignatureFailure::Mismatch) => {
                let content = signature::content_to_sign(
                    &request.method,
                    &request.target,
                    client_id,
                    request_time,
                    &request.body,
                );
                let message = format!(
                    "{SIGNATURE_INVALID_MESSAGE}{}:{}",
                    cardbridge::diagnose::ALIPAY_ECHO_MARKER,
                    String::from_utf8_lossy(&content)
                );
                return Err(result_body("F", SIGNATURE_INVALID_CODE, &message));
            }
            Err(_) => return Err(denied("signature verification failed")),
        }

        let json: Value =
            serde_json::from_slice(&request.body).map_err(|_| illegal("request body is not valid JSON"))?;
        let Some(fields) = json.as_object() else {
            return Err(illegal("request body must be a JSON object"));
        };
        for name in REQUIRED_STRINGS {
            match fields.get(name) {
                Some(Value::String(s)) if !s.is_empty() => {}
                Some(_) => return Err(illegal(&format!("{name} must be a non-empty string"))),
                None => return Err(illegal(&format!("{name} is required"))),
            }
        }
        match fields.get("cardFields") {
            Some(Value::Array(_)) => {}
            Some(_) => return Err(illegal("cardFields must be an array")),
            None => return Err(illegal("cardFields is required")),
        }
        Ok(fields
            .get("requestId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    /// The stored answer for `request_id`, issuing a new card the first time.
    fn issue(&self, request_id: &str) -> Vec<u8> {
        let mut st = self.lock();
        if let Some(issued) = st.issued.get(request_id) {
            return issued.body.clone();
        }
        st.next_card += 1;
        let card_no = format!("EMU{:024}", st.next_card);
        let body = json!({
            "result": {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "Success"},
            "cardNo": card_no,
        })
        .to_string()
        .into_bytes();
        st.issued.insert(
            request_id.to_string(),
            Issued {
                card_no,
                body: body.clone(),
            },
        );
        body
    }

    /// A `200` JSON answer with `client-id` and, depending on `signing`,
    /// `response-time` + `signature` over the request's method and target.
    /// The names are lower case as the gateway writes them: Ant's SDKs look
    /// them up case-sensitively (`alipayplus-mpp.md` §4.1, §4.7).
    fn answer(&self, request: &HttpRequest, body: Vec<u8>, signing: Signing) -> HttpResponse {
        let cfg = &self.config;
        let mut headers: Vec<Header> = vec![
            ("Content-Type".into(), JSON_CONTENT_TYPE.into()),
            ("client-id".into(), cfg.client_id.clone()),
        ];
        if !matches!(signing, Signing::Unsigned) {
            let time = response_time_now();
            let signed = signature::sign_base64(
                &cfg.platform_private_key,
                &request.method,
                &request.target,
                &cfg.client_id,
                &time,
                &body,
            );
            let Ok(mut value) = signed else {
                return text_response(500, "emulator could not sign its answer");
            };
            if matches!(signing, Signing::Corrupted) {
                value = corrupt_signature(&value);
            }
            headers.push(("response-time".into(), time));
            headers.push(("signature".into(), signature::header_value(&cfg.key_version, &value)));
        }
        HttpResponse {
            status: 200,
            headers,
            body,
        }
    }
}

/// Flips one bit of the raw signature: still well-formed Base64, never valid.
fn corrupt_signature(b64: &str) -> String {
    match b64_decode_strict(b64) {
        Some(mut raw) if !raw.is_empty() => {
            raw[0] ^= 0x01;
            b64_encode(&raw)
        }
        _ => "AAAA".into(),
    }
}

/// `{"result":{...}}` as compact JSON bytes.
fn result_body(status: &str, code: &str, message: &str) -> Vec<u8> {
    json!({"result": {"resultCode": code, "resultStatus": status, "resultMessage": message}})
        .to_string()
        .into_bytes()
}

/// The `requestId` of a body, if it parses; used only for hit counting.
fn request_id_of(body: &[u8]) -> Option<String> {
    let json: Value = serde_json::from_slice(body).ok()?;
    json.get("requestId")?.as_str().map(str::to_string)
}

/// Current UTC time as `YYYY-MM-DDTHH:MM:SS.sss+00:00` (§4.6 emission format).
fn response_time_now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string()
}

/// The Alipay+ platform's request handling without a server of its own:
/// what [`AlipayPlatformEmulator`] runs, for a host that routes requests to
/// it from its own server (the `cardbridge emulator` binary). Cheap to clone;
/// clones share the cards, counters and queued faults.
#[derive(Clone)]
pub struct AlipayPlatformHandler {
    platform: Arc<Platform>,
}

impl std::fmt::Debug for AlipayPlatformHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlipayPlatformHandler")
            .field("platform", &self.platform)
            .finish()
    }
}

impl AlipayPlatformHandler {
    /// Checks `config` (see [`AlipayPlatformEmulator::start`]) and builds the handler.
    pub fn new(config: EmulatorConfig) -> Result<Self> {
        let prefix = &config.path_prefix;
        if !prefix.is_empty() && (!prefix.starts_with('/') || prefix.ends_with('/')) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("emulator.path_prefix: must be empty or start with '/' and not end with '/' (got {prefix:?})"),
            ));
        }
        if config.client_id.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "emulator.client_id: must not be empty",
            ));
        }
        if config.key_version.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "emulator.key_version: must not be empty",
            ));
        }
        cardbridge::http::check_header_value("emulator.client_id", &config.client_id)?;
        cardbridge::http::check_header_value("emulator.key_version", &config.key_version)?;
        Ok(AlipayPlatformHandler {
            platform: Arc::new(Platform {
                issue_card_path: format!("{prefix}{ISSUE_CARD_PATH}"),
                config,
                state: Mutex::new(State::default()),
            }),
        })
    }

    /// Handles one request as the platform would (any path: everything but
    /// `POST <prefix>/v2/pds/memberships/issueCard` is answered `F INVALID_API`).
    pub fn handle(&self, request: &HttpRequest) -> Action {
        self.platform.handle(request)
    }

    /// The path `issueCard` is served on: the prefix + [`ISSUE_CARD_PATH`].
    pub fn issue_card_path(&self) -> &str {
        &self.platform.issue_card_path
    }

    /// Queues a fault for a later `issueCard` request (first in, first out).
    pub fn push_fault(&self, fault: Fault) {
        self.platform.lock().faults.push_back(fault);
    }

    /// Every `issueCard` request received, including refused and faulted ones.
    pub fn issue_card_hits(&self) -> usize {
        self.platform.lock().issue_card_hits
    }

    /// `issueCard` requests whose body carried this `requestId` (faulted and
    /// refused ones included).
    pub fn hits_for(&self, request_id: &str) -> usize {
        self.platform.lock().hits.get(request_id).copied().unwrap_or(0)
    }

    /// [`Self::hits_for`] of every `requestId` seen.
    pub fn hits_by_request_id(&self) -> BTreeMap<String, usize> {
        self.platform.lock().hits.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Distinct `requestId`s that got a card.
    pub fn cards_issued(&self) -> usize {
        self.platform.lock().issued.len()
    }

    /// Every issued card: `requestId` → `cardNo`.
    pub fn issued_cards(&self) -> BTreeMap<String, String> {
        self.platform
            .lock()
            .issued
            .iter()
            .map(|(k, v)| (k.clone(), v.card_no.clone()))
            .collect()
    }

    /// Every issueCard body received for `request_id`, in arrival order.
    pub fn bodies_for(&self, request_id: &str) -> Vec<Vec<u8>> {
        self.platform.lock().bodies.get(request_id).cloned().unwrap_or_default()
    }

    /// The card issued for `request_id`, if any (also when its answer was lost).
    pub fn card_no_for(&self, request_id: &str) -> Option<String> {
        self.platform.lock().issued.get(request_id).map(|i| i.card_no.clone())
    }

    /// The last request received on any path, as the handler saw it.
    pub fn last_request(&self) -> Option<HttpRequest> {
        self.platform.lock().last_request.clone()
    }

    /// What must survive a restart: the issued cards with their exact answer
    /// bodies, as `{"issued": {requestId: {"cardNo", "body"}}}` (counters
    /// and queued faults are not kept).
    pub fn export_state(&self) -> Value {
        let st = self.platform.lock();
        let issued: Map<String, Value> = st
            .issued
            .iter()
            .map(|(id, i)| {
                let body = String::from_utf8_lossy(&i.body).into_owned();
                (id.clone(), json!({"cardNo": i.card_no, "body": body}))
            })
            .collect();
        json!({ "issued": issued })
    }

    /// Adds the cards of an [`Self::export_state`] document (an existing
    /// `requestId` is replaced); later cards are numbered past the restored ones.
    pub fn import_state(&self, state: &Value) -> Result<()> {
        let bad = |rule: &str| {
            Error::new(ErrorKind::InvalidParameter, format!("state.issued: {rule}")).with_field("state.issued")
        };
        let Some(issued) = state.get("issued") else {
            return Ok(());
        };
        let issued = issued.as_object().ok_or_else(|| bad("must be an object"))?;
        let mut st = self.platform.lock();
        for (id, entry) in issued {
            let card_no = entry.get("cardNo").and_then(Value::as_str);
            let body = entry.get("body").and_then(Value::as_str);
            let (Some(card_no), Some(body)) = (card_no, body) else {
                return Err(bad("each entry must have string members cardNo and body"));
            };
            if let Some(n) = card_no.strip_prefix("EMU").and_then(|d| d.parse::<u64>().ok()) {
                st.next_card = st.next_card.max(n);
            }
            st.issued.insert(
                id.clone(),
                Issued {
                    card_no: card_no.to_string(),
                    body: body.as_bytes().to_vec(),
                },
            );
        }
        Ok(())
    }
}

/// A loopback emulator of the Alipay+ platform's `issueCard` endpoint.
///
/// Stops on [`AlipayPlatformEmulator::stop`] or drop.
#[derive(Debug)]
pub struct AlipayPlatformEmulator {
    server: HttpServer,
    handler: AlipayPlatformHandler,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("issue_card_path", &self.issue_card_path)
            .finish_non_exhaustive()
    }
}

impl AlipayPlatformEmulator {
    /// Starts the emulator on `127.0.0.1` on a free port.
    ///
    /// Fails with `InvalidConfig` for an empty `client_id` or `key_version`,
    /// or a `path_prefix` that is neither empty nor `/...` without a trailing `/`.
    pub fn start(config: EmulatorConfig) -> Result<Self> {
        let handler = AlipayPlatformHandler::new(config)?;
        let serving = handler.clone();
        let server = HttpServer::start(move |request| serving.handle(request))?;
        Ok(AlipayPlatformEmulator { server, handler })
    }

    /// `http://127.0.0.1:<port>`: the merchant's `base_url` (the prefix is separate).
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The handler behind the server (shares its state).
    pub fn handler(&self) -> &AlipayPlatformHandler {
        &self.handler
    }

    /// Queues a fault for a later `issueCard` request (first in, first out).
    pub fn push_fault(&self, fault: Fault) {
        self.handler.push_fault(fault);
    }

    /// Every `issueCard` request received, including refused and faulted ones.
    pub fn issue_card_hits(&self) -> usize {
        self.handler.issue_card_hits()
    }

    /// `issueCard` requests whose body carried this `requestId` (faulted and
    /// refused ones included).
    pub fn hits_for(&self, request_id: &str) -> usize {
        self.handler.hits_for(request_id)
    }

    /// Distinct `requestId`s that got a card.
    pub fn cards_issued(&self) -> usize {
        self.handler.cards_issued()
    }

    /// Every issueCard body received for `request_id`, in arrival order.
    pub fn bodies_for(&self, request_id: &str) -> Vec<Vec<u8>> {
        self.handler.bodies_for(request_id)
    }

    /// The card issued for `request_id`, if any (also when its answer was lost).
    pub fn card_no_for(&self, request_id: &str) -> Option<String> {
        self.handler.card_no_for(request_id)
    }

    /// The last request received on any path, as the server saw it.
    pub fn last_request(&self) -> Option<HttpRequest> {
        self.handler.last_request()
    }

    /// Stops the server and joins its threads.
    pub fn stop(self) {
        self.server.stop();
    }
}

/// How [`PlatformDriver::request`] spoils a request, to test the merchant's
/// verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Correctly signed.
    None,
    /// One letter or digit of the body changed after signing (the JSON stays
    /// well-formed, so only the signature check can catch it).
    BodyByte,
    /// Signed with a freshly generated key instead of the platform key.
    WrongKey,
    /// No `Signature` header.
    Unsigned,
    /// A `Signature` header without the `signature=` key (value is there, name is not).
    MalformedHeader,
    /// Signed with the platform key, but for (and carrying) another `Client-Id`.
    WrongClientId,
}

/// Builds and sends platform → merchant calls the way the platform would.
#[derive(Debug, Clone)]
pub struct PlatformDriver {
    platform_private_key: PrivateKey,
    client_id: String,
    key_version: String,
}

impl PlatformDriver {
    /// A driver signing with `platform_private_key` for `client_id`, emitting
    /// `keyVersion=<key_version>`.
    pub fn new(platform_private_key: PrivateKey, client_id: impl Into<String>, key_version: impl Into<String>) -> Self {
        PlatformDriver {
            platform_private_key,
            client_id: client_id.into(),
            key_version: key_version.into(),
        }
    }

    /// The default merchant-side request-target of an API, e.g.
    /// `target_for("notifyCardRegistration")` = `/v2/pds/memberships/notifyCardRegistration`.
    pub fn target_for(api: &str) -> String {
        format!("/v2/pds/memberships/{api}")
    }

    /// A `POST` to `target` (the request-target on the merchant side, see
    /// [`PlatformDriver::target_for`]) carrying `body`, with headers
    /// `Content-Type`, `Client-Id`, `Request-Time` and `Signature`, spoiled as
    /// `tamper` says.
    pub fn request(&self, target: &str, body: &[u8], request_time: &str, tamper: Tamper) -> Result<HttpRequest> {
        let client_id = match tamper {
            Tamper::WrongClientId => format!("{}_OTHER", self.client_id),
            _ => self.client_id.clone(),
        };
        let fresh_key;
        let key = if tamper == Tamper::WrongKey {
            fresh_key = PrivateKey::generate_rsa2048()?;
            &fresh_key
        } else {
            &self.platform_private_key
        };
        let sig = signature::sign_base64(key, "POST", target, &client_id, request_time, body)?;
        let mut headers: Vec<Header> = vec![
            ("Content-Type".into(), JSON_CONTENT_TYPE.into()),
            ("Client-Id".into(), client_id),
            ("Request-Time".into(), request_time.to_string()),
        ];
        let header = signature::header_value(&self.key_version, &sig);
        match tamper {
            Tamper::Unsigned => {}
            Tamper::MalformedHeader => {
                // Drop the `signature=` key but keep its value: a part without `=`.
                let value = header.replacen(",signature=", ",", 1);
                headers.push(("Signature".into(), value));
            }
            _ => headers.push(("Signature".into(), header)),
        }
        let mut body = body.to_vec();
        if tamper == Tamper::BodyByte {
            change_one_alphanumeric(&mut body);
        }
        Ok(HttpRequest {
            method: "POST".into(),
            target: target.to_string(),
            headers,
            body,
        })
    }

    /// Sends `request` to `base_url` (`http://` to a loopback host only) and
    /// returns the answer, whatever its status; `timeout` bounds connect and read.
    pub fn send(&self, base_url: &str, request: &HttpRequest, timeout: Duration) -> Result<HttpResponse> {
        cardbridge::http::check_url(base_url)?;
        if !base_url.starts_with("http://") {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "driver base URL: must be http:// to a loopback host",
            ));
        }
        let transport = Transport::new(&TransportConfig {
            connect_timeout: timeout,
            read_timeout: timeout,
            ..TransportConfig::default()
        })?;
        let url = format!("{}{}", base_url.trim_end_matches('/'), request.target);
        transport.send(&url, &request.method, &request.headers, &request.body)
    }

    /// Whether a merchant answer is signed with `merchant_public_key` the way
    /// §4.8 says: `Signature` and `Response-Time` present, `Client-Id` (if
    /// present) equal to the request's, signature over the request's method
    /// and target, the response time and the exact body.
    pub fn verify_response(merchant_public_key: &PublicKey, request: &HttpRequest, response: &HttpResponse) -> bool {
        let Some(client_id) = find_header(&request.headers, "Client-Id") else {
            return false;
        };
        if response.header("Client-Id").is_some_and(|c| c != client_id) {
            return false;
        }
        let Some(time) = response.header("Response-Time") else {
            return false;
        };
        signature::verify(
            merchant_public_key,
            response.header("Signature"),
            &request.method,
            &request.target,
            client_id,
            time,
            &response.body,
        )
        .is_ok()
    }
}

/// Changes the last ASCII letter or digit to its successor (wrapping), or
/// appends a space to a body without one.
fn change_one_alphanumeric(body: &mut Vec<u8>) {
    let next = |b: u8| match b {
        b'9' => b'0',
        b'z' => b'a',
        b'Z' => b'A',
        _ => b + 1,
    };
    match body.iter_mut().rev().find(|b| b.is_ascii_alphanumeric()) {
        Some(b) => *b = next(*b),
        None => body.push(b' '),
    }
}

/// A valid `notifyCardRegistration` body (§7.1) for `request_id`, modelled on
/// the official sample, as compact JSON.
pub fn sample_registration(request_id: &str) -> Vec<u8> {
    json!({
        "appId": "2102010113769000",
        "customerBelongsTo": "TNG",
        "customerId": "1236450862137570000",
        "requestId": request_id,
        "registrationFields": [
            {"fieldCode": "USER_NAME", "fieldValue": "John Doe"},
            {"fieldCode": "GENDER", "fieldValue": "M"},
            {"fieldCode": "BIRTH_DATE", "fieldValue": "2002-07-25"},
            {"fieldCode": "MOBILE_PHONE", "fieldValue": "+6588120000"},
            {"fieldCode": "EMAIL", "fieldValue": "email@example.com"},
        ],
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_time_has_the_emitted_shape() {
        let t = response_time_now();
        assert_eq!(t.len(), "2019-04-04T12:08:56.253+00:00".len(), "{t}");
        assert!(
            chrono::DateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.3f%:z").is_ok(),
            "{t}"
        );
        assert!(t.ends_with("+00:00"));
    }

    #[test]
    fn body_tamper_keeps_json_well_formed() {
        let mut body = sample_registration("r-1");
        let original = body.clone();
        change_one_alphanumeric(&mut body);
        assert_ne!(body, original);
        assert!(serde_json::from_slice::<Value>(&body).is_ok());
        let mut empty = Vec::new();
        change_one_alphanumeric(&mut empty);
        assert_eq!(empty, b" ");
    }

    #[test]
    fn corrupted_signature_is_well_formed_but_different() {
        let good = b64_encode(&[7u8; 256]);
        let bad = corrupt_signature(&good);
        assert_ne!(good, bad);
        assert!(b64_decode_strict(&bad).is_some());
    }
}
