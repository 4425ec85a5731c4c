//! WeChat Pay APIv3 brand member cards for service providers
//! (`wechatpay-card-member.md`).
//!
//! * [`config`]: configuration (keys, key modes, wire switches, retries);
//! * [`model`]: confirm / update / get / points-sync payloads, validation and
//!   sensitive-field encryption hooks (§5, §4);
//! * [`client`]: outbound calls with signing, verification, retries, the
//!   durable outbox for `confirm`, and platform-certificate download (§5–§10);
//! * [`templates`], [`members`], [`feeds`], [`activities`]: the rest of the
//!   §4 family — card templates, user-card list / invalidate / import, component
//!   tokens, member
//!   feeds and the points-for-coupon answer, membership activities — each a
//!   validated request; every mutating one is a [`model::Mutation`] delivered
//!   through the outbox like `confirm`;
//! * [`answers`]: typed views of the answers (unknown members and enum values kept);
//! * [`inputs`]: typed inputs of every call (same validation as the JSON form);
//! * [`operations`]: the catalogue of operations by name (validation only);
//! * [`callback`]: the card-event callback handler, two steps (§3);
//! * [`sign`]: request signing and the `Authorization` header (§6), nonces,
//!   path-segment encoding (§5.1);
//! * [`verify`]: verification of responses and callbacks — message, headers,
//!   signature type, 300 s clock skew, `WECHATPAY/SIGNTEST/` probes (§7);
//! * [`keyring`]: WeChat Pay public keys and platform certificates, key
//!   selection for verification and for outbound encryption (§7.2, §8.1–8.3);
//! * [`certificates`]: decrypting a `/v3/certificates` answer (§8.2).
//!
//! The primitives live in [`crate::crypto`]: [`crate::crypto::aead`]
//! (AEAD_AES_256_GCM, [`crate::crypto::aead::ApiV3Key`]), [`crate::crypto::oaep`]
//! (RSA-OAEP SHA-1 sensitive fields, §9) and [`crate::crypto::x509`].

pub mod activities;
pub mod answers;
pub mod callback;
pub mod certificates;
pub mod client;
pub mod config;
pub mod feeds;
pub mod inputs;
pub mod keyring;
pub mod members;
pub mod model;
pub mod operations;
pub mod sign;
pub mod templates;
pub mod verify;

pub use certificates::decrypt_certificates;
pub use keyring::KeyRing;
pub use sign::{RequestSigner, SignedRequest};
pub use verify::{Verified, VerifyFailure, VerifyOptions, VerifyReason};

use crate::error::{Error, Result};
use crate::http::{HttpRequest, HttpResponse};
use crate::store::{SqliteStore, Store};
use std::sync::Arc;

pub use callback::{CallbackBegin, CallbackEvent, CallbackHandler, EventKind};
pub use client::{ApiAnswer, WechatClient};

/// A [`WechatPay`] call taking its input as one JSON object (what the typed
/// inputs and the C exports dispatch to).
pub type Call = fn(&WechatPay, &[u8]) -> Result<ApiAnswer>;
pub use config::Config;

/// One merchant's WeChat Pay card-member integration: the client and the
/// callback handler over shared keys and one durable store. Thread-safe.
pub struct WechatPay {
    client: Arc<WechatClient>,
    callbacks: CallbackHandler,
    metrics: Arc<crate::obs::Metrics>,
    store: Arc<dyn Store>,
    clock: crate::clock::Clock,
}

impl std::fmt::Debug for WechatPay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatPay")
            .field("client", &self.client)
            .field("callbacks", &self.callbacks)
            .finish_non_exhaustive()
    }
}

