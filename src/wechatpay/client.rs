//! The outbound WeChat Pay client: `confirm` through the durable outbox, the
//! rest of the user-card lifecycle (get, update, points sync) and the
//! platform-certificate download (`wechatpay-card-member.md` §5–§10).
//!
//! Life of a `confirm`: validate the host's cleartext input, encrypt the
//! sensitive fields once (OAEP is randomised, so the encrypted body is stored
//! and re-sent byte-identical), and hand it to the delivery engine
//! ([`crate::outbox`]) keyed by (card_id, user_card_code) → each attempt signs
//! afresh (timestamp, nonce) → 2xx answers must verify; 202 and 429 (nothing
//! applied) are re-sent after a backoff; other 4xx are final. Any outcome
//! that may hide an applied confirm (a 5xx, a timeout or broken connection
//! after sending, an answer that does not verify), and any entry this call
//! did not create itself (a repeat, a resume, a lease taken over), is followed
//! by a read-back (`GET /user-cards/{code}`), never by a blind re-send:
//! `EFFECTIVE` counts as confirmed, and only a card still waiting for its
//! confirm allows a re-send.

use super::config::Config;
use super::keyring::KeyRing;
use super::model::{self, Mutation, PreparedRequest, ReadBackPlan};
use super::verify::{self, VerifyOptions, VerifyReason};
use super::{activities, feeds, members, templates};
use crate::crypto::oaep;
use crate::error::{Error, ErrorKind, RemoteDetail, Result};
use crate::http::{Header, HttpResponse, Transport, find_header};
use crate::outbox::{
    AttemptContext, CallOptions, Delivery, Engine, Outcome, Outgoing, Prepared, Progress, Reconcile, Reconciled, Reply,
    Verdict,
};
use crate::store::{OutboxEntry, Store};
use crate::validate::Path;
use serde_json::Value;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// Outbox kind of confirm entries.
pub const CONFIRM_KIND: &str = "wechatpay.confirm";

/// A verified WeChat Pay answer. Its `Debug` leaves out the JSON, which
/// holds personal data.
#[derive(Clone, PartialEq)]
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

impl std::fmt::Debug for ApiAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiAnswer")
            .field("status", &self.status)
            .field("undecryptable", &self.undecryptable)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
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

