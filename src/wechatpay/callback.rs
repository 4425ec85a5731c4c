//! The card-event callback handler (`wechatpay-card-member.md` §3), in the
//! same two steps as the Alipay+ handler:
//!
//! 1. [`CallbackHandler::begin`]: headers, signature type, 300 s skew, key by
//!    `Wechatpay-Serial`, signature over the raw body (401 on any failure, so
//!    probes and stale replays never reach the host); envelope and
//!    AEAD_AES_256_GCM resource (400); sensitive fields decrypted for the host;
//!    de-duplication by notification `id` in the durable store (a processed
//!    duplicate is acknowledged without the host; one still being decided
//!    gets 500 so WeChat redelivers later).
//! 2. [`CallbackHandler::finish`]: the host accepts (200/204, stored) or asks
//!    for redelivery (500 `{"code":"FAIL"}`, claim released).

use super::client::{SharedKeys, WechatClient};
use super::config::Config;
use super::verify::{self, VerifyOptions, VerifyReason};
use crate::crypto::oaep;
use crate::diagnose::Diagnosis;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{HttpRequest, HttpResponse};
use crate::obs::{self, Id, Level, Metrics};
use crate::store::{Claim, ClaimTicket, Completion, Store};
use crate::validate::Path;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

/// Log target of the handler's events.
const TARGET: &str = "cardbridge::callback";
/// The `api` of callbacks in counters and events.
const API: &str = "callback";

/// Known card events; the `MEMBERCARDSP.*` aliases map to the same kinds (§3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A user opened a card: the merchant must `confirm`.
    UserCardCreate,
    /// A user deleted a card.
    UserCardDelete,
    /// WeChat asks for the point balance (`/user-points/sync`).
    SyncUserPoint,
    /// A points-for-coupon exchange to confirm.
    PointExchangeCoupon,
    /// Any other verified event, kept by its raw name.
    Other(String),
}

impl EventKind {
    /// Classifies a raw `event_type`.
    pub fn from_event_type(raw: &str) -> Self {
        match raw {
            "BRAND_MEMBER_CARD_SP.USER_CARD.CREATE" | "MEMBERCARDSP.USER_CARD.CREATE" => EventKind::UserCardCreate,
            "BRAND_MEMBER_CARD_SP.USER_CARD.DELETE" | "MEMBERCARDSP.USER_CARD.DELETE" => EventKind::UserCardDelete,
            "BRAND_MEMBER_CARD_SP.SYNC_USER_POINT" => EventKind::SyncUserPoint,
            "BRAND_MEMBER_CARD_SP.POINT_EXCHANGE_COUPON" => EventKind::PointExchangeCoupon,
            other => EventKind::Other(other.to_string()),
        }
    }

    /// Stable short name for the C ABI and logs.
    pub fn name(&self) -> &str {
        match self {
            EventKind::UserCardCreate => "USER_CARD.CREATE",
            EventKind::UserCardDelete => "USER_CARD.DELETE",
            EventKind::SyncUserPoint => "SYNC_USER_POINT",
            EventKind::PointExchangeCoupon => "POINT_EXCHANGE_COUPON",
            EventKind::Other(raw) => raw,
        }
    }
}

/// A verified, decrypted event waiting for the host.
pub struct CallbackEvent {
    /// Notification `id` (the de-duplication key).
    pub id: String,
    /// Raw `event_type`.
    pub event_type: String,
    /// Classified event.
    pub kind: EventKind,
    /// The decrypted resource with sensitive fields in cleartext; unknown
    /// fields and enum values (e.g. `user_card_state`) kept verbatim.
    pub resource: Value,
    /// Sensitive fields that failed to decrypt (left as received).
    pub undecryptable: Vec<String>,
    /// How many earlier deliveries of this notification reached a host without
    /// being accepted (their claim expired after a crash or a slow handler, or
    /// was released). Non-zero: the host may already have acted on it.
    pub earlier_claims: u32,
    claim: Option<(String, Arc<dyn Store>, ClaimTicket)>,
    finished: bool,
    /// When `begin` received it (for `latency_ms`).
    started: Instant,
}

