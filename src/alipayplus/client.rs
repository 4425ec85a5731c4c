//! The outbound `issueCard` client (`alipayplus-mpp.md` §4.7, §7.2, §8.2, §9).
//!
//! Life of a call: validate and serialise once → the delivery engine
//! ([`crate::outbox`]) records it in the durable outbox (same (appId,
//! requestId) ⇒ same entry, same bytes) → attempt: fresh `Request-Time`, sign,
//! POST, verify the answer → `S` and `F` are final and stored; anything else
//! is retried with backoff until the budget runs out, and the entry stays
//! pending so a later call (or [`IssueCardClient::resume_pending`] after a
//! restart) finishes it with the very same body. The platform returns the same
//! result for the same requestId, so a re-send after an ambiguous outcome is
//! harmless: issueCard's reconcile is a re-send.

use super::config::Config;
use super::model::{self, Direction, IssueCardRequest, IssueCardResponse};
use super::signature::{self, SignatureFailure};
use super::time::format_request_time;
use crate::error::{Error, ErrorKind, RemoteDetail, Result};
use crate::http::{Header, HttpRequest, HttpResponse, Transport};
use crate::outbox::{
    AttemptContext, CallOptions, Delivery, Engine, Outcome, Outgoing, Prepared, Progress, Reply, Verdict,
};
use crate::store::{OutboxEntry, Store};
use std::sync::Arc;
use std::time::Duration;

/// Outbox kind of issueCard entries.
pub const OUTBOX_KIND: &str = "alipayplus.issueCard";
/// restfulPath of issueCard.
pub const ISSUE_CARD_PATH: &str = "/v2/pds/memberships/issueCard";

/// A successful issueCard: the card number and the verified answer.
/// `Debug` hides the card number and shows only the size of the body.
#[derive(Clone, PartialEq)]
pub struct IssuedCard {
    /// `cardNo` assigned by the platform.
    pub card_no: String,
    /// The parsed answer.
    pub response: IssueCardResponse,
    /// The verified answer body, byte for byte.
    pub response_body: Vec<u8>,
    /// Whether the answer carried a verified signature (always true for `S`).
    pub signed: bool,
}

crate::redact::redacted_debug!(IssuedCard {
    card_no: hide,
    response: show,
    response_body: bytes,
    signed: show
});

/// Sends `issueCard` through the delivery engine ([`crate::outbox`]). Thread-safe.
pub struct IssueCardClient {
    config: Arc<Config>,
    engine: Engine,
}

impl std::fmt::Debug for IssueCardClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssueCardClient")
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

/// How long one attempt may hold its delivery lease: connect, send, receive, with margin.
pub(crate) fn attempt_lease(t: &crate::http::TransportConfig) -> Duration {
    t.connect_timeout + t.read_timeout * 2 + Duration::from_secs(10)
}

impl IssueCardClient {
    /// Builds the client. Fails when `base_url` is missing or the transport cannot be built.
    pub fn new(config: Arc<Config>, store: Arc<dyn Store>) -> Result<Self> {
        config.check()?;
        if config.base_url.is_none() {
            return Err(Error::config("config.base_url: is required to call issueCard"));
        }
        let transport = Transport::new(&config.transport)?;
        let engine = Engine::new(
            store,
            transport,
            config.clock.clone(),
            config.retry,
            attempt_lease(&config.transport),
        );
        Ok(IssueCardClient { config, engine })
    }

