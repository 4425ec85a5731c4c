//! The handler for the four platform → merchant calls (`alipayplus-mpp.md`
//! §4.4, §4.8, §7, §8.1, §9.3), in two steps so the host keeps control
//! without callbacks:
//!
//! 1. [`InboundHandler::begin`] takes the raw HTTP request. It verifies the
//!    platform's signature, validates the body and, for
//!    `notifyCardRegistration`, claims the requestId in the durable store. It
//!    returns either a finished answer ([`Begin::Respond`]: bad signature,
//!    invalid field, duplicate, in-flight duplicate) or a [`PendingCall`] that
//!    needs the host's business decision ([`Begin::Decide`]).
//! 2. [`InboundHandler::finish`] takes the host's decision (the response body
//!    in wire format, `result` defaulting to success), validates it, stores it
//!    durably when it is final (`S`/`F`), and returns the signed answer.
//!
//! Every answer is HTTP 200 with a `result` body (§2), signed with the
//! merchant key unless `sign_responses` is off.

use super::config::Config;
use super::model::{
    self, Direction, InquireCardDetailRequest, InquireCardDetailResponse, InquireMemberAssetsRequest,
    InquireMemberAssetsResponse, NotifyCardRegistrationRequest, NotifyCardRegistrationResponse, ResultInfo,
    UpdateCardDetailRequest, UpdateCardDetailResponse,
};
use super::signature;
use super::time::{format_request_time, parse_header_time};
use crate::crypto::sha256_hex;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{HttpRequest, HttpResponse, find_header};
use crate::obs::{self, Id, Level, Metrics};
use crate::store::{Claim, ClaimTicket, Completion, Store};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Instant;

/// Log target of the handler's events.
const TARGET: &str = "cardbridge::inbound";

/// Common prefix of the membership restfulPaths.
pub const MEMBERSHIP_PATH: &str = "/v2/pds/memberships/";

/// The four APIs the platform calls on the merchant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum InboundApi {
    /// A user registered as a member; create the member (idempotent by requestId).
    NotifyCardRegistration = 1,
    /// Query a member card's details.
    InquireCardDetail = 2,
    /// Update a member card's details (partial overwrite).
    UpdateCardDetail = 3,
    /// Query a member's assets (benefits, points, balance).
    InquireMemberAssets = 4,
}

impl InboundApi {
    /// Every API, in numeric order.
    pub const ALL: [InboundApi; 4] = [
        InboundApi::NotifyCardRegistration,
        InboundApi::InquireCardDetail,
        InboundApi::UpdateCardDetail,
        InboundApi::InquireMemberAssets,
    ];

    /// The API name as in the restfulPath.
    pub fn name(self) -> &'static str {
        match self {
            InboundApi::NotifyCardRegistration => "notifyCardRegistration",
            InboundApi::InquireCardDetail => "inquireCardDetail",
            InboundApi::UpdateCardDetail => "updateCardDetail",
            InboundApi::InquireMemberAssets => "inquireMemberAssets",
        }
    }

    fn from_path(path: &str) -> Option<Self> {
        let (_, name) = path.rsplit_once(MEMBERSHIP_PATH)?;
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// A validated platform request.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundRequest {
    /// `notifyCardRegistration`.
    NotifyCardRegistration(NotifyCardRegistrationRequest),
    /// `inquireCardDetail`.
    InquireCardDetail(InquireCardDetailRequest),
    /// `updateCardDetail`.
    UpdateCardDetail(UpdateCardDetailRequest),
    /// `inquireMemberAssets`.
    InquireMemberAssets(InquireMemberAssetsRequest),
}

/// What `begin` decided.
#[derive(Debug)]
pub enum Begin {
    /// Send this answer now; the host's business logic is not involved.
    Respond(HttpResponse),
    /// The host must decide, then call [`InboundHandler::finish`].
    Decide(Box<PendingCall>),
}