/// The WeChat Pay card-member client. Thread-safe.
pub struct WechatClient {
    config: Arc<Config>,
    keys: Arc<SharedKeys>,
    transport: Transport,
    engine: Engine,
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
        let engine = Engine::new(
            store,
            transport.clone(),
            config.clock.clone(),
            config.retry,
            crate::alipayplus::client::attempt_lease(&config.transport),
        );
        Ok(WechatClient {
            config,
            keys,
            transport,
            engine,
        })
    }

    /// The same client counting into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::obs::Metrics>) -> Self {
        self.engine = self.engine.with_metrics(metrics);
        self
    }

    /// The delivery engine (its store holds the outbox).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn now_unix(&self) -> i64 {
        self.config.clock.now_secs()
    }

    /// Syncs the card-opening result (`confirm`, §5). `input` is one JSON
    /// object: `user_card_code`, `card_id`, and the body members with
    /// sensitive fields in cleartext. The same (card_id, user_card_code) is
    /// confirmed at most once: repeats return the stored answer, and a repeat
    /// with different content is an `IdempotencyConflict`.
    pub fn confirm(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.confirm_with(input, &CallOptions::default())
    }

    /// [`Self::confirm`] with a per-call deadline or cancellation.
    pub fn confirm_with(&self, input: &[u8], options: &CallOptions) -> Result<ApiAnswer> {
        let entry = self.confirm_entry(input)?;
        let outcome = self
            .engine
            .submit(entry, "confirm.user_card_code", &self.delivery(true), options)?;
        self.answer(outcome)
    }

    /// Bring your own transport, step 1: validates, encrypts and records the
    /// confirm exactly as [`Self::confirm`] does (the one durable commit),
    /// then returns the signed request to send over the caller's own HTTP
    /// stack (`Progress::Send`; a read-back `GET` of the card first when the
    /// entry existed before), or the stored answer when the confirm is
    /// already final (`Progress::Done`, no network). A confirm another
    /// caller is delivering right now is `RemoteUnknown` at once. See
    /// [`Engine::prepare`] for the lease the exchange must fit in.
    pub fn prepare_confirm(&self, input: &[u8]) -> Result<Progress<ApiAnswer>> {
        let entry = self.confirm_entry(input)?;
        self.engine
            .prepare(entry, "confirm.user_card_code", &self.delivery(true))?
            .try_map(|o| self.answer(o))
    }

    /// Bring your own transport, step 2: verifies and judges the caller's
    /// `reply` to `prepared` (a confirm or its read-back) as `confirm` judges
    /// its own transport's answers, and returns the final answer — the very
    /// one `confirm` returns for the same answer — or the next request to
    /// send (after [`Prepared::wait`]): after an ambiguous outcome (5xx, an
    /// answer that does not verify, no answer) that is a read-back of the
    /// card, never a blind re-send.
    pub fn complete_confirm(&self, prepared: Prepared, reply: Reply) -> Result<Progress<ApiAnswer>> {
        prepared.check_kind(CONFIRM_KIND, "prepare_confirm")?;
        self.engine
            .complete(prepared, reply, &self.delivery(true))?
            .try_map(|o| self.answer(o))
    }

    /// The outbox entry of a confirm: validated, sensitive fields encrypted.
    fn confirm_entry(&self, input: &[u8]) -> Result<OutboxEntry> {
        let value = crate::json::parse_strict(input, &Path::root("confirm"))?;
        let key_part = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let id = confirm_id(&key_part("card_id"), &key_part("user_card_code"));
        let fingerprint = crate::json::content_fingerprint(&value);
        self.maybe_refresh(false);
        let (serial, key) = self.keys.ring().encryption_key(self.now_unix())?;
        let mut encrypt = |path: &Path, clear: &str| encrypt_field(&key, path, clear);
        // Validate (and encrypt) before looking at the outbox, so bad input is always reported as such.
        let prepared = model::prepare_confirm(input, self.config.wire, &mut encrypt)?;
        let mut entry = OutboxEntry::new(
            id,
            CONFIRM_KIND,
            prepared.method,
            prepared.target,
            prepared.body,
            fingerprint,
            self.config.clock.now_ms(),
        );
        // Wechatpay-Serial is always sent on confirm (§5.2), naming the encrypting key.
        entry.fixed_headers = vec![("Wechatpay-Serial".to_string(), serial)];
        Ok(entry)
    }

    /// Re-sends every pending confirm nobody else is delivering (e.g. at
    /// start-up after a crash); each starts with a read-back of the card.
    pub fn resume_pending(&self) -> Result<Vec<(String, Result<ApiAnswer>)>> {
        let mut out = Vec::new();
        for kind in OUTBOX_KINDS {
            let outcomes = self
                .engine
                .resume_pending(kind, &self.by_kind(), &CallOptions::default())?;
            out.extend(outcomes.into_iter().map(|(id, r)| (id, r.and_then(|o| self.answer(o)))));
        }
        Ok(out)
    }

    /// Delivers (or replays) one outbox entry (any kind) by outbox id.
    pub fn resume(&self, id: &str, options: &CallOptions) -> Result<ApiAnswer> {
        self.answer(self.engine.deliver(id, &self.by_kind(), options)?)
    }

    /// The delivery of a stored entry: reconciled as its kind says.
    fn by_kind(&self) -> Api<'_> {
        Api {
            client: self,
            read_back: ReadBack::ByKind,
        }
    }

    /// Records a validated [`Mutation`] in the outbox and delivers it, like
    /// `confirm`: same key → same request (else `IdempotencyConflict`), a
    /// final answer replayed, ambiguous outcomes reconciled by the entry's
    /// [`ReadBackPlan`]. A keyless mutation (a PATCH of absolute values with
    /// no platform key) goes through the same attempt loop and read-back but
    /// is not recorded: see [`Mutation::keyless`]. `prepare` gets the
    /// encrypter for sensitive fields.
    fn mutate(
        &self,
        input: &[u8],
        root: &str,
        prepare: impl FnOnce(&mut dyn FnMut(&Path, &str) -> Result<String>) -> Result<Mutation>,
    ) -> Result<ApiAnswer> {
        let value = crate::json::parse_strict(input, &Path::root(root))?;
        let fingerprint = crate::json::content_fingerprint(&value);
        self.maybe_refresh(false);
        let now = self.now_unix();
        let ring = self.keys.ring();
        let mut chosen: Option<(String, crate::crypto::keys::PublicKey)> = None;
        let mut encrypt = |path: &Path, clear: &str| -> Result<String> {
            if chosen.is_none() {
                chosen = Some(ring.encryption_key(now)?);
            }
            let (_, key) = chosen.as_ref().ok_or_else(|| Error::internal("encryption", "no key"))?;
            encrypt_field(key, path, clear)
        };
        // Validate (and encrypt) before looking at the outbox, so bad input is always reported as such.
        let m = prepare(&mut encrypt)?;
        let serial = match chosen {
            Some((serial, _)) => Some(serial),
            None if m.always_serial => Some(ring.encryption_key(now)?.0),
            None => None,
        };
        let key: Vec<&str> = m.key.iter().map(String::as_str).collect();
        let mut entry = OutboxEntry::new(
            crate::store::key(m.kind, &key),
            m.kind,
            m.request.method,
            m.request.target,
            m.request.body,
            fingerprint,
            self.config.clock.now_ms(),
        );
        entry.fixed_headers = serial
            .map(|s| vec![("Wechatpay-Serial".to_string(), s)])
            .unwrap_or_default();
        let options = CallOptions::default();
        let outcome = if m.keyless {
            self.engine.call(entry, &self.by_kind(), &options)?
        } else {
            self.engine.submit(entry, &m.key_field, &self.by_kind(), &options)?
        };
        self.answer(outcome)
    }

    /// Creates a card template (`POST /cards`), whose `notify_url` receives
    /// the card events. Keyed by (brand_id, out_request_no). See [`templates`].
    pub fn create_card_template(&self, input: &[u8]) -> Result<ApiAnswer> {
        let wire = self.config.wire;
        self.mutate(input, "createCardTemplate", |_| templates::prepare_create(input, wire))
    }
    /// Lists card templates (`GET /cards`, `limit` 1–20).
    pub fn list_card_templates(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.call(templates::prepare_list(input)?, Vec::new())
    }
    /// Reads one card template (`GET /cards/{card_id}?brand_id`).
    pub fn get_card_template(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.call(templates::prepare_get(input)?, Vec::new())
    }
    /// Updates a card template (`PATCH /cards/{card_id}`); reconciled by reading it back.
    pub fn update_card_template(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.mutate(input, "updateCardTemplate", |_| templates::prepare_update(input))
    }
    /// Removes a card template (`POST …/invalidate` or `DELETE`, by
    /// configuration); reconciled by reading it back (`CARD_INVALID`).
    pub fn remove_card_template(&self, input: &[u8]) -> Result<ApiAnswer> {
        let wire = self.config.wire;
        self.mutate(input, "removeCardTemplate", |_| templates::prepare_remove(input, wire))
    }
    /// Lists a user's cards (`GET /user-cards?brand_id&openid…`).
    pub fn list_user_cards(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.call(members::prepare_list(input)?, Vec::new())
    }
    /// Invalidates a user card (irreversible; `invalid_reason` required);
    /// reconciled by reading the card back (`INVALID`).
    pub fn invalidate_user_card(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.mutate(input, "invalidateUserCard", |_| members::prepare_invalidate(input))
    }
    /// Imports an existing member by openid; sensitive fields in cleartext
    /// are encrypted here and `Wechatpay-Serial` is always sent. Keyed by
    /// (card_id, user_card_code); reconciled by reading the card back.
    pub fn import_user_card(&self, input: &[u8]) -> Result<ApiAnswer> {
        let wire = self.config.wire;
        self.mutate(input, "importUserCard", |enc| members::prepare_import(input, wire, enc))
    }
    /// Imports a member by phone: an `INVALID_CONFIG` error unless
    /// `import_by_phone_enabled` (the platform lists it as not live).
    pub fn import_user_card_by_phone(&self, input: &[u8]) -> Result<ApiAnswer> {
        let wire = self.config.wire;
        self.mutate(input, "importUserCardByPhone", |enc| {
            members::prepare_import_by_phone(input, wire, enc)
        })
    }
    /// A join-component token (`POST /pre-auth-tokens`, valid 1 h); a fresh one per call.
    pub fn create_pre_auth_token(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.call(members::prepare_token(input, members::Token::PreAuth)?, Vec::new())
    }
    /// A payment-code component token (`POST /pay-view-tokens`, 10 min, single use).
    pub fn create_pay_view_token(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.call(members::prepare_token(input, members::Token::PayView)?, Vec::new())
    }
    /// Posts a member feed (`POST /user-feeds`), idempotent by `out_request_no`.
    pub fn create_user_feed(&self, input: &[u8]) -> Result<ApiAnswer> {
        let wire = self.config.wire;
        self.mutate(input, "createUserFeed", |_| feeds::prepare_feed(input, wire))
    }
    /// Answers a `POINT_EXCHANGE_COUPON` event
    /// (`POST /user-points/exchange-coupon/confirm`), keyed by (brand_id, record_id).
    pub fn confirm_exchange_coupon(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.mutate(input, "confirmExchangeCoupon", |_| {
            feeds::prepare_exchange_confirm(input)
        })
    }
    /// Creates a membership coupon activity, idempotent by `out_request_no`.
    pub fn create_membership_activity(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.mutate(input, "createMembershipActivity", |_| activities::prepare_create(input))
    }
    /// Lists membership activities.
    pub fn list_membership_activities(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.call(activities::prepare_list(input)?, Vec::new())
    }
    /// Reads one membership activity.
    pub fn get_membership_activity(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.call(activities::prepare_get(input)?, Vec::new())
    }
    /// Updates a membership activity; reconciled by reading it back.
    pub fn update_membership_activity(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.mutate(input, "updateMembershipActivity", |_| activities::prepare_update(input))
    }
    /// Terminates a membership activity; reconciled by reading it back.
    pub fn terminate_membership_activity(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.mutate(input, "terminateMembershipActivity", |_| {
            activities::prepare_terminate(input)
        })
    }

    /// A call as the engine sees it; `confirm` reconciles by reading the card back.
    fn delivery(&self, confirm: bool) -> Api<'_> {
        Api {
            client: self,
            read_back: if confirm { ReadBack::Confirm } else { ReadBack::None },
        }
    }

    /// The caller's view of a final entry or call.
    fn answer(&self, outcome: Outcome) -> Result<ApiAnswer> {
        if outcome.failed() {
            return Err(failed_error(remote_from_error_body(
                outcome.entry.last_status,
                outcome.result(),
            )));
        }
        let mut answer = self.answer_from_stored(outcome.result());
        answer.request_id = outcome.reference;
        // A read-back completion has no status of its own: its GET answered 200.
        if (200..300).contains(&outcome.entry.last_status) {
            answer.status = outcome.entry.last_status;
        }
        Ok(answer)
    }

    /// The signed `GET target` of a reconcile's read-back.
    fn read_back_request(&self, target: &str) -> Reconcile {
        let ctx = AttemptContext {
            now_ms: self.config.clock.now_ms(),
            after_connection_failure: false,
        };
        match self.delivery(false).sign(&read_back_entry(target), &ctx) {
            Ok(out) => Reconcile::Read(out),
            Err(_) => Reconcile::Decided(Reconciled::Unknown {
                why: "signing failed".into(),
                status: 0,
            }),
        }
    }

    /// Judges the answer to a read-back `sent`: `Applied` carries the
    /// verified answer body (the caller decides what it shows).
    fn read_back_answer(&self, sent: &Outgoing, resp: HttpResponse) -> Reconciled {
        let api = self.delivery(false);
        let unknown = |why: &str, status: u16| Reconciled::Unknown {
            why: why.to_string(),
            status,
        };
        let status = resp.status;
        match api.classify(&read_back_entry(&sent.url), sent, resp) {
            Verdict::Success { result, .. } => Reconciled::Applied {
                result,
                outcome: String::new(),
            },
            Verdict::Failed { remote, .. }
            | Verdict::Retry {
                remote: Some(remote), ..
            } => unknown(format!("{} {}", remote.http_status, remote.code).trim(), status),
            Verdict::Retry { why, .. } => unknown(&why, status),
        }
    }

    /// Reads one user card (`GET /user-cards/{code}?brand_id&card_id&openid`).
    pub fn get_user_card(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.call(model::prepare_get_user_card(input)?, Vec::new())
    }

    /// Updates a user card (`PATCH /user-cards/{code}?card_id`); sensitive
    /// fields in cleartext are encrypted here.
    ///
    /// An outcome that may hide an applied update (lost answer, 5xx, an
    /// answer that does not verify) is followed by a read-back of the card:
    /// when every member the update sets already has the requested value, the
    /// read-back is the answer and nothing is re-sent.
    pub fn update_user_card(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.update_user_card_with(input, &CallOptions::default())
    }

    /// [`Self::update_user_card`] with a per-call deadline or cancellation.
    pub fn update_user_card_with(&self, input: &[u8], options: &CallOptions) -> Result<ApiAnswer> {
        self.maybe_refresh(false);
        let (serial, key) = self.keys.ring().encryption_key(self.now_unix())?;
        let mut encrypt = |path: &Path, clear: &str| encrypt_field(&key, path, clear);
        let prepared = model::prepare_update_user_card(input, self.config.wire, &mut encrypt)?;
        let headers = if prepared.encrypted {
            vec![("Wechatpay-Serial".to_string(), serial)]
        } else {
            Vec::new()
        };
        let read_back = update_read_back(input).map_or(ReadBack::None, |(target, expected)| ReadBack::Update {
            target,
            expected,
        });
        self.call_with(prepared, headers, read_back, options)
    }

    /// Syncs a user's point balance (`POST /user-points/sync`), through the
    /// outbox keyed by (brand_id, out_request_no): a repeat returns the stored
    /// answer, the same key with other content is an `IdempotencyConflict`.
    pub fn sync_user_points(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.mutate(input, "syncUserPoints", |_| model::sync_points_mutation(input))
    }

    /// A call through the engine's attempt loop without an outbox entry.
    fn call(&self, p: PreparedRequest, fixed_headers: Vec<Header>) -> Result<ApiAnswer> {
        self.call_with(p, fixed_headers, ReadBack::None, &CallOptions::default())
    }

    fn call_with(
        &self,
        p: PreparedRequest,
        fixed_headers: Vec<Header>,
        read_back: ReadBack,
        options: &CallOptions,
    ) -> Result<ApiAnswer> {
        self.maybe_refresh(false);
        let mut entry = OutboxEntry::new(
            String::new(),
            "wechatpay.call",
            p.method,
            p.target,
            p.body,
            String::new(),
            0,
        );
        entry.fixed_headers = fixed_headers;
        self.answer(self.engine.call(
            entry,
            &Api {
                client: self,
                read_back,
            },
            options,
        )?)
    }

    /// Downloads `/v3/certificates`, authenticates each with the APIv3 key,
    /// verifies the answer with the certificate it names, and installs them.
    pub fn refresh_certificates(&self) -> Result<usize> {
        use crate::obs::{self, Level, Value};
        let started = Instant::now();
        let refreshed = self.refresh_certificates_inner();
        self.engine.metrics().certificate_refresh();
        let level = if refreshed.is_ok() { Level::Info } else { Level::Warn };
        obs::event(
            level,
            "cardbridge::certificates",
            "platform certificates refreshed",
            || {
                let mut f = vec![("outcome", Value::Label(if refreshed.is_ok() { "ok" } else { "failed" }))];
                match &refreshed {
                    Ok(n) => f.push(("count", Value::Int(i64::try_from(*n).unwrap_or(i64::MAX)))),
                    Err(e) => f.push(("error", obs::error_kind(e))),
                }
                f.push(("latency_ms", Value::Int(obs::elapsed_ms(started))));
                f
            },
        );
        refreshed
    }

    fn refresh_certificates_inner(&self) -> Result<usize> {
        let now = self.now_unix();
        let target = "/v3/certificates";
        let headers = self.signed_headers("GET", target, &[], &[])?;
        let HttpResponse { status, headers, body } =
            self.transport
                .send(&format!("{}{target}", self.base_url(false)), "GET", &headers, &[])?;
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

    /// The headers of one signed request (fresh timestamp and nonce).
    fn signed_headers(&self, method: &str, target: &str, body: &[u8], extra: &[Header]) -> Result<Vec<Header>> {
        let signed = self.config.signer.sign(method, target, body, self.now_unix())?;
        let mut headers = vec![
            ("Authorization".to_string(), signed.authorization),
            ("Accept".to_string(), "application/json".to_string()),
        ];
        if !body.is_empty() {
            headers.push(("Content-Type".to_string(), "application/json".to_string()));
        }
        headers.extend(extra.iter().cloned());
        Ok(headers)
    }

    fn base_url(&self, backup: bool) -> &str {
        match (&self.config.backup_base_url, backup) {
            (Some(b), true) => b.as_str(),
            _ => self.config.base_url.as_str(),
        }
    }

    /// Verifies and classifies one answer (§7.5, §10).
    fn judge(&self, status: u16, headers: &[Header], body: Vec<u8>) -> Verdict {
        let remote = || remote_from_error_body(status, &body);
        let retry =
            |why: String, remote: Option<RemoteDetail>, ambiguous: bool| Verdict::Retry { why, remote, ambiguous };
        match status {
            // Accepted but not processed, or rate limited: nothing was applied.
            202 | 429 => retry(format!("http {status}"), Some(remote()), false),
            // A system error may come after the request was applied.
            500..=599 => retry(format!("http {status}"), Some(remote()), true),
            200..=299 => {
                let now = self.now_unix();
                let mut result = verify::verify(&self.keys.ring(), headers, &body, now, VerifyOptions::default());
                if matches!(&result, Err(f) if f.reason == VerifyReason::UnknownSerial) && self.config.certificate_mode
                {
                    self.maybe_refresh(true);
                    result = verify::verify(&self.keys.ring(), headers, &body, now, VerifyOptions::default());
                }
                if let Err(f) = result {
                    let mut why = format!("answer not verified ({})", f.reason.code());
                    if f.reason == VerifyReason::ClockSkew
                        && let Some((header, off)) =
                            crate::diagnose::platform_clock_offset(headers, self.config.clock.now_ms())
                    {
                        why.push_str(&format!(
                            "; the platform's clock is {off:+} ms from ours (its {header} header)"
                        ));
                    }
                    return retry(why, None, true);
                }
                if !body.is_empty() && serde_json::from_slice::<Value>(&body).is_err() {
                    return retry("unparsable 2xx answer".into(), None, true);
                }
                Verdict::Success {
                    reference: find_header(headers, "Request-ID").map(str::to_string),
                    result: body,
                    note: status.to_string(),
                }
            }
            _ => {
                let remote = remote();
                Verdict::Failed {
                    note: format!("{status} {}", remote.code).trim().to_string(),
                    remote,
                    result: body,
                }
            }
        }
    }

    /// An answer body with its sensitive fields decrypted.
    fn answer_from_stored(&self, raw: &[u8]) -> ApiAnswer {
        let mut json: Value = if raw.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(raw).unwrap_or(Value::Object(Default::default()))
        };
        let key = &self.config.merchant_private_key;
        let mut decrypt = |ct: &str| {
            oaep::decrypt(key, ct)
                .and_then(|b| String::from_utf8(b).map_err(|_| Error::new(ErrorKind::DecryptFailed, "not UTF-8")))
        };
        let mut undecryptable = model::decrypt_sensitive_fields(&mut json, &mut decrypt);
        // A list answer (`{"data":[…]}`) carries the sensitive fields per element.
        if let Some(items) = json.get_mut("data").and_then(Value::as_array_mut) {
            for (i, item) in items.iter_mut().enumerate() {
                let failed = model::decrypt_sensitive_fields(item, &mut decrypt);
                undecryptable.extend(failed.into_iter().map(|p| format!("data[{i}].{p}")));
            }
        }
        ApiAnswer {
            status: 200,
            json,
            undecryptable,
            request_id: None,
        }
    }
}