    /// The same client counting into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::obs::Metrics>) -> Self {
        self.engine = self.engine.with_metrics(metrics);
        self
    }

    /// Issues a card. Validation runs before anything is stored, signed or sent.
    ///
    /// * `Ok` — the platform answered `S` with a `cardNo` (verified).
    /// * `RemoteFailed` — the platform answered `F` (not rate limiting); final.
    /// * `RemoteUnknown` — no definite answer within the retry budget: call
    ///   again later with the same requestId; the same bytes will be re-sent.
    ///   [`Error::pending`] says where the request stands.
    /// * `IdempotencyConflict` — this requestId was already used with another body.
    pub fn issue_card(&self, request: &IssueCardRequest) -> Result<IssuedCard> {
        self.issue_card_with(request, &CallOptions::default())
    }

    /// [`Self::issue_card`] with a per-call deadline or cancellation.
    pub fn issue_card_with(&self, request: &IssueCardRequest, options: &CallOptions) -> Result<IssuedCard> {
        let entry = self.entry(request)?;
        let outcome = self
            .engine
            .submit(entry, "issueCard.requestId", &self.delivery(), options)
            .map_err(|e| e.with_request_id(&request.request_id))?;
        issued(outcome)
    }

    /// Bring your own transport, step 1: validates and records `request`
    /// exactly as [`Self::issue_card`] does (the one durable commit), then
    /// returns the signed request to send over the caller's own HTTP stack
    /// (`Progress::Send`), or the outcome when the requestId is already final
    /// (`Progress::Done`, no network). Errors as for `issue_card`; a requestId
    /// another caller is delivering right now is `RemoteUnknown` at once.
    /// See [`Engine::prepare`] for the lease the exchange must fit in.
    pub fn prepare_issue_card(&self, request: &IssueCardRequest) -> Result<Progress<IssuedCard>> {
        let entry = self.entry(request)?;
        self.engine
            .prepare(entry, "issueCard.requestId", &self.delivery())
            .map_err(|e| e.with_request_id(&request.request_id))?
            .try_map(issued)
    }

    /// Bring your own transport, step 2: verifies and judges the caller's
    /// `reply` to `prepared` as `issue_card` judges its own transport's
    /// answers, and returns the final result — the very one `issue_card`
    /// returns for the same answer — or the next request to send (a retry,
    /// after [`Prepared::wait`]). `RemoteUnknown` when the retry budget is
    /// spent (the entry stays pending).
    pub fn complete_issue_card(&self, prepared: Prepared, reply: Reply) -> Result<Progress<IssuedCard>> {
        prepared.check_kind(OUTBOX_KIND, "prepare_issue_card")?;
        let request_id = request_id_in(prepared.entry_body()).unwrap_or_default();
        self.engine
            .complete(prepared, reply, &self.delivery())
            .map_err(|e| e.with_request_id(&request_id))?
            .try_map(issued)
    }

    /// The outbox entry of `request` (validated and serialised once).
    fn entry(&self, request: &IssueCardRequest) -> Result<OutboxEntry> {
        let body = model::to_json(request, Direction::Outbound)?;
        Ok(OutboxEntry::new(
            outbox_id(&request.app_id, &request.request_id),
            OUTBOX_KIND,
            "POST",
            format!("{}{ISSUE_CARD_PATH}", self.config.path_prefix),
            body.clone(),
            crate::crypto::sha256_hex(&body),
            self.config.clock.now_ms(),
        ))
    }

    /// Re-sends every pending issueCard nobody else is delivering (e.g. at
    /// start-up after a crash). Returns one outcome per entry, keyed by outbox id.
    pub fn resume_pending(&self) -> Result<Vec<(String, Result<IssuedCard>)>> {
        let outcomes = self
            .engine
            .resume_pending(OUTBOX_KIND, &self.delivery(), &CallOptions::default())?;
        Ok(outcomes
            .into_iter()
            .map(|(id, r)| {
                let r = r.map_err(|e| self.name_request(e)).and_then(issued);
                (id, r)
            })
            .collect())
    }

    /// Delivers (or replays) one outbox entry by id.
    pub fn resume(&self, id: &str, options: &CallOptions) -> Result<IssuedCard> {
        issued(
            self.engine
                .deliver(id, &self.delivery(), options)
                .map_err(|e| self.name_request(e))?,
        )
    }

    /// A `RemoteUnknown` from a resume names the entry's `requestId`, read
    /// back from the stored request (what the caller would repeat).
    fn name_request(&self, e: Error) -> Error {
        let Some(id) = e
            .pending()
            .filter(|p| p.request_id.is_empty())
            .map(|p| p.outbox_id.clone())
        else {
            return e;
        };
        let request_id = self
            .engine
            .store()
            .outbox_get(&id)
            .ok()
            .flatten()
            .and_then(|entry| request_id_in(&entry.body));
        match request_id {
            Some(r) => e.with_request_id(&r),
            None => e,
        }
    }

    /// The delivery engine (its store holds the outbox).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn delivery(&self) -> IssueCardDelivery<'_> {
        IssueCardDelivery { config: &self.config }
    }
}

/// The `requestId` of a stored issueCard body.
fn request_id_in(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("requestId")?.as_str().map(str::to_string)
}