/// A verified, validated platform call waiting for the host's decision.
///
/// Dropping it undecided releases a `notifyCardRegistration` claim at once, so
/// the platform's next retry asks the host again.
pub struct PendingCall {
    api: InboundApi,
    request: InboundRequest,
    body: Vec<u8>,
    uri: String,
    claim: Option<HeldClaim>,
    finished: bool,
    /// When `begin` received it (for `latency_ms`).
    started: Instant,
}

/// A claim this call holds in the store: its key and fencing ticket.
struct HeldClaim {
    key: String,
    store: Arc<dyn Store>,
    ticket: ClaimTicket,
}

impl std::fmt::Debug for PendingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCall")
            .field("api", &self.api)
            .field("earlier_claims", &self.earlier_claims())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl PendingCall {
    /// Which API this is.
    pub fn api(&self) -> InboundApi {
        self.api
    }
    /// The typed request.
    pub fn request(&self) -> &InboundRequest {
        &self.request
    }
    /// The request body exactly as received (validated JSON, wire format).
    pub fn request_json(&self) -> &[u8] {
        &self.body
    }
    /// Whether this requestId was handed to a host before and that delivery
    /// ended without a final answer (its claim expired after a crash or a slow
    /// decision, or was released): the host may already have acted on it, so
    /// it should look up what it did before acting again.
    pub fn redelivered(&self) -> bool {
        self.earlier_claims() > 0
    }
    /// How many earlier deliveries of this requestId reached a host without a
    /// final answer (0 for a first delivery and for calls without a claim).
    pub fn earlier_claims(&self) -> u32 {
        self.claim.as_ref().map_or(0, |c| c.ticket.earlier_claims())
    }
}

impl Drop for PendingCall {
    fn drop(&mut self) {
        if let (false, Some(c)) = (self.finished, &self.claim) {
            // Best effort and fenced: if this fails the lease still expires on its own.
            let _ = c.store.release_inbound(&c.key, c.ticket.token);
        }
    }
}

/// Handles platform → merchant calls. Thread-safe; share it freely.
pub struct InboundHandler {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for InboundHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundHandler")
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

/// An early answer: status, code and a message that never holds personal data.
struct Refusal(&'static str, &'static str, String);

impl Refusal {
    fn param(msg: impl Into<String>) -> Self {
        Refusal("F", "PARAM_ILLEGAL", msg.into())
    }
    fn denied(msg: impl Into<String>) -> Self {
        Refusal("F", "ACCESS_DENIED", msg.into())
    }
    fn unknown(msg: impl Into<String>) -> Self {
        Refusal("U", "UNKNOWN_EXCEPTION", msg.into())
    }
}

/// `resultMessage` is at most 256 characters (§9.3).
fn truncate_message(msg: &str) -> String {
    msg.chars().take(256).collect()
}

/// The URI the platform signed: the received request-target, or the
/// configured public prefix + restfulPath behind a path-rewriting proxy.
pub fn signed_uri(config: &Config, request: &HttpRequest, path: &str) -> String {
    match (&config.inbound_public_prefix, path.rsplit_once(MEMBERSHIP_PATH)) {
        (Some(prefix), Some((_, api))) => {
            let query = request
                .target
                .split_once('?')
                .map(|(_, q)| format!("?{q}"))
                .unwrap_or_default();
            format!("{prefix}{MEMBERSHIP_PATH}{api}{query}")
        }
        _ => request.target.clone(),
    }
}

fn result_body(status: &str, code: &str, message: &str) -> Vec<u8> {
    let result = ResultInfo::new(status, code, message);
    serde_json::to_vec(&serde_json::json!({ "result": result })).unwrap_or_default()
}

impl InboundHandler {
    /// Builds the handler.
    pub fn new(config: Arc<Config>, store: Arc<dyn Store>) -> Result<Self> {
        config.check()?;
        Ok(InboundHandler {
            config,
            store,
            metrics: Arc::default(),
        })
    }

