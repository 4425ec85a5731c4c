//! The outbound WeChat Pay client: `confirm` through the durable outbox, the
//! rest of the user-card lifecycle (get, update, points sync) and the
//! platform-certificate download (`wechatpay-card-member.md` §5–§10).
//!
//! Life of a `confirm`: validate the host's cleartext input, encrypt the
//! sensitive fields once (OAEP is randomised, so the encrypted body is stored
//! and re-sent byte-identical), record it in the outbox keyed by
//! (card_id, user_card_code) → each attempt signs afresh (timestamp, nonce) →
//! 2xx answers must verify; 202, 429, 5xx and network errors are retried with
//! backoff; other 4xx are final. When the outcome stays ambiguous, the card is
//! read back (`GET /user-cards/{code}`) and `EFFECTIVE` counts as confirmed.

use super::config::Config;
use super::keyring::KeyRing;
use super::model::{self, PreparedRequest};
use super::verify::{self, VerifyOptions, VerifyReason};
use crate::crypto::{oaep, sha256_hex};
use crate::error::{Error, ErrorKind, RemoteDetail, Result};
use crate::http::{Header, HttpResponse, Transport, find_header};
use crate::retry::Attempts;
use crate::store::{Attempt, OutboxEntry, OutboxState, Store};
use crate::validate::Path;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// Outbox kind of confirm entries.
pub const CONFIRM_KIND: &str = "wechatpay.confirm";

/// A verified WeChat Pay answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiAnswer {
    /// HTTP status (2xx).
    pub status: u16,
    /// The answer as JSON with sensitive fields decrypted (empty object for 204).
    pub json: Value,
    /// Paths of sensitive fields that could not be decrypted (left as received).
    pub undecryptable: Vec<String>,
    /// `Request-ID` of the answer, for support tickets.
    pub request_id: Option<String>,
}

/// Certificates and when they were last fetched.
#[derive(Debug)]
struct KeyState {
    ring: KeyRing,
    fetched: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// Keys shared by the client and the callback handler.
#[derive(Debug)]
pub struct SharedKeys(RwLock<KeyState>);

impl SharedKeys {
    /// Starts from the configured keys.
    pub fn new(ring: KeyRing) -> Self {
        SharedKeys(RwLock::new(KeyState {
            ring,
            fetched: None,
            last_attempt: None,
        }))
    }
    /// A snapshot of the current key ring.
    pub fn ring(&self) -> KeyRing {
        self.0.read().map(|s| s.ring.clone()).unwrap_or_default()
    }
}

/// What one attempt's answer means.
enum Verdict {
    Success(ApiAnswer, Vec<u8>),
    Failed(RemoteDetail),
    Retry(String, Option<RemoteDetail>),
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The WeChat Pay card-member client. Thread-safe.
pub struct WechatClient {
    config: Arc<Config>,
    keys: Arc<SharedKeys>,
    store: Arc<dyn Store>,
    transport: Transport,
    in_flight: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl std::fmt::Debug for WechatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatClient")
            .field("mchid", &self.config.signer.mchid())
            .finish_non_exhaustive()
    }
}

impl WechatClient {
    /// Builds the client.
    pub fn new(config: Arc<Config>, keys: Arc<SharedKeys>, store: Arc<dyn Store>) -> Result<Self> {
        config.check()?;
        let transport = Transport::new(&config.transport)?;
        Ok(WechatClient {
            config,
            keys,
            store,
            transport,
            in_flight: Mutex::new(HashMap::new()),
        })
    }