/// Encrypts one sensitive input field (§9); a plaintext over the OAEP limit
/// is a validation error naming the field and the byte limit.
fn encrypt_field(key: &crate::crypto::keys::PublicKey, path: &Path, clear: &str) -> Result<String> {
    oaep::encrypt(key, clear.as_bytes()).map_err(|e| {
        let limit = oaep::max_plaintext_len(key);
        if e.kind() == ErrorKind::PlaintextTooLong {
            path.error(
                format!("must be at most {limit} bytes to be encrypted"),
                Some(limit.to_string()),
            )
        } else {
            e
        }
    })
}

/// The outbox id of a confirm: (card_id, user_card_code), collision-free.
pub fn confirm_id(card_id: &str, user_card_code: &str) -> String {
    crate::store::key(CONFIRM_KIND, &[card_id, user_card_code])
}

/// One WeChat Pay call as the engine sees it.
struct Api<'a> {
    client: &'a WechatClient,
    read_back: ReadBack,
}

/// How an ambiguous outcome is reconciled.
enum ReadBack {
    /// A re-send is harmless: reads, and calls idempotent by their `out_request_no`.
    None,
    /// Read the card back; `EFFECTIVE` (or gone, for a failure confirm) is applied.
    Confirm,
    /// Read the card back (`target`); applied when it shows every `expected` member.
    Update {
        target: String,
        expected: serde_json::Map<String, Value>,
    },
    /// Whatever the entry's kind says ([`read_back_plan`]): every outbox kind.
    ByKind,
}