    /// The same handler counting into `metrics` (shared with the client).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Counts and logs one answer given without the host (refusal, duplicate).
    fn observe_early(&self, api: Option<InboundApi>, result: &'static str, code: &'static str, started: Instant) {
        let api = api.map_or("unknown", InboundApi::name);
        self.metrics.inbound(api, result);
        let level = if result == "replayed" { Level::Info } else { Level::Warn };
        obs::event(level, TARGET, "inbound call answered without the host", || {
            vec![
                ("api", obs::Value::Label(api)),
                ("result", obs::Value::Label(result)),
                ("result_code", obs::Value::Label(code)),
                ("latency_ms", obs::Value::Int(obs::elapsed_ms(started))),
            ]
        });
    }

    /// Step 1: verify, validate, deduplicate. `now_ms` is the current Unix
    /// time in milliseconds (for the optional skew check, leases and the
    /// `Response-Time` of early answers). Never fails: problems become answers.
    pub fn begin(&self, request: &HttpRequest, now_ms: i64) -> Begin {
        self.begin_diagnosed(request, now_ms).0
    }

    /// [`Self::begin`], with the diagnosis of a call refused for its
    /// signature ([`crate::diagnose::Diagnosis`]: which check failed, the
    /// measured offset, which variant would verify; never the body, a
    /// signature or personal data). `None` for every other outcome.
    pub fn begin_diagnosed(&self, request: &HttpRequest, now_ms: i64) -> (Begin, Option<crate::diagnose::Diagnosis>) {
        let started = Instant::now();
        let path = request.target.split('?').next().unwrap_or_default();
        let uri = signed_uri(&self.config, request, path);
        match self.begin_inner(request, path, &uri, now_ms, started) {
            Ok(b) => (b, None),
            Err(Refusal(status, code, msg)) => {
                self.observe_early(InboundApi::from_path(path), status, code, started);
                let diagnosis = if code == "ACCESS_DENIED" {
                    crate::diagnose::alipay_inbound(&self.config, request, now_ms)
                } else {
                    None
                };
                if let Some(d) = &diagnosis {
                    crate::diagnose::emit(InboundApi::from_path(path).map_or("unknown", InboundApi::name), d);
                }
                let response = self.respond(&uri, result_body(status, code, &msg), now_ms);
                (Begin::Respond(response), diagnosis)
            }
        }
    }