/// The caller's view of a final entry.
fn issued(outcome: Outcome) -> Result<IssuedCard> {
    let failed = outcome.failed();
    let body = outcome.entry.result.unwrap_or_default();
    match failed {
        false => {
            let response: IssueCardResponse = model::parse(&body, Direction::Inbound)?;
            let card_no = response.card_no.clone().unwrap_or_default();
            Ok(IssuedCard {
                card_no,
                response,
                response_body: body,
                signed: true,
            })
        }
        true => Err(match model::parse::<IssueCardResponse>(&body, Direction::Inbound) {
            Ok(r) => failed_error(RemoteDetail {
                code: r.result.result_code,
                // The gateway's echoed string-to-sign holds the body: never in an error.
                message: crate::diagnose::alipay_message_without_echo(&r.result.result_message),
                status: r.result.result_status,
                http_status: 200,
                detail: r
                    .extra
                    .get("cardbridge_diagnosis")
                    .map(|d| serde_json::json!({"cardbridge_diagnosis": d}).to_string())
                    .unwrap_or_default(),
            }),
            Err(e) => e,
        }),
    }
}

/// The outbox id of an issueCard: (appId, requestId), collision-free.
pub fn outbox_id(app_id: &str, request_id: &str) -> String {
    crate::store::key(OUTBOX_KIND, &[app_id, request_id])
}

/// issueCard as the engine sees it: sign with a fresh `Request-Time`; the
/// platform's idempotency by requestId makes every re-send harmless, so a
/// reconcile is a re-send.
struct IssueCardDelivery<'a> {
    config: &'a Config,
}

impl Delivery for IssueCardDelivery<'_> {
    fn sign(&self, entry: &OutboxEntry, ctx: &AttemptContext) -> Result<Outgoing> {
        let c = self.config;
        let time = format_request_time(ctx.now_ms, c.time_offset_minutes);
        let headers = signed_headers(c, &entry.target, &entry.body, &time)?;
        let base = c.base_url.as_deref().unwrap_or_default();
        Ok(Outgoing {
            method: "POST".to_string(),
            url: format!("{base}{}", entry.target),
            headers,
            body: entry.body.clone(),
        })
    }

    fn classify(&self, entry: &OutboxEntry, sent: &Outgoing, resp: HttpResponse) -> Verdict {
        let clock = crate::diagnose::platform_clock_offset(&resp.headers, self.config.clock.now_ms());
        let verdict = judge(self.config, &entry.target, resp);
        with_sign_diagnosis(verdict, &entry.target, sent, clock.map(|(_, off)| off))
    }

    fn key_name(&self) -> &'static str {
        "requestId"
    }
}

/// A refusal whose message echoes the gateway's string-to-sign
/// ("网关生成的验签字符串为…") gets our diagnosis added to the stored answer
/// (as top-level `cardbridge_diagnosis`): the echo compared part by part
/// with what we signed for `sent` (issue 13.2).
/// A refusal of the request itself ([`CLOCK_REFUSAL_CODES`]) without an echo
/// gets one when the platform's `Response-Time` is more than 5 minutes from
/// our clock (the offset names the cause).
/// Codes under which the gateway refuses a request for its signature or
/// headers, where a skewed `Request-Time` may be the reason (§9.2; the
/// platform's skew window is UNVERIFIED).
const CLOCK_REFUSAL_CODES: [&str; 3] = ["INVALID_SIGNATURE", "ACCESS_DENIED", "PARAM_ILLEGAL"];

fn with_sign_diagnosis(verdict: Verdict, target: &str, sent: &Outgoing, clock_offset_ms: Option<i64>) -> Verdict {
    let Verdict::Failed { result, remote, note } = verdict else {
        return verdict;
    };
    let mut result = result;
    let request = sent.as_received_at(target.to_string());
    let diagnosis = match crate::diagnose::alipay_sign_refusal(&request, &result) {
        Some(d) => Some(d.with_clock(clock_offset_ms)),
        // A refusal of the request itself (not a business one) may be the clock.
        None if CLOCK_REFUSAL_CODES.contains(&remote.code.as_str()) => {
            crate::diagnose::OutboundDiagnosis::clock_only(clock_offset_ms)
        }
        None => None,
    };
    if let Some(d) = diagnosis
        && let Ok(mut answer) = serde_json::from_slice::<serde_json::Value>(&result)
        && let Some(obj) = answer.as_object_mut()
    {
        obj.insert("cardbridge_diagnosis".into(), d.to_json());
        result = answer.to_string().into_bytes();
    }
    Verdict::Failed { result, remote, note }
}