impl std::fmt::Debug for CallbackEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The resource holds personal data: never printed.
        f.debug_struct("CallbackEvent")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("earlier_claims", &self.earlier_claims)
            .finish_non_exhaustive()
    }
}

impl CallbackEvent {
    /// Whether an earlier delivery of this notification reached a host
    /// without being accepted (see [`Self::earlier_claims`](CallbackEvent::earlier_claims)).
    pub fn redelivered(&self) -> bool {
        self.earlier_claims > 0
    }

    /// The event as one JSON document for hosts in other languages:
    /// `{"id","event_type","kind","resource","undecryptable","redelivered","earlier_claims"}`.
    pub fn to_json(&self) -> Vec<u8> {
        let v = json!({"id": self.id, "event_type": self.event_type, "kind": self.kind.name(),
                       "resource": self.resource, "undecryptable": self.undecryptable,
                       "redelivered": self.redelivered(), "earlier_claims": self.earlier_claims});
        serde_json::to_vec(&v).unwrap_or_default()
    }
}

impl Drop for CallbackEvent {
    fn drop(&mut self) {
        if let (false, Some((key, store, ticket))) = (self.finished, &self.claim) {
            let _ = store.release_inbound(key, ticket.token);
        }
    }
}

/// What `begin` decided.
#[derive(Debug)]
pub enum CallbackBegin {
    /// Answer now (refusal, duplicate acknowledgement).
    Respond(HttpResponse),
    /// The host must handle the event, then call [`CallbackHandler::finish`].
    Handle(Box<CallbackEvent>),
}

/// Handles WeChat Pay card-event callbacks. Thread-safe.
pub struct CallbackHandler {
    config: Arc<Config>,
    keys: Arc<SharedKeys>,
    store: Arc<dyn Store>,
    client: Option<Arc<WechatClient>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for CallbackHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackHandler").finish_non_exhaustive()
    }
}

fn fail(status: u16, message: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: json!({"code": "FAIL", "message": message}).to_string().into_bytes(),
    }
}

impl CallbackHandler {
    /// Builds the handler; `client` (optional) lets it refresh platform
    /// certificates on an unknown serial in certificate mode.
    pub fn new(
        config: Arc<Config>,
        keys: Arc<SharedKeys>,
        store: Arc<dyn Store>,
        client: Option<Arc<WechatClient>>,
    ) -> Self {
        CallbackHandler {
            config,
            keys,
            store,
            client,
            metrics: Arc::default(),
        }
    }