impl Delivery for Api<'_> {
    fn sign(&self, entry: &OutboxEntry, ctx: &AttemptContext) -> Result<Outgoing> {
        let c = self.client;
        let headers = c.signed_headers(&entry.method, &entry.target, &entry.body, &entry.fixed_headers)?;
        // Only a connection failure (not an HTTP answer) moves the next attempt to the backup host.
        Ok(Outgoing {
            method: entry.method.clone(),
            url: format!("{}{}", c.base_url(ctx.after_connection_failure), entry.target),
            headers,
            body: entry.body.clone(),
        })
    }

    fn classify(&self, _: &OutboxEntry, sent: &Outgoing, resp: HttpResponse) -> Verdict {
        let clock = crate::diagnose::platform_clock_offset(&resp.headers, self.client.config.clock.now_ms());
        let verdict = self.client.judge(resp.status, &resp.headers, resp.body);
        with_sign_diagnosis(verdict, sent, clock.map(|(_, off)| off))
    }

    fn read_back(&self, entry: &OutboxEntry, _: &AttemptContext) -> Reconcile {
        let c = self.client;
        let confirm = |entry: &OutboxEntry| match confirm_target(entry) {
            Some(target) => c.read_back_request(&target),
            None => Reconcile::Decided(Reconciled::Send),
        };
        match &self.read_back {
            ReadBack::None => Reconcile::Decided(Reconciled::Send),
            ReadBack::Confirm => confirm(entry),
            ReadBack::Update { target, .. } => c.read_back_request(target),
            ReadBack::ByKind => match read_back_plan(entry) {
                _ if entry.kind == CONFIRM_KIND => confirm(entry),
                Some(ReadBackPlan::Resend) => Reconcile::Decided(Reconciled::Send),
                Some(ReadBackPlan::Shows { target, .. } | ReadBackPlan::State { target, .. }) => {
                    c.read_back_request(&target)
                }
                // An entry whose read cannot be derived: nothing proves it applied, nothing proves
                // it did not; never re-send blindly.
                None => Reconcile::Decided(Reconciled::Unknown {
                    why: "no read-back for this entry".into(),
                    status: 0,
                }),
            },
        }
    }

    fn judge_read_back(&self, entry: &OutboxEntry, sent: &Outgoing, answer: HttpResponse) -> Reconciled {
        let c = self.client;
        let read = c.read_back_answer(sent, answer);
        match &self.read_back {
            ReadBack::None => read,
            ReadBack::Confirm => confirm_applied(entry, read),
            ReadBack::Update { expected, .. } => update_applied(c, expected, read),
            ReadBack::ByKind => match read_back_plan(entry) {
                _ if entry.kind == CONFIRM_KIND => confirm_applied(entry, read),
                Some(ReadBackPlan::Shows { expected, .. }) => update_applied(c, &expected, read),
                Some(ReadBackPlan::State { member, values, .. }) => state_applied(member, values, read),
                Some(ReadBackPlan::Resend) | None => read,
            },
        }
    }

    fn key_name(&self) -> &'static str {
        match self.read_back {
            ReadBack::Confirm => "card_id and user_card_code",
            _ => "request",
        }
    }
}