    fn begin_inner(
        &self,
        req: &HttpRequest,
        path: &str,
        uri: &str,
        now_ms: i64,
        started: Instant,
    ) -> std::result::Result<Begin, Refusal> {
        let c = &self.config;
        // Before anything else: an oversized body is refused unread.
        if req.body.len() > c.max_body_bytes {
            return Err(Refusal::param(format!(
                "the body must be at most {} bytes",
                c.max_body_bytes
            )));
        }
        let api = InboundApi::from_path(path).ok_or_else(|| Refusal::param("unknown API path"))?;
        if !req.method.eq_ignore_ascii_case("POST") {
            return Err(Refusal::param("method must be POST"));
        }
        if find_header(&req.headers, "Encrypt").is_some() {
            return Err(Refusal::param("the Encrypt header is not supported"));
        }
        let client_id =
            find_header(&req.headers, "Client-Id").ok_or_else(|| Refusal::param("Client-Id header is required"))?;
        if client_id != c.client_id {
            return Err(Refusal::denied("signature invalid (unknown_client_id)"));
        }
        let time = find_header(&req.headers, "Request-Time")
            .ok_or_else(|| Refusal::param("Request-Time header is required"))?;
        let sig_header = find_header(&req.headers, "Signature");
        let key = sig_header
            .and_then(|h| signature::parse_header(h).ok())
            .map(|p| c.platform_key(p.key_version.as_deref()))
            .unwrap_or(&c.platform_public_key);
        signature::verify(key, sig_header, "POST", uri, client_id, time, &req.body)
            .map_err(|f| Refusal::denied(format!("signature invalid ({})", f.reason())))?;
        if let Some(skew) = c.max_clock_skew {
            let t = parse_header_time(time).ok_or_else(|| Refusal::param("Request-Time is not a recognised time"))?;
            let off = now_ms.abs_diff(t);
            if u128::from(off) > skew.as_millis() {
                return Err(Refusal::param(format!(
                    "Request-Time is outside the accepted window of {} ms",
                    skew.as_millis()
                )));
            }
        }
        let request = parse_request(api, &req.body).map_err(|e| Refusal::param(e.message().to_string()))?;
        let mut pending = PendingCall {
            api,
            request,
            body: req.body.clone(),
            uri: uri.to_string(),
            claim: None,
            finished: false,
            started,
        };
        if let InboundRequest::NotifyCardRegistration(r) = &pending.request {
            let key = claim_key(&r.app_id, &r.request_id);
            let lease = i64::try_from(c.claim_lease.as_millis()).unwrap_or(i64::MAX);
            match self.store.claim_inbound(&key, &sha256_hex(&req.body), now_ms, lease) {
                Ok(Claim::Claimed(ticket)) => {
                    if ticket.earlier_claims() > 0 {
                        self.metrics.inbound_reclaimed();
                        obs::event(
                            Level::Warn,
                            TARGET,
                            "inbound claim taken over after an earlier one ended undecided",
                            || {
                                vec![
                                    ("api", obs::Value::Label(api.name())),
                                    ("request_id", obs::Value::Id(Id::new(&r.request_id))),
                                    ("earlier_claims", obs::Value::Int(i64::from(ticket.earlier_claims()))),
                                ]
                            },
                        );
                    }
                    pending.claim = Some(HeldClaim {
                        key,
                        store: self.store.clone(),
                        ticket,
                    })
                }
                Ok(Claim::InFlight) => {
                    return Err(Refusal::unknown("a request with this requestId is being processed"));
                }
                Ok(Claim::Done { response, .. }) => {
                    // Same requestId ⇒ same result, byte for byte, even if the payload differs (§8.1).
                    self.metrics.duplicate_replayed();
                    self.observe_early(Some(api), "replayed", "STORED_ANSWER", started);
                    return Ok(Begin::Respond(self.respond(uri, response, now_ms)));
                }
                Err(e) => {
                    obs::store_error(&self.metrics, "claim_inbound", &e);
                    return Err(Refusal::unknown("temporary storage problem"));
                }
            }
        }
        Ok(Begin::Decide(Box::new(pending)))
    }

    /// Step 2: turn the host's decision into the signed answer.
    ///
    /// `decision` is the response body in wire format; `result` may be left out
    /// for success. Allowed results (§9.3): `S SUCCESS`, `F PROCESS_FAIL`,
    /// `F PARAM_ILLEGAL`, `F ACCESS_DENIED`, `U UNKNOWN_EXCEPTION`.
    /// An invalid decision returns an error and leaves `pending` usable, so the
    /// host can correct it; a second finish returns `AlreadyUsed`.
    ///
    /// When this call's claim expired and another delivery of the same
    /// requestId decided meanwhile, that stored answer is returned (signed,
    /// byte-identical body), never this decision. When the other delivery has
    /// not decided yet, nothing is stored and the error is `ClaimLost`: answer
    /// with [`Self::finish_unknown`] so the platform asks again.
    pub fn finish(&self, pending: &mut PendingCall, decision: &[u8], now_ms: i64) -> Result<HttpResponse> {
        if pending.finished {
            return Err(Error::new(ErrorKind::AlreadyUsed, "this call was already finished"));
        }
        let (mut body, mut outcome) = build_answer(pending.api, decision)?;
        if let Some(c) = &pending.claim {
            if outcome.status == "U" {
                // Best effort: when the store is unreachable the claim is freed by its lease
                // expiry instead, and `U` must still reach the platform so that it asks again.
                let _ = c.store.release_inbound(&c.key, c.ticket.token);
            } else {
                // Durable before it is sent: a crash after this replays the same answer.
                let completed = c.store.complete_inbound(&c.key, c.ticket.token, &body, now_ms);
                match completed.inspect_err(|e| obs::store_error(&self.metrics, "complete_inbound", e))? {
                    Completion::Stored => {}
                    Completion::AlreadyDone(stored) => {
                        outcome = Outcome::of(&stored);
                        body = stored;
                    }
                    Completion::Lost => {
                        return Err(Error::new(
                            ErrorKind::ClaimLost,
                            "notifyCardRegistration: this call's claim expired and another delivery of the same \
                             requestId is being decided; nothing was stored: answer with finish_unknown",
                        ));
                    }
                }
            }
        }
        pending.finished = true;
        self.observe_answer(pending, &outcome);
        Ok(self.respond(&pending.uri, body, now_ms))
    }