impl WechatPay {
    /// Builds the integration; with `store = None` the SQLite store at
    /// `config.store_path` is opened.
    pub fn new(config: Config, store: Option<Arc<dyn Store>>) -> Result<Self> {
        config.check()?;
        let store: Arc<dyn Store> = match (store, &config.store_path) {
            (Some(s), _) => s,
            (None, Some(path)) => Arc::new(SqliteStore::open(path)?),
            (None, None) => return Err(Error::config("config.store_path: is required when no store is given")),
        };
        let keys = Arc::new(client::SharedKeys::new(config.keys.clone()));
        let clock = config.clock.clone();
        let config = Arc::new(config);
        let metrics = Arc::new(crate::obs::Metrics::default());
        let client =
            Arc::new(WechatClient::new(config.clone(), keys.clone(), store.clone())?.with_metrics(metrics.clone()));
        let callbacks =
            CallbackHandler::new(config, keys, store.clone(), Some(client.clone())).with_metrics(metrics.clone());
        Ok(WechatPay {
            client,
            callbacks,
            metrics,
            store,
            clock,
        })
    }

    /// The clock every outbound timestamp, lease and attempt time of this
    /// integration reads (`config.clock`).
    pub fn clock(&self) -> &crate::clock::Clock {
        &self.clock
    }

    /// This integration's counters as JSON (README "Metrics"), with the
    /// number of pending confirm entries in its store.
    pub fn metrics(&self) -> serde_json::Value {
        let pending = self.store.outbox_count_pending(Some(client::CONFIRM_KIND));
        if let Err(e) = &pending {
            crate::obs::store_error(&self.metrics, "outbox_count_pending", e);
        }
        self.metrics.snapshot(pending.ok())
    }

    /// See [`WechatClient::confirm`].
    pub fn confirm(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.confirm(input)
    }
    /// Bring your own transport: see [`WechatClient::prepare_confirm`].
    pub fn prepare_confirm(&self, input: &[u8]) -> Result<crate::outbox::Progress<ApiAnswer>> {
        self.client.prepare_confirm(input)
    }
    /// Bring your own transport: see [`WechatClient::complete_confirm`].
    pub fn complete_confirm(
        &self,
        prepared: crate::outbox::Prepared,
        reply: crate::outbox::Reply,
    ) -> Result<crate::outbox::Progress<ApiAnswer>> {
        self.client.complete_confirm(prepared, reply)
    }
    /// [`Self::confirm`] with a per-call deadline overriding the retry
    /// budget's, or cancellation between attempts (the entry stays pending).
    pub fn confirm_with(&self, input: &[u8], options: &crate::outbox::CallOptions) -> Result<ApiAnswer> {
        self.client.confirm_with(input, options)
    }
    /// See [`WechatClient::resume_pending`].
    pub fn resume_pending(&self) -> Result<Vec<(String, Result<ApiAnswer>)>> {
        self.client.resume_pending()
    }
    /// Delivers (or replays) one outbox entry of any kind by id, starting
    /// with its reconcile. See [`WechatClient::resume`].
    pub fn resume(&self, outbox_id: &str) -> Result<ApiAnswer> {
        self.client.resume(outbox_id, &crate::outbox::CallOptions::default())
    }

