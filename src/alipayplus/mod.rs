//! Alipay+ Mini Program Platform membership APIs (`alipayplus-mpp.md`).
//!
//! * [`signature`]: the signing and verification rules (§4);
//! * [`time`]: `Request-Time` / `Response-Time` and ISO 8601 handling (§4.6);
//! * [`model`]: payloads of the five APIs and their validation (§6–7);
//! * [`config`]: configuration (§10);
//! * [`client`]: the outbound `issueCard` client with retries and outbox (§8.2);
//! * [`inbound`]: the handler for the four platform → merchant calls (§7, §8.1).

pub mod client;
pub mod config;
pub mod inbound;
pub mod model;
pub mod signature;
pub mod time;

use crate::error::{Error, Result};
use crate::http::{HttpRequest, HttpResponse};
use crate::obs::Metrics;
use crate::store::{SqliteStore, Store};
use std::sync::Arc;

pub use client::{IssueCardClient, IssuedCard};
pub use config::Config;
pub use inbound::{Begin, InboundApi, InboundHandler, InboundRequest, PendingCall};

/// One merchant's Alipay+ integration: the outbound `issueCard` client and the
/// inbound handler, sharing configuration, keys and the durable store.
/// Thread-safe: share one instance (e.g. in an `Arc`) between threads.
pub struct AlipayPlus {
    client: Option<IssueCardClient>,
    inbound: InboundHandler,
    metrics: Arc<Metrics>,
    store: Arc<dyn Store>,
    clock: crate::clock::Clock,
}

impl std::fmt::Debug for AlipayPlus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlipayPlus")
            .field("client", &self.client)
            .field("inbound", &self.inbound)
            .finish_non_exhaustive()
    }
}

impl AlipayPlus {
    /// Builds the integration. With `store = None`, the SQLite store at
    /// `config.store_path` is opened (created if needed).
    pub fn new(config: Config, store: Option<Arc<dyn Store>>) -> Result<Self> {
        config.check()?;
        let store: Arc<dyn Store> = match (store, &config.store_path) {
            (Some(s), _) => s,
            (None, Some(path)) => Arc::new(SqliteStore::open(path)?),
            (None, None) => return Err(Error::config("config.store_path: is required when no store is given")),
        };
        let clock = config.clock.clone();
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::default());
        let client = match config.base_url {
            Some(_) => Some(IssueCardClient::new(config.clone(), store.clone())?.with_metrics(metrics.clone())),
            None => None,
        };
        Ok(AlipayPlus {
            client,
            inbound: InboundHandler::new(config, store.clone())?.with_metrics(metrics.clone()),
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
    /// number of pending issueCard entries in its store.
    pub fn metrics(&self) -> serde_json::Value {
        let pending = self.store.outbox_count_pending(Some(client::OUTBOX_KIND));
        if let Err(e) = &pending {
            crate::obs::store_error(&self.metrics, "outbox_count_pending", e);
        }
        self.metrics.snapshot(pending.ok())
    }

    fn client(&self) -> Result<&IssueCardClient> {
        self.client
            .as_ref()
            .ok_or_else(|| Error::config("config.base_url: is required to call issueCard"))
    }

    /// See [`IssueCardClient::issue_card`].
    pub fn issue_card(&self, request: &model::IssueCardRequest) -> Result<IssuedCard> {
        self.client()?.issue_card(request)
    }

    /// [`Self::issue_card`] with a per-call deadline overriding the retry
    /// budget's, or cancellation between attempts (the entry stays pending).
    pub fn issue_card_with(
        &self,
        request: &model::IssueCardRequest,
        options: &crate::outbox::CallOptions,
    ) -> Result<IssuedCard> {
        self.client()?.issue_card_with(request, options)
    }

    /// Bring your own transport: see [`IssueCardClient::prepare_issue_card`].
    pub fn prepare_issue_card(&self, request: &model::IssueCardRequest) -> Result<crate::outbox::Progress<IssuedCard>> {
        self.client()?.prepare_issue_card(request)
    }

    /// Bring your own transport: see [`IssueCardClient::complete_issue_card`].
    pub fn complete_issue_card(
        &self,
        prepared: crate::outbox::Prepared,
        reply: crate::outbox::Reply,
    ) -> Result<crate::outbox::Progress<IssuedCard>> {
        self.client()?.complete_issue_card(prepared, reply)
    }

    /// See [`IssueCardClient::resume_pending`].
    pub fn resume_pending(&self) -> Result<Vec<(String, Result<IssuedCard>)>> {
        self.client()?.resume_pending()
    }

    /// Delivers (or replays) one issueCard outbox entry by id: a pending entry
    /// is sent again (nobody else may hold its lease), a final one returns its
    /// stored answer. See [`IssueCardClient::resume`].
    pub fn resume(&self, outbox_id: &str) -> Result<IssuedCard> {
        self.client()?.resume(outbox_id, &crate::outbox::CallOptions::default())
    }

    /// See [`InboundHandler::begin`].
    pub fn begin(&self, request: &HttpRequest, now_ms: i64) -> Begin {
        self.inbound.begin(request, now_ms)
    }

    /// See [`InboundHandler::begin_diagnosed`].
    pub fn begin_diagnosed(&self, request: &HttpRequest, now_ms: i64) -> (Begin, Option<crate::diagnose::Diagnosis>) {
        self.inbound.begin_diagnosed(request, now_ms)
    }

    /// See [`InboundHandler::finish`].
    pub fn finish(&self, pending: &mut PendingCall, decision: &[u8], now_ms: i64) -> Result<HttpResponse> {
        self.inbound.finish(pending, decision, now_ms)
    }

    /// See [`InboundHandler::finish_unknown`].
    pub fn finish_unknown(&self, pending: &mut PendingCall, now_ms: i64) -> Result<HttpResponse> {
        self.inbound.finish_unknown(pending, now_ms)
    }

    /// The configured largest inbound body ([`Config::max_body_bytes`]).
    pub fn max_body_bytes(&self) -> usize {
        self.inbound.max_body_bytes()
    }

    /// See [`InboundHandler::purge_expired`].
    pub fn purge_expired(&self, now_ms: i64) -> Result<usize> {
        self.inbound.purge_expired(now_ms)
    }
}