    /// An answer saying "unknown, call again" for a pending call the host
    /// cannot decide now (host error, timeout). Releases the claim.
    pub fn finish_unknown(&self, pending: &mut PendingCall, now_ms: i64) -> Result<HttpResponse> {
        self.finish(pending, br#"{"result":{"resultStatus":"U","resultCode":"UNKNOWN_EXCEPTION","resultMessage":"temporary problem, please retry"}}"#, now_ms)
    }

    /// The configured largest inbound body ([`Config::max_body_bytes`]).
    pub fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }

    /// Counts and logs the answer `finish` gives.
    fn observe_answer(&self, pending: &PendingCall, outcome: &Outcome) {
        let status = outcome.status;
        self.metrics.inbound(pending.api.name(), status);
        let level = if status == "S" { Level::Info } else { Level::Warn };
        obs::event(level, TARGET, "inbound answer", || {
            let mut f = vec![("api", obs::Value::Label(pending.api.name()))];
            if let InboundRequest::NotifyCardRegistration(r) = &pending.request {
                f.push(("request_id", obs::Value::Id(Id::new(&r.request_id))));
            }
            f.push(("result", obs::Value::Label(status)));
            f.push(("result_code", obs::Value::Id(Id::new(&outcome.code))));
            f.push(("redelivered", obs::Value::Bool(pending.redelivered())));
            f.push(("latency_ms", obs::Value::Int(obs::elapsed_ms(pending.started))));
            f
        });
    }

    /// Deletes idempotency records older than the configured retention.
    pub fn purge_expired(&self, now_ms: i64) -> Result<usize> {
        let keep = i64::try_from(self.config.idempotency_retention.as_millis()).unwrap_or(i64::MAX);
        self.store.purge_inbound(now_ms.saturating_sub(keep))
    }