    /// See [`WechatClient::get_user_card`].
    pub fn get_user_card(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.get_user_card(input)
    }
    /// See [`WechatClient::update_user_card`].
    pub fn update_user_card(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.update_user_card(input)
    }
    /// [`Self::update_user_card`] with a per-call deadline or cancellation.
    pub fn update_user_card_with(&self, input: &[u8], options: &crate::outbox::CallOptions) -> Result<ApiAnswer> {
        self.client.update_user_card_with(input, options)
    }
    /// See [`WechatClient::sync_user_points`].
    pub fn sync_user_points(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.sync_user_points(input)
    }
    /// Creates a card template: see [`WechatClient::create_card_template`].
    pub fn create_card_template(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.create_card_template(input)
    }
    /// Lists card templates: see [`WechatClient::list_card_templates`].
    pub fn list_card_templates(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.list_card_templates(input)
    }
    /// Reads a card template: see [`WechatClient::get_card_template`].
    pub fn get_card_template(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.get_card_template(input)
    }
    /// Updates a card template: see [`WechatClient::update_card_template`].
    pub fn update_card_template(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.update_card_template(input)
    }
    /// Removes (invalidates or deletes) a card template: see [`WechatClient::remove_card_template`].
    pub fn remove_card_template(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.remove_card_template(input)
    }
    /// Lists a user's cards: see [`WechatClient::list_user_cards`].
    pub fn list_user_cards(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.list_user_cards(input)
    }
    /// Invalidates a user card: see [`WechatClient::invalidate_user_card`].
    pub fn invalidate_user_card(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.invalidate_user_card(input)
    }
    /// Imports a member by openid: see [`WechatClient::import_user_card`].
    pub fn import_user_card(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.import_user_card(input)
    }
    /// Imports a member by phone (when enabled): see [`WechatClient::import_user_card_by_phone`].
    pub fn import_user_card_by_phone(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.import_user_card_by_phone(input)
    }
    /// A join-component token: see [`WechatClient::create_pre_auth_token`].
    pub fn create_pre_auth_token(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.create_pre_auth_token(input)
    }
    /// A payment-code component token: see [`WechatClient::create_pay_view_token`].
    pub fn create_pay_view_token(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.create_pay_view_token(input)
    }
    /// Posts a member feed: see [`WechatClient::create_user_feed`].
    pub fn create_user_feed(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.create_user_feed(input)
    }
    /// Answers a points-for-coupon exchange: see [`WechatClient::confirm_exchange_coupon`].
    pub fn confirm_exchange_coupon(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.confirm_exchange_coupon(input)
    }
    /// Creates a membership activity: see [`WechatClient::create_membership_activity`].
    pub fn create_membership_activity(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.create_membership_activity(input)
    }
    /// Lists membership activities: see [`WechatClient::list_membership_activities`].
    pub fn list_membership_activities(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.list_membership_activities(input)
    }
    /// Reads a membership activity: see [`WechatClient::get_membership_activity`].
    pub fn get_membership_activity(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.get_membership_activity(input)
    }
    /// Updates a membership activity: see [`WechatClient::update_membership_activity`].
    pub fn update_membership_activity(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.update_membership_activity(input)
    }
    /// Terminates a membership activity: see [`WechatClient::terminate_membership_activity`].
    pub fn terminate_membership_activity(&self, input: &[u8]) -> Result<ApiAnswer> {
        self.client.terminate_membership_activity(input)
    }
    /// Any call with its typed input ([`inputs`]): the input's JSON form sent
    /// to the call's JSON method ([`inputs::TypedInput::CALL`]), so both forms
    /// share one validation and one outbox key.
    pub fn call_typed<I: inputs::TypedInput>(&self, input: &I) -> Result<ApiAnswer> {
        (I::CALL)(self, &input.to_json()?)
    }
    /// See [`WechatClient::refresh_certificates`].
    pub fn refresh_certificates(&self) -> Result<usize> {
        self.client.refresh_certificates()
    }
    /// The configured largest callback body ([`Config::max_body_bytes`]).
    pub fn max_body_bytes(&self) -> usize {
        self.callbacks.max_body_bytes()
    }
    /// See [`CallbackHandler::begin`].
    pub fn callback_begin(&self, request: &HttpRequest, now_ms: i64) -> CallbackBegin {
        self.callbacks.begin(request, now_ms)
    }

    /// See [`CallbackHandler::begin_diagnosed`].
    pub fn callback_begin_diagnosed(
        &self,
        request: &HttpRequest,
        now_ms: i64,
    ) -> (CallbackBegin, Option<crate::diagnose::Diagnosis>) {
        self.callbacks.begin_diagnosed(request, now_ms)
    }
    /// See [`CallbackHandler::finish`].
    pub fn callback_finish(
        &self,
        event: &mut CallbackEvent,
        accepted: bool,
        reason: &str,
        now_ms: i64,
    ) -> Result<HttpResponse> {
        self.callbacks.finish(event, accepted, reason, now_ms)
    }
}
