//! The outbound `issueCard` client (`alipayplus-mpp.md` §4.7, §7.2, §8.2, §9).
//!
//! Life of a call: validate and serialise once → record in the durable outbox
//! (same requestId ⇒ same entry, same bytes) → attempt: fresh `Request-Time`,
//! sign, POST, verify the answer → `S` and `F` are final and stored; anything
//! ambiguous is retried with backoff until the budget runs out, and the entry
//! stays pending so a later call (or [`IssueCardClient::resume_pending`] after
//! a restart) finishes it with the very same body.

use super::config::Config;
use super::model::{self, Direction, IssueCardRequest, IssueCardResponse};
use super::signature::{self, SignatureFailure};
use super::time::format_request_time;
use crate::error::{Error, ErrorKind, RemoteDetail, Result};
use crate::http::{Header, HttpRequest, HttpResponse, Transport};
use crate::retry::Attempts;
use crate::store::{Attempt, OutboxEntry, OutboxState, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Outbox kind of issueCard entries.
pub const OUTBOX_KIND: &str = "alipayplus.issueCard";
/// restfulPath of issueCard.
pub const ISSUE_CARD_PATH: &str = "/v2/pds/memberships/issueCard";

/// A successful issueCard: the card number and the verified answer.
#[derive(Debug, Clone, PartialEq)]
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

/// Sends `issueCard` with retries and a durable outbox. Thread-safe.
pub struct IssueCardClient {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    transport: Transport,
    /// One lock per outbox id so two threads never send the same request at once.
    in_flight: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl std::fmt::Debug for IssueCardClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssueCardClient")
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

/// What one attempt's answer means.
enum Verdict {
    Success(IssuedCard),
    /// Final refusal: the verified (or unsigned F) answer body and its result.
    Failed(Vec<u8>, RemoteDetail),
    /// Outcome unknown: retry with the same body. The string says why.
    Retry(String, Option<RemoteDetail>),
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl IssueCardClient {
    /// Builds the client. Fails when `base_url` is missing or the transport cannot be built.
    pub fn new(config: Arc<Config>, store: Arc<dyn Store>) -> Result<Self> {
        config.check()?;
        if config.base_url.is_none() {
            return Err(Error::config("config.base_url: is required to call issueCard"));
        }
        let transport = Transport::new(&config.transport)?;
        Ok(IssueCardClient {
            config,
            store,
            transport,
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    /// Issues a card. Validation runs before anything is stored, signed or sent.
    ///
    /// * `Ok` — the platform answered `S` with a `cardNo` (verified).
    /// * `RemoteFailed` — the platform answered `F` (not rate limiting); final.
    /// * `RemoteUnknown` — no definite answer within the retry budget: call
    ///   again later with the same requestId; the same bytes will be re-sent.
    /// * `IdempotencyConflict` — this requestId was already used with another body.
    pub fn issue_card(&self, request: &IssueCardRequest) -> Result<IssuedCard> {
        let body = model::to_json(request, Direction::Outbound)?;
        let id = format!("{OUTBOX_KIND}/{}/{}", request.app_id, request.request_id);
        let now = now_ms();
        let stored = self.store.outbox_insert(&OutboxEntry {
            id: id.clone(),
            kind: OUTBOX_KIND.to_string(),
            target: format!("{}{ISSUE_CARD_PATH}", self.config.path_prefix),
            body: body.clone(),
            state: OutboxState::Pending,
            attempts: 0,
            result: None,
            last_error: None,
            created_ms: now,
            updated_ms: now,
            fingerprint: crate::crypto::sha256_hex(&body),
            fixed_headers: Vec::new(),
        })?;
        if stored.body != body {
            return Err(Error::new(
                ErrorKind::IdempotencyConflict,
                format!(
                    "issueCard.requestId: {} was already used with a different request body; \
                     resend the original payload or use a new requestId",
                    request.request_id
                ),
            )
            .with_field("issueCard.requestId"));
        }
        self.deliver(&id)
    }

    /// Re-sends every pending issueCard (e.g. at start-up after a crash).
    /// Returns one outcome per entry, keyed by outbox id.
    pub fn resume_pending(&self) -> Result<Vec<(String, Result<IssuedCard>)>> {
        let pending = self.store.outbox_pending(OUTBOX_KIND)?;
        Ok(pending
            .into_iter()
            .map(|e| (e.id.clone(), self.deliver(&e.id)))
            .collect())
    }

    fn lock_for(&self, id: &str) -> Result<Arc<Mutex<()>>> {
        let mut map = self
            .in_flight
            .lock()
            .map_err(|_| Error::internal("issueCard", "lock poisoned"))?;
        Ok(map.entry(id.to_string()).or_default().clone())
    }

    /// Runs attempts for one outbox entry until a final answer or the budget ends.
    fn deliver(&self, id: &str) -> Result<IssuedCard> {
        let lock = self.lock_for(id)?;
        let _guard = lock.lock().map_err(|_| Error::internal("issueCard", "lock poisoned"))?;
        // Re-read under the lock: another thread may have finished it meanwhile.
        let entry = self
            .store
            .outbox_get(id)?
            .ok_or_else(|| Error::internal("issueCard", format!("outbox entry {id} vanished")))?;
        match entry.state {
            OutboxState::Succeeded => return self.replay_success(&entry),
            OutboxState::Failed => return Err(self.replay_failure(&entry)),
            OutboxState::Pending => {}
        }
        let mut budget = Attempts::new(self.config.retry);
        let mut number = entry.attempts;
        loop {
            budget.record();
            number += 1;
            let started = now_ms();
            let verdict = self.attempt(&entry);
            let outcome = match &verdict {
                Verdict::Success(_) => "S SUCCESS".to_string(),
                Verdict::Failed(_, r) => format!("F {}", r.code),
                Verdict::Retry(why, _) => why.clone(),
            };
            let last_error = match &verdict {
                Verdict::Success(_) => None,
                _ => Some(outcome.as_str()),
            };
            self.store.outbox_record_attempt(
                id,
                &Attempt {
                    number,
                    started_ms: started,
                    outcome: outcome.clone(),
                },
                last_error,
            )?;
            match verdict {
                Verdict::Success(card) => {
                    self.store
                        .outbox_finish(id, OutboxState::Succeeded, &card.response_body, now_ms())?;
                    return Ok(card);
                }
                Verdict::Failed(body, remote) => {
                    self.store.outbox_finish(id, OutboxState::Failed, &body, now_ms())?;
                    return Err(failed_error(remote));
                }
                Verdict::Retry(why, remote) => match budget.next_delay() {
                    Some(delay) => std::thread::sleep(delay),
                    None => {
                        let mut err = Error::new(
                            ErrorKind::RemoteUnknown,
                            format!(
                                "issueCard outcome unknown after {} attempt(s) in this call (last: {why}); \
                                 retry later with the same requestId",
                                budget.made()
                            ),
                        );
                        if let Some(r) = remote {
                            err = err.with_remote(r);
                        }
                        return Err(err);
                    }
                },
            }
        }
    }

    fn attempt(&self, entry: &OutboxEntry) -> Verdict {
        let c = &self.config;
        let time = format_request_time(now_ms(), c.time_offset_minutes);
        let headers = match signed_headers(c, &entry.target, &entry.body, &time) {
            Ok(h) => h,
            Err(e) => return Verdict::Retry(format!("signing failed: {}", e.message()), None),
        };
        let base = c.base_url.as_deref().unwrap_or_default();
        match self
            .transport
            .send(&format!("{base}{}", entry.target), "POST", &headers, &entry.body)
        {
            Ok(resp) => self.judge(entry, resp),
            Err(e) if e.kind() == ErrorKind::Timeout => Verdict::Retry("timeout".into(), None),
            Err(e) => Verdict::Retry(format!("transport: {}", e.message()), None),
        }
    }

    /// Verifies and classifies one HTTP answer (§4.7 table, §9.1).
    fn judge(&self, entry: &OutboxEntry, resp: HttpResponse) -> Verdict {
        if resp.status != 200 {
            return Verdict::Retry(format!("http {}", resp.status), None);
        }
        let signed = match self.verify_response(entry, &resp) {
            Ok(signed) => signed,
            Err(f) => return Verdict::Retry(format!("response signature invalid ({})", f.reason()), None),
        };
        let parsed: IssueCardResponse = match model::parse(&resp.body, Direction::Inbound) {
            Ok(p) => p,
            Err(e) => return Verdict::Retry(format!("unparsable response: {}", e.message()), None),
        };
        let remote = RemoteDetail {
            code: parsed.result.result_code.clone(),
            message: parsed.result.result_message.clone(),
            status: parsed.result.result_status.clone(),
            http_status: resp.status,
            detail: String::new(),
        };
        match parsed.result.result_status.as_str() {
            "S" if !signed => Verdict::Retry("unsigned success".into(), Some(remote)),
            "S" => match parsed.card_no.clone() {
                Some(card_no) if !card_no.is_empty() => Verdict::Success(IssuedCard {
                    card_no,
                    response: parsed,
                    response_body: resp.body,
                    signed,
                }),
                _ => Verdict::Retry("S without cardNo".into(), Some(remote)),
            },
            "F" if remote.code == "REQUEST_TRAFFIC_EXCEED_LIMIT" => {
                Verdict::Retry("F REQUEST_TRAFFIC_EXCEED_LIMIT".into(), Some(remote))
            }
            "F" => Verdict::Failed(resp.body, remote),
            other => Verdict::Retry(format!("{other} {}", remote.code).trim().to_string(), Some(remote)),
        }
    }

    /// `Ok(true)` verified, `Ok(false)` unsigned (allowed only for F/U, the
    /// caller checks), `Err` for a bad or half-present signature.
    fn verify_response(&self, entry: &OutboxEntry, resp: &HttpResponse) -> std::result::Result<bool, SignatureFailure> {
        let c = &self.config;
        match (resp.header("Signature"), resp.header("Response-Time")) {
            (None, None) => Ok(false),
            (Some(sig), Some(time)) => {
                let client_id = resp.header("Client-Id").unwrap_or(&c.client_id);
                if client_id != c.client_id {
                    return Err(SignatureFailure::UnknownClientId);
                }
                let parsed = signature::parse_header(sig)?;
                let key = c.platform_key(parsed.key_version.as_deref());
                signature::verify(key, Some(sig), "POST", &entry.target, client_id, time, &resp.body)?;
                Ok(true)
            }
            _ => Err(SignatureFailure::HeaderMalformed),
        }
    }

    fn replay_success(&self, entry: &OutboxEntry) -> Result<IssuedCard> {
        let body = entry.result.clone().unwrap_or_default();
        let response: IssueCardResponse = model::parse(&body, Direction::Inbound)?;
        let card_no = response.card_no.clone().unwrap_or_default();
        Ok(IssuedCard {
            card_no,
            response,
            response_body: body,
            signed: true,
        })
    }

    fn replay_failure(&self, entry: &OutboxEntry) -> Error {
        let body = entry.result.clone().unwrap_or_default();
        match model::parse::<IssueCardResponse>(&body, Direction::Inbound) {
            Ok(r) => failed_error(RemoteDetail {
                code: r.result.result_code,
                message: r.result.result_message,
                status: r.result.result_status,
                http_status: 200,
                detail: String::new(),
            }),
            Err(e) => e,
        }
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