    /// HTTP 200 with JSON body, signed unless signing is off.
    fn respond(&self, uri: &str, body: Vec<u8>, now_ms: i64) -> HttpResponse {
        let c = &self.config;
        let mut headers = vec![(
            "Content-Type".to_string(),
            "application/json; charset=UTF-8".to_string(),
        )];
        if c.sign_responses {
            let time = format_request_time(now_ms, c.time_offset_minutes);
            // Signing with an already-loaded key cannot fail short of an aws-lc fault;
            // then the answer goes out unsigned rather than not at all.
            if let Ok(sig) = signature::sign_base64(&c.merchant_private_key, "POST", uri, &c.client_id, &time, &body) {
                headers.push(("Response-Time".to_string(), time));
                headers.push(("Client-Id".to_string(), c.client_id.clone()));
                headers.push(("Signature".to_string(), signature::header_value(&c.key_version, &sig)));
            }
        }
        HttpResponse {
            status: 200,
            headers,
            body,
        }
    }
}

/// The idempotency key of a `notifyCardRegistration`: (appId, requestId), collision-free.
pub fn claim_key(app_id: &str, request_id: &str) -> String {
    crate::store::key("alipayplus.notifyCardRegistration", &[app_id, request_id])
}

fn parse_request(api: InboundApi, body: &[u8]) -> Result<InboundRequest> {
    let d = Direction::Inbound;
    Ok(match api {
        InboundApi::NotifyCardRegistration => InboundRequest::NotifyCardRegistration(model::parse(body, d)?),
        InboundApi::InquireCardDetail => InboundRequest::InquireCardDetail(model::parse(body, d)?),
        InboundApi::UpdateCardDetail => InboundRequest::UpdateCardDetail(model::parse(body, d)?),
        InboundApi::InquireMemberAssets => InboundRequest::InquireMemberAssets(model::parse(body, d)?),
    })
}

/// The result an answer carries, for metrics and logs.
struct Outcome {
    /// `S`, `F`, `U`, or `?` for a stored answer that cannot be read.
    status: &'static str,
    code: String,
}

impl Outcome {
    /// The result of an answer stored earlier (read back from its body).
    fn of(body: &[u8]) -> Self {
        let result = serde_json::from_slice::<Value>(body).ok();
        let text = |p: &str| result.as_ref().and_then(|v| v.pointer(p)).and_then(Value::as_str);
        let status = match text("/result/resultStatus") {
            Some("S") => "S",
            Some("F") => "F",
            Some("U") => "U",
            _ => "?",
        };
        Outcome {
            status,
            code: text("/result/resultCode").unwrap_or_default().to_string(),
        }
    }
}

/// Checks the host's decision and serialises the answer body; also returns
/// the result it carries.
fn build_answer(api: InboundApi, decision: &[u8]) -> Result<(Vec<u8>, Outcome)> {
    let root = format!("{}Response", api.name());
    let value = crate::json::parse_strict(decision, &crate::validate::Path::root(&root))?;
    let Value::Object(mut map) = value else {
        return Err(Error::validation(root, "must be a JSON object", None));
    };
    let (result, outcome) = match map.shift_remove("result") {
        None => (
            serde_json::to_value(ResultInfo::success()).map_err(|e| Error::internal("answer", e))?,
            Outcome {
                status: "S",
                code: "SUCCESS".to_string(),
            },
        ),
        Some(Value::Object(mut r)) => {
            let text = |key: &str| r.get(key).and_then(Value::as_str).unwrap_or_default();
            let (status, allowed): (&'static str, &[&str]) = match text("resultStatus") {
                "S" => ("S", &["SUCCESS"]),
                "F" => ("F", &["PROCESS_FAIL", "PARAM_ILLEGAL", "ACCESS_DENIED"]),
                "U" => ("U", &["UNKNOWN_EXCEPTION"]),
                _ => {
                    return Err(Error::validation(
                        format!("{root}.result.resultStatus"),
                        "must be one of S, F, U",
                        None,
                    ));
                }
            };
            let code = text("resultCode").to_string();
            if !allowed.contains(&code.as_str()) {
                return Err(Error::validation(
                    format!("{root}.result.resultCode"),
                    format!("must be one of {} when resultStatus is {status}", allowed.join(", ")),
                    None,
                ));
            }
            if let Some(Value::String(m)) = r.get("resultMessage") {
                let t = truncate_message(m);
                r.insert("resultMessage".into(), Value::String(t));
            }
            (Value::Object(r), Outcome { status, code })
        }
        Some(_) => return Err(Error::validation(format!("{root}.result"), "must be an object", None)),
    };
    let mut ordered = Map::new();
    ordered.insert("result".into(), result);
    ordered.extend(map);
    let value = Value::Object(ordered);
    let d = Direction::Outbound;
    // Into the typed response (validates every limit), then compact JSON.
    fn typed<T: model::Payload>(v: Value, d: Direction) -> Result<Vec<u8>> {
        model::to_json(&model::from_json_value::<T>(v, d)?, d)
    }
    let body = match api {
        InboundApi::NotifyCardRegistration => typed::<NotifyCardRegistrationResponse>(value, d),
        InboundApi::InquireCardDetail => typed::<InquireCardDetailResponse>(value, d),
        InboundApi::UpdateCardDetail => typed::<UpdateCardDetailResponse>(value, d),
        InboundApi::InquireMemberAssets => typed::<InquireMemberAssetsResponse>(value, d),
    }?;
    Ok((body, outcome))
}