    /// Syncs the card-opening result (`confirm`, §5). `input` is one JSON
    /// object: `user_card_code`, `card_id`, and the body members with
    /// sensitive fields in cleartext. The same (card_id, user_card_code) is
    /// confirmed at most once: repeats return the stored answer, and a repeat
    /// with different content is an `IdempotencyConflict`.
    pub fn confirm(&self, input: &[u8]) -> Result<ApiAnswer> {
        let value: Value = serde_json::from_slice(input).map_err(|e| {
            Error::new(ErrorKind::InvalidJson, format!("confirm: not valid JSON ({e})")).with_field("confirm")
        })?;
        let key_part = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let id = format!("{CONFIRM_KIND}/{}/{}", key_part("card_id"), key_part("user_card_code"));
        let fingerprint = sha256_hex(&serde_json::to_vec(&value).unwrap_or_default());
        let now = now_unix();
        let (serial, key) = self.keys.ring().encryption_key(now)?;
        let mut encrypt = |path: &Path, clear: &str| -> Result<String> {
            oaep::encrypt(&key, clear.as_bytes()).map_err(|e| {
                let limit = oaep::max_plaintext_len(&key);
                if e.kind() == ErrorKind::PlaintextTooLong {
                    path.error(
                        format!("must be at most {limit} bytes to be encrypted"),
                        Some(limit.to_string()),
                    )
                } else {
                    e
                }
            })
        };
        // Validate (and encrypt) before looking at the outbox, so bad input is always reported as such.
        let prepared = model::prepare_confirm(input, self.config.wire, &mut encrypt)?;
        if let Some(existing) = self.store.outbox_get(&id)? {
            return self.resume_entry(existing, &fingerprint);
        }
        let now_ms = now * 1000;
        // Wechatpay-Serial is always sent on confirm (§5.2), naming the encrypting key.
        let stored = self.store.outbox_insert(&OutboxEntry {
            id: id.clone(),
            kind: CONFIRM_KIND.to_string(),
            target: prepared.target,
            body: prepared.body,
            state: OutboxState::Pending,
            attempts: 0,
            result: None,
            last_error: None,
            created_ms: now_ms,
            updated_ms: now_ms,
            fingerprint: fingerprint.clone(),
            fixed_headers: vec![("Wechatpay-Serial".to_string(), serial)],
        })?;
        self.resume_entry(stored, &fingerprint)
    }

    /// Re-sends every pending confirm (e.g. at start-up after a crash).
    pub fn resume_pending(&self) -> Result<Vec<(String, Result<ApiAnswer>)>> {
        let pending = self.store.outbox_pending(CONFIRM_KIND)?;
        Ok(pending
            .into_iter()
            .map(|e| {
                let fp = e.fingerprint.clone();
                (e.id.clone(), self.resume_entry(e, &fp))
            })
            .collect())
    }

    fn resume_entry(&self, entry: OutboxEntry, fingerprint: &str) -> Result<ApiAnswer> {
        if entry.fingerprint != fingerprint {
            return Err(Error::new(
                ErrorKind::IdempotencyConflict,
                "confirm: this user card was already confirmed (or is being confirmed) with different content",
            )
            .with_field("confirm.user_card_code"));
        }
        let lock = {
            let mut map = self
                .in_flight
                .lock()
                .map_err(|_| Error::internal("confirm", "lock poisoned"))?;
            map.entry(entry.id.clone()).or_default().clone()
        };
        let _guard = lock.lock().map_err(|_| Error::internal("confirm", "lock poisoned"))?;
        let entry = self.store.outbox_get(&entry.id)?.unwrap_or(entry);
        match entry.state {
            OutboxState::Succeeded => return self.answer_from_stored(entry.result.as_deref().unwrap_or_default()),
            OutboxState::Failed => {
                let body = entry.result.unwrap_or_default();
                return Err(failed_error(remote_from_error_body(400, &body)));
            }
            OutboxState::Pending => {}
        }
        // An earlier attempt may have landed before a crash or a lost answer: read the card back
        // first, so a confirm that already took effect is never sent a second time.
        if entry.attempts > 0 {
            if let Some((answer, raw)) = self.reconcile(&entry)? {
                self.store
                    .outbox_finish(&entry.id, OutboxState::Succeeded, &raw, now_unix() * 1000)?;
                return Ok(answer);
            }
        }
        let mut number = entry.attempts;
        let outcome = self.send_with_retries("POST", &entry.target, &entry.body, &entry.fixed_headers, |outcome| {
            number += 1;
            let attempt = Attempt {
                number,
                started_ms: now_unix() * 1000,
                outcome: outcome.to_string(),
            };
            let last_error = (!outcome.starts_with("2")).then_some(outcome);
            self.store.outbox_record_attempt(&entry.id, &attempt, last_error)
        });
        match outcome {
            Ok((answer, raw)) => {
                self.store
                    .outbox_finish(&entry.id, OutboxState::Succeeded, &raw, now_unix() * 1000)?;
                Ok(answer)
            }
            Err(e) if e.kind() == ErrorKind::RemoteFailed => {
                let r = e.remote().cloned().unwrap_or_default();
                let body = serde_json::json!({"code": r.code, "message": r.message}).to_string();
                self.store
                    .outbox_finish(&entry.id, OutboxState::Failed, body.as_bytes(), now_unix() * 1000)?;
                Err(e)
            }
            Err(e) => match self.reconcile(&entry)? {
                Some((answer, raw)) => {
                    self.store
                        .outbox_finish(&entry.id, OutboxState::Succeeded, &raw, now_unix() * 1000)?;
                    Ok(answer)
                }
                None => Err(e),
            },
        }
    }

