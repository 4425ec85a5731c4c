//! The subcommands. Each returns the process exit code, or an error that the
//! caller prints (exit 2). Nothing here prints a key; bodies only where the
//! operator asked for them.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use cardbridge::alipayplus::{self, model, signature};
use cardbridge::error::{Error, ErrorKind, Result};
use cardbridge::http::{Header, HttpRequest, find_header};
use cardbridge::outbox::view::state_name;
use cardbridge::store::{MemoryStore, OutboxQuery, OutboxState, PostgresStore, SqliteStore, Store};
use cardbridge::validate::Direction;
use cardbridge::wechatpay::{self, CallbackBegin, VerifyOptions, WechatPay};
use serde_json::{Value, json};

use crate::deliver::{self, AlipayCall, WechatCall};
use crate::platform::{PlatformConfig, Sources};
use crate::{
    DecryptArgs, DiagnoseArgs, NotifyArgs, OutboxListArgs, OutboxPurgeArgs, OutboxResumeArgs, OutboxShowArgs, Platform,
    SignArgs, VerifyArgs,
};

/// Where results go: human text, or one JSON document with `--json`.
pub struct Output {
    pub json: bool,
}

impl Output {
    pub fn print(&self, doc: Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{doc}");
        } else {
            println!("{}", text());
        }
    }

    pub fn error(&self, e: &Error) {
        if self.json {
            println!(
                "{}",
                json!({"error": e.kind().name(), "message": e.message(), "field": e.field(), "limit": e.limit()})
            );
        } else {
            eprintln!("error: {}", e.message());
        }
    }
}

fn read_input(path: &Path) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut data).map(|_| ())
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut data).map(|_| ()))
    };
    read.map_err(|e| {
        Error::new(
            ErrorKind::InvalidParameter,
            format!("{}: cannot be read ({})", path.display(), e.kind()),
        )
        .with_field("file")
    })?;
    Ok(data)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `Name: value` lines (from `-H` options or a captured header file).
fn parse_headers<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<Vec<Header>> {
    lines
        .into_iter()
        .map(|l| l.trim_end_matches(['\r', '\n']))
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split_once(':')
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidParameter,
                        "headers: each must be written as `Name: value`",
                    )
                    .with_field("header")
                })
        })
        .collect()
}

fn alipay_config(path: &Path) -> Result<alipayplus::Config> {
    alipayplus::Config::from_json(&read_input(path)?)
}

fn wechat_config(path: &Path) -> Result<wechatpay::Config> {
    wechatpay::Config::from_json(&read_input(path)?)
}

/// Shows a signed string safely: printable ASCII as is, everything else
/// escaped, and `\n` kept visible as `\n` followed by a line break.
fn show_signed(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in String::from_utf8_lossy(bytes).split_inclusive('\n') {
        for c in chunk.chars() {
            match c {
                '\n' => out.push_str("\\n\n"),
                c if c.is_control() => out.push_str(&c.escape_default().to_string()),
                c => out.push(c),
            }
        }
    }
    out
}