/// The read-back of a confirm entry (`GET /user-cards/{code}`): after an
/// ambiguous confirm, or before sending one this call did not create.
/// `None` when the entry does not name the card (then a send decides).
fn confirm_target(entry: &OutboxEntry) -> Option<String> {
    let body: Value = serde_json::from_slice(&entry.body).unwrap_or_default();
    read_back_target(entry, &body)
}

/// Judges a confirm's read-back. A success confirm has taken effect when the
/// card is `EFFECTIVE`; a failure confirm when the card is gone (`INVALID`,
/// `DELETE`, `UNAVAILABLE`). A card still waiting (`UNACTIVATED`,
/// `NOT_EFFECTIVE`) or in another state allows a (re-)send, whose answer the
/// platform decides.
fn confirm_applied(entry: &OutboxEntry, read: Reconciled) -> Reconciled {
    let body: Value = serde_json::from_slice(&entry.body).unwrap_or_default();
    let success = body.get("user_card_confirm_state").and_then(Value::as_str) == Some("CREATE_CARD_SUCCESS");
    match read {
        Reconciled::Applied { result, .. } => {
            let state = serde_json::from_slice::<Value>(&result)
                .ok()
                .and_then(|v| v.get("user_card_state").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_default();
            let applied = if success {
                state == "EFFECTIVE"
            } else {
                matches!(state.as_str(), "INVALID" | "DELETE" | "UNAVAILABLE")
            };
            if applied {
                Reconciled::Applied {
                    result,
                    outcome: format!("card {state}"),
                }
            } else {
                Reconciled::Send
            }
        }
        other => other,
    }
}

/// The members an update sets, in cleartext, and the read-back target;
/// `None` when the input does not name the card fully (validation refuses it).
fn update_read_back(input: &[u8]) -> Option<(String, serde_json::Map<String, Value>)> {
    const SET: [&str; 8] = [
        "card_color",
        "card_picture_url",
        "phone_number",
        "level",
        "valid_date_information",
        "pickup_time",
        "user_information",
        "attach",
    ];
    let v: Value = serde_json::from_slice(input).ok()?;
    let o = v.as_object()?;
    let expected = SET
        .iter()
        .filter_map(|k| o.get(*k).map(|x| ((*k).to_string(), x.clone())))
        .collect();
    let query = serde_json::json!({
        "user_card_code": o.get("user_card_code")?,
        "card_id": o.get("card_id")?,
        "brand_id": o.get("brand_id")?,
        "openid": o.get("openid")?,
    });
    let target = model::prepare_get_user_card(query.to_string().as_bytes()).ok()?.target;
    Some((target, expected))
}

/// Judges the card read back after an ambiguous update: applied when every member
/// the update sets reads back (decrypted) with the requested value; any
/// difference allows a re-send (a PATCH of absolute values).
fn update_applied(client: &WechatClient, expected: &serde_json::Map<String, Value>, read: Reconciled) -> Reconciled {
    match read {
        Reconciled::Applied { result, .. } => {
            let card = client.answer_from_stored(&result).json;
            if expected.iter().all(|(k, v)| card.get(k) == Some(v)) {
                Reconciled::Applied {
                    result,
                    outcome: "card shows the update".into(),
                }
            } else {
                Reconciled::Send
            }
        }
        other => other,
    }
}

/// The read-back of a stored entry of any brand-family kind.
pub fn read_back_plan(entry: &OutboxEntry) -> Option<ReadBackPlan> {
    let (kind, target, body) = (entry.kind.as_str(), entry.target.as_str(), entry.body.as_slice());
    templates::read_back_plan(kind, &entry.method, target, body)
        .or_else(|| members::read_back_plan(kind, target, body))
        .or_else(|| feeds::read_back_plan(kind))
        .or_else(|| (kind == model::SYNC_POINTS_KIND).then_some(ReadBackPlan::Resend))
        .or_else(|| activities::read_back_plan(kind, target, body))
}

/// Every outbox kind the client delivers (for `resume_pending`).
pub const OUTBOX_KINDS: &[&str] = &[
    CONFIRM_KIND,
    templates::CREATE_KIND,
    templates::UPDATE_KIND,
    templates::REMOVE_KIND,
    members::INVALIDATE_KIND,
    members::IMPORT_KIND,
    members::IMPORT_BY_PHONE_KIND,
    feeds::FEED_KIND,
    feeds::EXCHANGE_KIND,
    model::SYNC_POINTS_KIND,
    activities::CREATE_KIND,
    activities::UPDATE_KIND,
    activities::TERMINATE_KIND,
];

/// Judges a read-back: applied when `member` is one of `values` (or present,
/// when `values` is empty); otherwise the request has not taken effect and
/// may be (re-)sent.
fn state_applied(member: &str, values: &[&str], read: Reconciled) -> Reconciled {
    match read {
        Reconciled::Applied { result, .. } => {
            let found = serde_json::from_slice::<Value>(&result)
                .ok()
                .and_then(|v| v.get(member).and_then(Value::as_str).map(str::to_string));
            match found {
                Some(state) if values.is_empty() || values.contains(&state.as_str()) => Reconciled::Applied {
                    result,
                    outcome: format!("{member} {state}"),
                },
                _ => Reconciled::Send,
            }
        }
        other => other,
    }
}

/// The throwaway entry a read-back is signed and judged as.
fn read_back_entry(target: &str) -> OutboxEntry {
    OutboxEntry::new(
        String::new(),
        "wechatpay.getUserCard",
        "GET",
        target.to_string(),
        Vec::new(),
        String::new(),
        0,
    )
}

/// `GET /user-cards/{code}?brand_id&card_id&openid` for a confirm entry.
fn read_back_target(entry: &OutboxEntry, body: &Value) -> Option<String> {
    let (path, query) = entry.target.split_once('?')?;
    let code = path.strip_suffix("/confirm")?.rsplit('/').next()?;
    let card_id = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("card_id="))
        .unwrap_or_default();
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let query = serde_json::json!({
        "user_card_code": percent_encoding::percent_decode_str(code).decode_utf8().ok()?,
        "card_id": percent_encoding::percent_decode_str(card_id).decode_utf8().ok()?,
        "brand_id": text("brand_id"),
        "openid": text("openid"),
    });
    model::prepare_get_user_card(query.to_string().as_bytes())
        .ok()
        .map(|p| p.target)
}