    /// After an ambiguous confirm: read the card back; `EFFECTIVE` means our
    /// SUCCESS confirm landed (§5.7).
    fn reconcile(&self, entry: &OutboxEntry) -> Result<Option<(ApiAnswer, Vec<u8>)>> {
        let body: Value = serde_json::from_slice(&entry.body).unwrap_or_default();
        if body.get("user_card_confirm_state").and_then(Value::as_str) != Some("CREATE_CARD_SUCCESS") {
            return Ok(None);
        }
        let code = entry.target.split('/').rev().nth(1).unwrap_or_default();
        let card_id = entry
            .target
            .split("card_id=")
            .nth(1)
            .unwrap_or_default()
            .split('&')
            .next()
            .unwrap_or_default();
        let query = serde_json::json!({
            "user_card_code": percent_encoding::percent_decode_str(code).decode_utf8_lossy(),
            "card_id": percent_encoding::percent_decode_str(card_id).decode_utf8_lossy(),
            "brand_id": body.get("brand_id").cloned().unwrap_or_default(),
            "openid": body.get("openid").cloned().unwrap_or_default(),
        });
        let Ok(prepared) = model::prepare_get_user_card(query.to_string().as_bytes()) else {
            return Ok(None);
        };
        match self.send_with_retries(prepared.method, &prepared.target, &[], &[], |_| Ok(())) {
            Ok((answer, raw)) if answer.json.get("user_card_state").and_then(Value::as_str) == Some("EFFECTIVE") => {
                Ok(Some((answer, raw)))
            }
            _ => Ok(None),
        }
    }

    /// Reads one user card (`GET /user-cards/{code}?brand_id&card_id&openid`).
    pub fn get_user_card(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.send_prepared(model::prepare_get_user_card(input)?)
    }

    /// Updates a user card (`PATCH /user-cards/{code}?card_id`); sensitive
    /// fields in cleartext are encrypted here.
    pub fn update_user_card(&self, input: &[u8]) -> Result<ApiAnswer> {
        let (serial, key) = self.keys.ring().encryption_key(now_unix())?;
        let mut encrypt = |_: &Path, clear: &str| oaep::encrypt(&key, clear.as_bytes());
        let prepared = model::prepare_update_user_card(input, self.config.wire, &mut encrypt)?;
        let headers = if prepared.encrypted {
            vec![("Wechatpay-Serial".to_string(), serial)]
        } else {
            Vec::new()
        };
        self.send_with_retries(prepared.method, &prepared.target, &prepared.body, &headers, |_| Ok(()))
            .map(|(a, _)| a)
    }

    /// Syncs a user's point balance (`POST /user-points/sync`).
    pub fn sync_user_points(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.send_prepared(model::prepare_sync_points(input)?)
    }

    fn send_prepared(&self, p: PreparedRequest) -> Result<ApiAnswer> {
        self.send_with_retries(p.method, &p.target, &p.body, &[], |_| Ok(()))
            .map(|(a, _)| a)
    }