pub fn validate(out: &Output, api: &str, file: &Path, inbound: bool) -> Result<ExitCode> {
    let body = read_input(file)?;
    let dir = if inbound {
        Direction::Inbound
    } else {
        Direction::Outbound
    };
    let wire = wechatpay::model::WireOptions::default();
    // `wechat.<operation>`: any card-member operation of the catalogue (confirm, createCardTemplate, …).
    let checked = match api.strip_prefix("wechat.") {
        Some(operation) => wechatpay::operations::prepare(operation, &body, wire).map(|_| ()),
        None => model::normalize(api, &body, dir).map(|_| ()),
    };
    match checked {
        Ok(()) => {
            out.print(json!({"valid": true, "api": api}), || format!("{api}: valid"));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if matches!(e.kind(), ErrorKind::Validation | ErrorKind::InvalidJson) => {
            out.print(
                json!({"valid": false, "api": api, "field": e.field(), "rule": e.message(), "limit": e.limit()}),
                || {
                    let mut t = format!("{api}: invalid\n  {}", e.message());
                    if let Some(l) = e.limit() {
                        t.push_str(&format!("\n  limit: {l}"));
                    }
                    t
                },
            );
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e),
    }
}

pub fn sign(out: &Output, a: &SignArgs) -> Result<ExitCode> {
    let body = read_input(&a.file)?;
    match a.platform {
        Platform::Alipayplus => {
            let c = alipay_config(&a.config)?;
            let time = a
                .time
                .clone()
                .unwrap_or_else(|| alipayplus::time::format_request_time(now_ms(), 0));
            let signed = signature::content_to_sign(&a.method, &a.uri, &c.client_id, &time, &body);
            let sig = signature::sign_base64(&c.merchant_private_key, &a.method, &a.uri, &c.client_id, &time, &body)?;
            let header = signature::header_value(&c.key_version, &sig);
            out.print(
                json!({"string_to_sign": String::from_utf8_lossy(&signed), "length": signed.len(),
                       "headers": {"Client-Id": c.client_id, "Request-Time": time, "Signature": header}}),
                || {
                    format!(
                        "string to sign ({} bytes):\n{}\n\nClient-Id: {}\nRequest-Time: {time}\nSignature: {header}",
                        signed.len(),
                        show_signed(&signed),
                        c.client_id
                    )
                },
            );
        }
        Platform::Wechatpay => {
            let c = wechat_config(&a.config)?;
            let ts = match &a.time {
                Some(t) => t.parse::<i64>().map_err(|_| {
                    Error::new(ErrorKind::InvalidParameter, "time: must be Unix seconds").with_field("time")
                })?,
                None => chrono::Utc::now().timestamp(),
            };
            let nonce = a.nonce.clone().unwrap_or_else(wechatpay::sign::generate_nonce);
            let signed = wechatpay::sign::message(&a.method, &a.uri, ts, &nonce, &body);
            let r = c.signer.sign_with_nonce(&a.method, &a.uri, &body, ts, &nonce)?;
            out.print(
                json!({"string_to_sign": String::from_utf8_lossy(&signed), "length": signed.len(),
                       "headers": {"Authorization": r.authorization}}),
                || {
                    format!(
                        "string to sign ({} bytes):\n{}\nAuthorization: {}",
                        signed.len(),
                        show_signed(&signed),
                        r.authorization
                    )
                },
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn verify(out: &Output, a: &VerifyArgs) -> Result<ExitCode> {
    let body = read_input(&a.file)?;
    let headers = parse_headers(a.headers.iter().map(String::as_str))?;
    let (valid, reason, signed) = match a.platform {
        Platform::Alipayplus => {
            let c = alipay_config(&a.config)?;
            let uri = a.uri.as_deref().ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidParameter,
                    "uri: is required for Alipay+ (the signed request-target)",
                )
                .with_field("uri")
            })?;
            let client_id = find_header(&headers, "Client-Id").unwrap_or_default();
            let time = find_header(&headers, "Request-Time")
                .or_else(|| find_header(&headers, "Response-Time"))
                .unwrap_or_default();
            let header = find_header(&headers, "Signature");
            let key_version = header
                .and_then(|h| signature::parse_header(h).ok())
                .and_then(|p| p.key_version)
                .unwrap_or_default();
            let key = if a.ours {
                c.merchant_private_key.public_key()
            } else {
                c.platform_public_keys_by_version
                    .get(&key_version)
                    .cloned()
                    .unwrap_or_else(|| c.platform_public_key.clone())
            };
            let signed = signature::content_to_sign(&a.method, uri, client_id, time, &body);
            match signature::verify(&key, header, &a.method, uri, client_id, time, &body) {
                Ok(_) => (true, String::new(), signed),
                Err(f) => (false, f.reason().to_string(), signed),
            }
        }
        Platform::Wechatpay => {
            let c = wechat_config(&a.config)?;
            let ts = find_header(&headers, "Wechatpay-Timestamp")
                .unwrap_or_default()
                .to_string();
            let nonce = find_header(&headers, "Wechatpay-Nonce").unwrap_or_default().to_string();
            let now = if a.ignore_time {
                ts.parse().unwrap_or_default()
            } else {
                chrono::Utc::now().timestamp()
            };
            let signed = wechatpay::verify::message(&ts, &nonce, &body);
            match wechatpay::verify::verify(&c.keys, &headers, &body, now, VerifyOptions::default()) {
                Ok(_) => (true, String::new(), signed),
                Err(f) => (false, format!("{} ({})", f.reason.code(), f.detail), signed),
            }
        }
    };
    out.print(
        json!({"valid": valid, "reason": if valid { Value::Null } else { json!(reason) },
               "string_verified": String::from_utf8_lossy(&signed), "length": signed.len()}),
        || {
            let verdict = if valid {
                "signature valid".to_string()
            } else {
                format!("signature INVALID: {reason}")
            };
            format!(
                "{verdict}\nstring verified ({} bytes):\n{}",
                signed.len(),
                show_signed(&signed)
            )
        },
    );
    Ok(if valid { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `cardbridge diagnose`: [`cardbridge::diagnose`] on a captured call.
pub fn diagnose(out: &Output, a: &DiagnoseArgs) -> Result<ExitCode> {
    let header_text = String::from_utf8_lossy(&read_input(&a.headers)?).into_owned();
    let request = HttpRequest {
        method: "POST".into(),
        target: a.target.clone(),
        headers: parse_headers(header_text.lines())?,
        body: read_input(&a.body)?,
    };
    if let Some(answer) = &a.answer {
        let sent = HttpRequest {
            method: a.method.clone(),
            ..request
        };
        let answer = read_input(answer)?;
        let (diagnosis, expected) = match a.platform {
            Platform::Wechatpay => (
                cardbridge::diagnose::wechat_sign_error(&sent, &answer),
                "answer: not a WeChat Pay SIGN_ERROR with detail.sign_information, or the sent headers \
                 have no readable Authorization",
            ),
            Platform::Alipayplus => (
                cardbridge::diagnose::alipay_sign_refusal(&sent, &answer),
                "answer: not an Alipay+ answer whose result.resultMessage echoes the gateway's \
                 string-to-sign, or the sent headers lack Client-Id or Request-Time",
            ),
        };
        return match diagnosis {
            Some(d) => {
                out.print(json!({"outbound": d.to_json()}), || d.summary());
                Ok(ExitCode::from(1))
            }
            None => Err(Error::new(ErrorKind::InvalidParameter, expected).with_field("answer")),
        };
    }
    let now = a.now_ms.unwrap_or_else(now_ms);
    let diagnosis = match a.platform {
        Platform::Alipayplus => cardbridge::diagnose::alipay_inbound(&alipay_config(&a.config)?, &request, now),
        Platform::Wechatpay => {
            let config = wechat_config(&a.config)?;
            let options = VerifyOptions {
                require_signature_type: true,
            };
            cardbridge::diagnose::wechat_callback(&config.keys, &request, now, options)
        }
    };
    match diagnosis {
        None => {
            out.print(json!({"verifies": true}), || "the signature verifies".to_string());
            Ok(ExitCode::SUCCESS)
        }
        Some(d) => {
            let doc = json!({"verifies": false, "diagnosis": d.to_json()});
            out.print(doc, || d.summary());
            Ok(ExitCode::from(1))
        }
    }
}

pub fn decrypt_callback(out: &Output, a: &DecryptArgs) -> Result<ExitCode> {
    let config = wechat_config(&a.config)?;
    let header_text = String::from_utf8_lossy(&read_input(&a.headers)?).into_owned();
    let headers = parse_headers(header_text.lines())?;
    let body = read_input(&a.body)?;
    let now_ms = if a.ignore_time {
        find_header(&headers, "Wechatpay-Timestamp")
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or_default()
            .saturating_mul(1000)
    } else {
        chrono::Utc::now().timestamp_millis()
    };
    let wechat = WechatPay::new(config, Some(std::sync::Arc::new(MemoryStore::new())))?;
    let request = HttpRequest {
        method: "POST".into(),
        target: "/".into(),
        headers,
        body,
    };
    match wechat.callback_begin(&request, now_ms) {
        CallbackBegin::Handle(event) => {
            let doc: Value = serde_json::from_slice(&event.to_json()).unwrap_or_default();
            out.print(doc.clone(), || serde_json::to_string_pretty(&doc).unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
        CallbackBegin::Respond(r) => {
            let answer: Value = serde_json::from_slice(&r.body).unwrap_or_default();
            out.print(json!({"refused": r.status, "answer": answer}), || {
                format!("refused with HTTP {}: {}", r.status, answer)
            });
            Ok(ExitCode::from(1))
        }
    }
}

/// A SQLite file path, or a PostgreSQL connection string (`postgresql://…`
/// or libpq `key=value` form).
fn open_store(spec: &str) -> Result<Box<dyn Store>> {
    let postgres = spec.starts_with("postgres://") || spec.starts_with("postgresql://") || spec.contains('=');
    if postgres {
        Ok(Box::new(PostgresStore::open(spec)?))
    } else {
        Ok(Box::new(SqliteStore::open(spec)?))
    }
}

fn time_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

pub fn outbox_list(out: &Output, a: &OutboxListArgs) -> Result<ExitCode> {
    let store = open_store(&a.store.store)?;
    let state = match a.state.as_deref() {
        None => None,
        Some("pending") => Some(OutboxState::Pending),
        Some("succeeded") => Some(OutboxState::Succeeded),
        Some("failed") => Some(OutboxState::Failed),
        Some(_) => {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "state: must be pending, succeeded or failed",
            )
            .with_field("state"));
        }
    };
    let entries = store.outbox_list(&OutboxQuery {
        state,
        kind: a.kind.clone(),
        created_before_ms: None,
        after_id: a.after.clone(),
        limit: a.limit,
    })?;
    let rows: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({"id": e.id, "kind": e.kind, "state": state_name(e.state), "attempts": e.attempts,
                   "last_status": e.last_status, "last_error": e.last_error,
                   "created": time_text(e.created_ms), "updated": time_text(e.updated_ms),
                   "leased_until": if e.lease_until_ms > now_ms() { json!(time_text(e.lease_until_ms)) } else { Value::Null }})
        })
        .collect();
    out.print(json!({"entries": rows}), || {
        let mut t = format!(
            "{:<60} {:<24} {:<10} {:>8} {:>6}  {}",
            "ID", "KIND", "STATE", "ATTEMPTS", "HTTP", "CREATED"
        );
        for e in &entries {
            t.push_str(&format!(
                "\n{:<60} {:<24} {:<10} {:>8} {:>6}  {}",
                e.id,
                e.kind,
                state_name(e.state),
                e.attempts,
                e.last_status,
                time_text(e.created_ms)
            ));
        }
        t
    });
    Ok(ExitCode::SUCCESS)
}

pub fn outbox_show(out: &Output, a: &OutboxShowArgs) -> Result<ExitCode> {
    let store = open_store(&a.store.store)?;
    let Some(e) = store.outbox_get(&a.id)? else {
        return Err(Error::new(ErrorKind::InvalidParameter, "id: no outbox entry with this id").with_field("id"));
    };
    let attempts: Vec<Value> = store
        .outbox_attempts(&a.id)?
        .iter()
        .map(|t| json!({"number": t.number, "started": time_text(t.started_ms), "outcome": t.outcome, "status": t.status}))
        .collect();
    let mut doc = json!({"id": e.id, "kind": e.kind, "method": e.method, "target": e.target,
                         "state": state_name(e.state), "attempts": attempts, "last_status": e.last_status,
                         "last_error": e.last_error, "created": time_text(e.created_ms),
                         "updated": time_text(e.updated_ms), "body_bytes": e.body.len(),
                         "lease_owner": e.lease_owner, "leased_until": time_text(e.lease_until_ms)});
    if a.show_body {
        doc["body"] = json!(String::from_utf8_lossy(&e.body));
        doc["result"] = json!(e.result.as_deref().map(String::from_utf8_lossy));
    }
    out.print(doc.clone(), || serde_json::to_string_pretty(&doc).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

pub fn outbox_purge(out: &Output, a: &OutboxPurgeArgs) -> Result<ExitCode> {
    let store = open_store(&a.store.store)?;
    let cutoff = now_ms() - i64::from(a.older_than_days) * 86_400_000;
    let n = store.outbox_purge(cutoff)?;
    out.print(json!({"purged": n}), || format!("purged {n} final entries"));
    Ok(ExitCode::SUCCESS)
}

/// `notify`: one platform call to the merchant, judged. Exit 0 PASS, 1 FAIL,
/// 3 NO ANSWER.
pub fn notify(out: &Output, a: &NotifyArgs) -> Result<ExitCode> {
    let config = PlatformConfig::load(&Sources {
        config: a.config.as_deref(),
        keys: a.keys.as_deref(),
        certificate: None,
    })?;
    let timeout = std::time::Duration::from_millis(a.timeout_ms.clamp(1, 600_000));
    let body = a.body.as_deref().map(read_input).transpose()?;
    let report = if a.wechat {
        let mut call = WechatCall::new(a.url.clone(), a.tamper, timeout);
        call.event_type = a.event_type.clone();
        call.resource = match body {
            None => None,
            Some(b) => match serde_json::from_slice::<Value>(&b) {
                Ok(v @ Value::Object(_)) => Some(v),
                _ => {
                    return Err(
                        Error::new(ErrorKind::InvalidParameter, "body: must be a JSON object").with_field("body")
                    );
                }
            },
        };
        call.user_card_code = a.user_card_code.clone();
        call.card_id = a.card_id.clone();
        call.openid = a.openid.clone();
        let handler = crate::emulator::WechatPayHandler::new(config.wechat())?;
        let minted = deliver::wechat_mint(&handler, &call)?;
        deliver::wechat_deliver(&call, minted)?
    } else {
        let call = AlipayCall {
            url: a.url.clone(),
            api: a.api.clone(),
            body,
            request_id: a.request_id.clone(),
            request_time: None,
            tamper: a.tamper,
            timeout,
        };
        deliver::alipay_deliver(&config, &call)?
    };
    out.print(report.json_without_body(), || report.text());
    Ok(if report.pass {
        ExitCode::SUCCESS
    } else if report.no_answer.is_some() {
        ExitCode::from(3)
    } else {
        ExitCode::from(1)
    })
}

/// One outcome of `outbox resume`, without bodies or personal data.
fn resumed(id: &str, outcome: std::result::Result<String, Error>) -> Value {
    match outcome {
        Ok(summary) => json!({"id": id, "ok": true, "outcome": summary}),
        Err(e) => json!({"id": id, "ok": false, "error": e.kind().name(), "message": e.message()}),
    }
}

pub fn outbox_resume(out: &Output, a: &OutboxResumeArgs) -> Result<ExitCode> {
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::from(open_store(&a.store.store)?);
    let results: Vec<Value> = match a.platform {
        Platform::Alipayplus => {
            let ap = alipayplus::AlipayPlus::new(alipay_config(&a.config)?, Some(store))?;
            let summary =
                |r: Result<alipayplus::IssuedCard>| r.map(|c| format!("issued (signed answer: {})", c.signed));
            match &a.id {
                Some(id) => vec![resumed(id, summary(ap.resume(id)))],
                None => ap
                    .resume_pending()?
                    .into_iter()
                    .map(|(id, r)| resumed(&id, summary(r)))
                    .collect(),
            }
        }
        Platform::Wechatpay => {
            let wp = WechatPay::new(wechat_config(&a.config)?, Some(store))?;
            let summary = |r: Result<wechatpay::ApiAnswer>| {
                r.map(|ans| {
                    format!(
                        "answered {}, user_card_state {}",
                        ans.status, ans.json["user_card_state"]
                    )
                })
            };
            match &a.id {
                Some(id) => vec![resumed(id, summary(wp.resume(id)))],
                None => wp
                    .resume_pending()?
                    .into_iter()
                    .map(|(id, r)| resumed(&id, summary(r)))
                    .collect(),
            }
        }
    };
    let all_ok = results.iter().all(|r| r["ok"] == true);
    out.print(json!({"resumed": results}), || {
        let mut t = format!(
            "{} entr{} delivered",
            results.len(),
            if results.len() == 1 { "y" } else { "ies" }
        );
        for r in &results {
            let what = if r["ok"] == true {
                r["outcome"].clone()
            } else {
                r["message"].clone()
            };
            t.push_str(&format!(
                "\n  {}: {}",
                r["id"].as_str().unwrap_or_default(),
                what.as_str().unwrap_or_default()
            ));
        }
        t
    });
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