    /// The same handler counting into `metrics` (shared with the client).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    fn success(&self) -> HttpResponse {
        if self.config.callback_success_body {
            HttpResponse {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: br#"{"code":"SUCCESS","message":"OK"}"#.to_vec(),
            }
        } else {
            HttpResponse {
                status: 204,
                headers: Vec::new(),
                body: Vec::new(),
            }
        }
    }

    /// The configured largest callback body ([`Config::max_body_bytes`]).
    pub fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }

    /// Step 1. `now_ms` is the current Unix time in milliseconds, as for
    /// every `now` of the library (the skew check compares whole seconds with
    /// `Wechatpay-Timestamp`; the claim lease runs in milliseconds). Never fails.
    pub fn begin(&self, request: &HttpRequest, now_ms: i64) -> CallbackBegin {
        self.begin_diagnosed(request, now_ms).0
    }

    /// [`Self::begin`], with the diagnosis of a callback refused for its
    /// signature ([`crate::diagnose::Diagnosis`]: which check failed, the
    /// measured offset, which variant would verify; never the body, a
    /// signature or personal data). `None` for every other outcome.
    pub fn begin_diagnosed(&self, request: &HttpRequest, now_ms: i64) -> (CallbackBegin, Option<Diagnosis>) {
        let started = Instant::now();
        let mut diagnosis = None;
        let begun = self.begin_inner(request, now_ms, started, &mut diagnosis);
        let (result, status) = match &begun {
            Ok(CallbackBegin::Handle(_)) => return (begun.unwrap_or_else(CallbackBegin::Respond), None),
            Ok(CallbackBegin::Respond(r)) => ("replayed", r.status),
            Err(r) => ("refused", r.status),
        };
        self.metrics.inbound(API, result);
        let level = if result == "replayed" { Level::Info } else { Level::Warn };
        obs::event(level, TARGET, "callback answered without the host", || {
            vec![
                ("api", obs::Value::Label(API)),
                ("result", obs::Value::Label(result)),
                ("http_status", obs::Value::Int(i64::from(status))),
                ("latency_ms", obs::Value::Int(obs::elapsed_ms(started))),
            ]
        });
        (begun.unwrap_or_else(CallbackBegin::Respond), diagnosis)
    }

    fn begin_inner(
        &self,
        req: &HttpRequest,
        now_ms: i64,
        started: Instant,
        diagnosis: &mut Option<Diagnosis>,
    ) -> std::result::Result<CallbackBegin, HttpResponse> {
        // Before anything else: an oversized body is refused unread.
        let max = self.config.max_body_bytes;
        if req.body.len() > max {
            return Err(fail(413, &format!("body must be at most {max} bytes")));
        }
        if !req.method.eq_ignore_ascii_case("POST") {
            return Err(fail(405, "method must be POST"));
        }
        let options = VerifyOptions {
            require_signature_type: true,
        };
        let now = now_ms.div_euclid(1000);
        let mut verified = verify::verify(&self.keys.ring(), &req.headers, &req.body, now, options);
        if let (Err(f), Some(client)) = (&verified, &self.client) {
            if f.reason == VerifyReason::UnknownSerial {
                client.maybe_refresh(true);
                verified = verify::verify(&self.keys.ring(), &req.headers, &req.body, now, options);
            }
        }
        if let Err(f) = verified {
            if let Some(d) = crate::diagnose::wechat_callback(&self.keys.ring(), req, now_ms, options) {
                crate::diagnose::emit(API, &d);
                *diagnosis = Some(d);
            }
            let status = if f.reason == VerifyReason::HeaderMissing {
                400
            } else {
                401
            };
            return Err(fail(status, "signature verification failed"));
        }
        // Duplicate members are refused (naming the member): the host must see
        // exactly what was verified, whichever parser it uses.
        let envelope =
            crate::json::parse_strict(&req.body, &Path::root("callback")).map_err(|e| fail(400, e.message()))?;
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let id = text(&envelope, "id")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| fail(400, "id is missing"))?;
        let event_type = text(&envelope, "event_type").ok_or_else(|| fail(400, "event_type is missing"))?;
        let resource = envelope
            .get("resource")
            .ok_or_else(|| fail(400, "resource is missing"))?;
        if text(resource, "algorithm").as_deref() != Some("AEAD_AES_256_GCM") {
            return Err(fail(400, "resource.algorithm must be AEAD_AES_256_GCM"));
        }
        let nonce = text(resource, "nonce").ok_or_else(|| fail(400, "resource.nonce is missing"))?;
        let aad = text(resource, "associated_data").unwrap_or_default();
        let ciphertext = text(resource, "ciphertext").ok_or_else(|| fail(400, "resource.ciphertext is missing"))?;
        let plain = self
            .config
            .api_v3_key
            .decrypt(nonce.as_bytes(), aad.as_bytes(), &ciphertext)
            .map_err(|_| fail(400, "resource could not be decrypted"))?;
        let mut resource =
            crate::json::parse_strict(&plain, &Path::root("callback.resource")).map_err(|e| fail(400, e.message()))?;
        let key = &self.config.merchant_private_key;
        let undecryptable = super::model::decrypt_sensitive_fields(&mut resource, &mut |ct| {
            oaep::decrypt(key, ct)
                .and_then(|b| String::from_utf8(b).map_err(|_| Error::new(ErrorKind::DecryptFailed, "not UTF-8")))
        });
        let claim_key = crate::store::key("wechatpay.callback", &[&id]);
        let lease = i64::try_from(self.config.claim_lease.as_millis()).unwrap_or(i64::MAX);
        let fingerprint = crate::crypto::sha256_hex(&req.body);
        let ticket = match self.store.claim_inbound(&claim_key, &fingerprint, now_ms, lease) {
            Ok(Claim::Claimed(ticket)) => ticket,
            Ok(Claim::Done { .. }) => {
                self.metrics.duplicate_replayed();
                return Ok(CallbackBegin::Respond(self.success()));
            }
            Ok(Claim::InFlight) => return Err(fail(500, "this notification is being processed")),
            Err(e) => {
                obs::store_error(&self.metrics, "claim_inbound", &e);
                return Err(fail(500, "temporary storage problem"));
            }
        };
        if ticket.earlier_claims() > 0 {
            self.metrics.inbound_reclaimed();
            obs::event(
                Level::Warn,
                TARGET,
                "callback claim taken over after an earlier one ended undecided",
                || {
                    vec![
                        ("api", obs::Value::Label(API)),
                        ("notification_id", obs::Value::Id(Id::new(&id))),
                        ("earlier_claims", obs::Value::Int(i64::from(ticket.earlier_claims()))),
                    ]
                },
            );
        }
        Ok(CallbackBegin::Handle(Box::new(CallbackEvent {
            kind: EventKind::from_event_type(&event_type),
            id,
            event_type,
            resource,
            undecryptable,
            earlier_claims: ticket.earlier_claims(),
            claim: Some((claim_key, self.store.clone(), ticket)),
            finished: false,
            started,
        })))
    }

    /// Step 2. `accepted = true`: the event is handled (stored durably; later
    /// duplicates are acknowledged without the host). `false`: WeChat must
    /// redeliver; `reason` goes into the FAIL answer (no personal data).
    ///
    /// When this event's claim expired and another delivery of the same
    /// notification was accepted meanwhile, that stored answer is returned.
    /// When the other delivery is still being handled, nothing is stored and
    /// the error is `ClaimLost`: answer with `accepted = false` (500) so
    /// WeChat delivers it again.
    pub fn finish(&self, event: &mut CallbackEvent, accepted: bool, reason: &str, now_ms: i64) -> Result<HttpResponse> {
        if event.finished {
            return Err(Error::new(ErrorKind::AlreadyUsed, "this event was already finished"));
        }
        let response = if accepted {
            self.success()
        } else {
            fail(500, if reason.is_empty() { "retry later" } else { reason })
        };
        let mut response = response;
        if let Some((key, store, ticket)) = &event.claim {
            if accepted {
                let completed = store.complete_inbound(key, ticket.token, &response.body, now_ms);
                match completed.inspect_err(|e| obs::store_error(&self.metrics, "complete_inbound", e))? {
                    Completion::Stored => {}
                    Completion::AlreadyDone(_) => response = self.success(),
                    Completion::Lost => {
                        return Err(Error::new(
                            ErrorKind::ClaimLost,
                            "callback: this event's claim expired and another delivery of the same notification \
                             is being handled; nothing was stored: answer with accepted = false",
                        ));
                    }
                }
            } else {
                // Best effort: an unreachable store frees the claim by lease expiry instead,
                // and the 500 must still reach WeChat so that it redelivers.
                let _ = store.release_inbound(key, ticket.token);
            }
        }
        event.finished = true;
        let result = if accepted { "accepted" } else { "redeliver" };
        self.metrics.inbound(API, result);
        let level = if accepted { Level::Info } else { Level::Warn };
        obs::event(level, TARGET, "callback answer", || {
            vec![
                ("api", obs::Value::Label(API)),
                ("notification_id", obs::Value::Id(Id::new(&event.id))),
                ("event_type", obs::Value::Id(Id::new(&event.event_type))),
                ("result", obs::Value::Label(result)),
                ("http_status", obs::Value::Int(i64::from(response.status))),
                ("redelivered", obs::Value::Bool(event.redelivered())),
                ("latency_ms", obs::Value::Int(obs::elapsed_ms(event.started))),
            ]
        });
        Ok(response)
    }
}