    /// Downloads `/v3/certificates`, authenticates each with the APIv3 key,
    /// verifies the answer with the certificate it names, and installs them.
    pub fn refresh_certificates(&self) -> Result<usize> {
        let now = now_unix();
        let (status, headers, body) = self.send_once("GET", "/v3/certificates", &[], &[], false)?;
        if status == 404 {
            return Err(Error::config(
                "WeChat Pay has no platform certificates for this merchant (404); configure the WeChat Pay public key instead",
            )
            .with_remote(remote_from_error_body(status, &body)));
        }
        if !(200..300).contains(&status) {
            return Err(Error::new(
                ErrorKind::HttpStatus,
                format!("/v3/certificates answered HTTP {status}"),
            )
            .with_remote(remote_from_error_body(status, &body)));
        }
        let certs = super::certificates::decrypt_certificates(&self.config.api_v3_key, &body)?;
        let mut bootstrap = self.keys.ring();
        bootstrap.set_certificates(certs.clone());
        verify::verify(&bootstrap, &headers, &body, now, VerifyOptions::default()).map_err(Error::from)?;
        let mut state = self
            .keys
            .0
            .write()
            .map_err(|_| Error::internal("certificates", "lock poisoned"))?;
        state
            .ring
            .set_certificates(certs.into_iter().filter(|c| c.is_valid_at(now)).collect());
        state.fetched = Some(Instant::now());
        Ok(state.ring.certificates().len())
    }

    /// In certificate mode: refresh when stale, or when `unknown_serial` asks
    /// for it (at most once per 60 s).
    pub(crate) fn maybe_refresh(&self, unknown_serial: bool) {
        if !self.config.certificate_mode {
            return;
        }
        let due = match self.keys.0.read() {
            Ok(s) => {
                let stale = s.fetched.is_none_or(|t| t.elapsed() > self.config.certificate_refresh);
                let recent_try = s.last_attempt.is_some_and(|t| t.elapsed().as_secs() < 60);
                (stale || unknown_serial) && !recent_try
            }
            Err(_) => false,
        };
        if due {
            if let Ok(mut s) = self.keys.0.write() {
                s.last_attempt = Some(Instant::now());
            }
            // A failed refresh leaves the old keys; verification then reports the real problem.
            let _ = self.refresh_certificates();
        }
    }

    fn send_once(
        &self,
        method: &str,
        target: &str,
        body: &[u8],
        extra: &[Header],
        backup: bool,
    ) -> Result<(u16, Vec<Header>, Vec<u8>)> {
        let signed = self.config.signer.sign(method, target, body, now_unix())?;
        let mut headers = vec![
            ("Authorization".to_string(), signed.authorization),
            ("Accept".to_string(), "application/json".to_string()),
        ];
        if !body.is_empty() {
            headers.push(("Content-Type".to_string(), "application/json".to_string()));
        }
        headers.extend(extra.iter().cloned());
        let base = match (&self.config.backup_base_url, backup) {
            (Some(b), true) => b.as_str(),
            _ => self.config.base_url.as_str(),
        };
        let HttpResponse { status, headers, body } =
            self.transport
                .send(&format!("{base}{target}"), method, &headers, body)?;
        Ok((status, headers, body))
    }

    /// Sends with retries; `record` is told each attempt's outcome (e.g. `200`,
    /// `429 RATELIMIT_EXCEEDED`, `timeout`).
    fn send_with_retries(
        &self,
        method: &str,
        target: &str,
        body: &[u8],
        extra: &[Header],
        mut record: impl FnMut(&str) -> Result<()>,
    ) -> Result<(ApiAnswer, Vec<u8>)> {
        self.maybe_refresh(false);
        let mut budget = Attempts::new(self.config.retry);
        let mut use_backup = false;
        loop {
            budget.record();
            let verdict = match self.send_once(method, target, body, extra, use_backup) {
                Ok((status, headers, resp_body)) => self.judge(status, &headers, resp_body),
                Err(e) => {
                    // Only a connection failure (not an HTTP answer) moves to the backup host.
                    use_backup = self.config.backup_base_url.is_some() && e.kind() == ErrorKind::Transport;
                    Verdict::Retry(
                        if e.kind() == ErrorKind::Timeout {
                            "timeout".into()
                        } else {
                            "transport error".into()
                        },
                        None,
                    )
                }
            };
            let outcome = match &verdict {
                Verdict::Success(a, _) => a.status.to_string(),
                Verdict::Failed(r) | Verdict::Retry(_, Some(r)) => format!("{} {}", r.http_status, r.code),
                Verdict::Retry(why, None) => why.clone(),
            };
            record(&outcome)?;
            match verdict {
                Verdict::Success(a, raw) => return Ok((a, raw)),
                Verdict::Failed(r) => return Err(failed_error(r)),
                Verdict::Retry(why, remote) => match budget.next_delay() {
                    Some(d) => std::thread::sleep(d),
                    None => {
                        let mut e = Error::new(
                            ErrorKind::RemoteUnknown,
                            format!(
                                "WeChat Pay outcome unknown after {} attempt(s) (last: {why}); retry later",
                                budget.made()
                            ),
                        );
                        if let Some(r) = remote {
                            e = e.with_remote(r);
                        }
                        return Err(e);
                    }
                },
            }
        }
    }