fn retry(why: impl Into<String>, remote: Option<RemoteDetail>) -> Verdict {
    Verdict::Retry {
        why: why.into(),
        remote,
        ambiguous: true,
    }
}

/// Verifies and classifies one HTTP answer to an issueCard sent to `target`
/// (§4.7 table, §9.1): what the delivery engine does with it. Public so an
/// answer received over a transport of the host's own can be judged the same way.
pub fn judge(c: &Config, target: &str, resp: HttpResponse) -> Verdict {
    if resp.status != 200 {
        return retry(format!("http {}", resp.status), None);
    }
    let signed = match verify_response(c, target, &resp) {
        Ok(signed) => signed,
        Err(f) => return retry(format!("response signature invalid ({})", f.reason()), None),
    };
    let parsed: IssueCardResponse = match model::parse(&resp.body, Direction::Inbound) {
        Ok(p) => p,
        Err(e) => return retry(format!("unparsable response: {}", e.message()), None),
    };
    let remote = RemoteDetail {
        code: parsed.result.result_code.clone(),
        message: parsed.result.result_message.clone(),
        status: parsed.result.result_status.clone(),
        http_status: resp.status,
        detail: String::new(),
    };
    match parsed.result.result_status.as_str() {
        "S" if !signed => retry("unsigned success", Some(remote)),
        "S" => match parsed.card_no.as_deref() {
            Some(card_no) if !card_no.is_empty() => Verdict::Success {
                reference: resp.header("Tracer-Id").map(str::to_string),
                result: resp.body,
                note: "S SUCCESS".into(),
            },
            _ => retry("S without cardNo", Some(remote)),
        },
        "F" if remote.code == "REQUEST_TRAFFIC_EXCEED_LIMIT" => retry("F REQUEST_TRAFFIC_EXCEED_LIMIT", Some(remote)),
        "F" => Verdict::Failed {
            note: format!("F {}", remote.code),
            result: resp.body,
            remote,
        },
        other => retry(format!("{other} {}", remote.code).trim().to_string(), Some(remote)),
    }
}

/// `Ok(true)` verified, `Ok(false)` unsigned (allowed only for F/U, the
/// caller checks), `Err` for a bad or half-present signature.
fn verify_response(c: &Config, target: &str, resp: &HttpResponse) -> std::result::Result<bool, SignatureFailure> {
    match (resp.header("Signature"), resp.header("Response-Time")) {
        (None, None) => Ok(false),
        (Some(sig), Some(time)) => {
            let client_id = resp.header("Client-Id").unwrap_or(&c.client_id);
            if client_id != c.client_id {
                return Err(SignatureFailure::UnknownClientId);
            }
            let parsed = signature::parse_header(sig)?;
            let key = c.platform_key(parsed.key_version.as_deref());
            signature::verify(key, Some(sig), "POST", target, client_id, time, &resp.body)?;
            Ok(true)
        }
        _ => Err(SignatureFailure::HeaderMalformed),
    }
}

/// The four headers of a signed Alipay+ request (§3.1), for `body` sent to `target`.
fn signed_headers(c: &Config, target: &str, body: &[u8], time: &str) -> Result<Vec<Header>> {
    let sig = signature::sign_base64(&c.merchant_private_key, "POST", target, &c.client_id, time, body)?;
    Ok(vec![
        (
            "Content-Type".to_string(),
            "application/json; charset=UTF-8".to_string(),
        ),
        ("Client-Id".to_string(), c.client_id.clone()),
        ("Request-Time".to_string(), time.to_string()),
        ("Signature".to_string(), signature::header_value(&c.key_version, &sig)),
    ])
}

/// Validates, serialises and signs an issueCard request exactly as the client
/// sends it, without storing or sending it (for inspection and benchmarks).
pub fn build_signed_request(c: &Config, request: &IssueCardRequest, request_time: &str) -> Result<HttpRequest> {
    let body = model::to_json(request, Direction::Outbound)?;
    let target = format!("{}{ISSUE_CARD_PATH}", c.path_prefix);
    let headers = signed_headers(c, &target, &body, request_time)?;
    Ok(HttpRequest {
        method: "POST".to_string(),
        target,
        headers,
        body,
    })
}

fn failed_error(remote: RemoteDetail) -> Error {
    Error::new(
        ErrorKind::RemoteFailed,
        format!("issueCard refused by the platform: {} {}", remote.code, remote.message),
    )
    .with_remote(remote)
}