/// `{"code","message","detail"}` of an error answer (§10).
/// A `SIGN_ERROR` refusal gets our diagnosis added to its `detail` (as
/// `cardbridge_diagnosis`): the platform's echoed string-to-sign compared
/// with the one we signed for `sent` (issue 13.2).
fn with_sign_diagnosis(verdict: Verdict, sent: &Outgoing, clock_offset_ms: Option<i64>) -> Verdict {
    let Verdict::Failed { result, remote, note } = verdict else {
        return verdict;
    };
    if remote.code != "SIGN_ERROR" {
        return Verdict::Failed { result, remote, note };
    }
    let echoed = url::Url::parse(&sent.url).ok().and_then(|url| {
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        crate::diagnose::wechat_sign_error(&sent.as_received_at(target), &result)
    });
    let diagnosis = match echoed {
        Some(d) => Some(d.with_clock(clock_offset_ms)),
        // No echo (e.g. the timestamp itself was refused): the clocks may say why.
        None => crate::diagnose::OutboundDiagnosis::clock_only(clock_offset_ms),
    };
    // Stored with the refusal (so a replay reports the same), in `detail`.
    if let Some(d) = diagnosis
        && let Ok(mut answer) = serde_json::from_slice::<Value>(&result)
        && let Some(obj) = answer.as_object_mut()
    {
        let detail = obj.entry("detail").or_insert_with(|| Value::Object(Default::default()));
        if let Some(detail) = detail.as_object_mut() {
            detail.insert("cardbridge_diagnosis".into(), d.to_json());
            let result = answer.to_string().into_bytes();
            let remote = remote_from_error_body(remote.http_status, &result);
            return Verdict::Failed { result, remote, note };
        }
    }
    Verdict::Failed { result, remote, note }
}

fn remote_from_error_body(status: u16, body: &[u8]) -> RemoteDetail {
    let v: Value = serde_json::from_slice(body).unwrap_or_default();
    RemoteDetail {
        code: v.get("code").and_then(Value::as_str).unwrap_or_default().to_string(),
        message: v.get("message").and_then(Value::as_str).unwrap_or_default().to_string(),
        status: String::new(),
        http_status: status,
        detail: v.get("detail").map(shown_detail).unwrap_or_default(),
    }
}

/// The platform's `detail` as errors show it: a `SIGN_ERROR`'s echoed
/// string-to-sign (`sign_information.truncated_sign_message`) holds the start
/// of the body we sent, so errors carry only its length (the diagnosis
/// beside it says what differs).
fn shown_detail(detail: &Value) -> String {
    let mut detail = detail.clone();
    if let Some(echo) = detail
        .get_mut("sign_information")
        .and_then(|i| i.get_mut("truncated_sign_message"))
    {
        let len = echo.as_str().map_or(0, str::len);
        *echo = Value::String(format!("<{len} bytes, not shown>"));
    }
    detail.to_string()
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