    fn judge(&self, status: u16, headers: &[Header], body: Vec<u8>) -> Verdict {
        let remote = || remote_from_error_body(status, &body);
        match status {
            202 | 429 | 500..=599 => Verdict::Retry(format!("http {status}"), Some(remote())),
            200..=299 => {
                let now = now_unix();
                let mut result = verify::verify(&self.keys.ring(), headers, &body, now, VerifyOptions::default());
                if matches!(&result, Err(f) if f.reason == VerifyReason::UnknownSerial) && self.config.certificate_mode
                {
                    self.maybe_refresh(true);
                    result = verify::verify(&self.keys.ring(), headers, &body, now, VerifyOptions::default());
                }
                if let Err(f) = result {
                    return Verdict::Retry(format!("answer not verified ({})", f.reason.code()), None);
                }
                let mut json: Value = if body.is_empty() {
                    Value::Object(Default::default())
                } else {
                    match serde_json::from_slice(&body) {
                        Ok(v) => v,
                        Err(_) => return Verdict::Retry("unparsable 2xx answer".into(), None),
                    }
                };
                let key = &self.config.merchant_private_key;
                let undecryptable = model::decrypt_sensitive_fields(&mut json, &mut |ct| {
                    oaep::decrypt(key, ct).and_then(|b| {
                        String::from_utf8(b).map_err(|_| Error::new(ErrorKind::DecryptFailed, "not UTF-8"))
                    })
                });
                let request_id = find_header(headers, "Request-ID").map(str::to_string);
                Verdict::Success(
                    ApiAnswer {
                        status,
                        json,
                        undecryptable,
                        request_id,
                    },
                    body,
                )
            }
            _ => Verdict::Failed(remote()),
        }
    }

    fn answer_from_stored(&self, raw: &[u8]) -> Result<ApiAnswer> {
        let mut json: Value = serde_json::from_slice(raw).unwrap_or(Value::Object(Default::default()));
        let key = &self.config.merchant_private_key;
        let undecryptable = model::decrypt_sensitive_fields(&mut json, &mut |ct| {
            oaep::decrypt(key, ct)
                .and_then(|b| String::from_utf8(b).map_err(|_| Error::new(ErrorKind::DecryptFailed, "not UTF-8")))
        });
        Ok(ApiAnswer {
            status: 200,
            json,
            undecryptable,
            request_id: None,
        })
    }
}

/// `{"code","message","detail"}` of an error answer (§10).
fn remote_from_error_body(status: u16, body: &[u8]) -> RemoteDetail {
    let v: Value = serde_json::from_slice(body).unwrap_or_default();
    RemoteDetail {
        code: v.get("code").and_then(Value::as_str).unwrap_or_default().to_string(),
        message: v.get("message").and_then(Value::as_str).unwrap_or_default().to_string(),
        status: String::new(),
        http_status: status,
        detail: v.get("detail").map(Value::to_string).unwrap_or_default(),
    }
}

fn failed_error(r: RemoteDetail) -> Error {
    Error::new(
        ErrorKind::RemoteFailed,
        format!(
            "WeChat Pay refused the request: HTTP {} {} {}",
            r.http_status, r.code, r.message
        ),
    )
    .with_remote(r)
}
