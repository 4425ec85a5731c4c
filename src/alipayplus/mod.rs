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
