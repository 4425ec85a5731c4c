//! `cardbridge emulator`: one process playing both platforms on one port.
//!
//! * `/v3/...` is WeChat Pay (the card-member APIs and `/v3/certificates`);
//! * `/__cardbridge/...` is the control API (JSON over HTTP, see the README);
//! * every other path is the Alipay+ platform (`issueCard` under the path
//!   prefix, `F INVALID_API` elsewhere, as the gateway answers).
//!
//! The request handling is this binary's platform emulators
//! (`crate::emulator`, also compiled into the Rust integration tests), so the
//! binary answers exactly as the in-process emulators do. Stops cleanly on SIGTERM, SIGINT or `POST /__cardbridge/shutdown`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crate::emulator::{
    Action, AlipayPlatformHandler, Alteration, Fault, HttpServer, RandomFaults, SAMPLE_BRAND_ID, WechatFault,
    WechatPayHandler,
};
use cardbridge::error::{Error, ErrorKind, Result};
use cardbridge::http::{HttpRequest, HttpResponse};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};

use crate::deliver::{self, AlipayCall, Tamper, WechatCall};
use crate::platform::{PlatformConfig, Sources};
use crate::{EmulatorArgs, commands::Output};

/// The control API's path prefix.
pub const CONTROL: &str = "/__cardbridge";

/// Set by SIGTERM, SIGINT and `POST /__cardbridge/shutdown`.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe;
    // `signal` is called before any other thread could be installing handlers.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
}

/// The cards kept across restarts (`--state FILE`): written (to a temporary
/// file, then renamed) after every platform request that changed them, before
/// the answer goes out, and at exit.
struct StateFile {
    path: PathBuf,
    last: Mutex<String>,
}

impl StateFile {
    fn load(path: &Path, alipay: &AlipayPlatformHandler, wechat: &WechatPayHandler) -> Result<(Self, usize)> {
        let bad = |rule: &str| {
            Error::new(ErrorKind::InvalidConfig, format!("state: {} {rule}", path.display())).with_field("state")
        };
        let mut restored = 0;
        let mut last = String::new();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let doc: Value = serde_json::from_str(&text).map_err(|_| bad("is not JSON"))?;
                if let Some(a) = doc.get("alipayplus") {
                    alipay.import_state(a).map_err(|e| bad(e.message()))?;
                }
                if let Some(w) = doc.get("wechatpay") {
                    wechat.import_state(w).map_err(|e| bad(e.message()))?;
                }
                restored = alipay.cards_issued() + wechat.user_card_codes().len();
                last = text;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(bad(&format!("cannot be read ({})", e.kind()))),
        }
        Ok((
            StateFile {
                path: path.to_path_buf(),
                last: Mutex::new(last),
            },
            restored,
        ))
    }

    /// Writes the state if it changed; an error names the file and the cause.
    fn write(&self, alipay: &AlipayPlatformHandler, wechat: &WechatPayHandler) -> std::io::Result<()> {
        let text = json!({"alipayplus": alipay.export_state(), "wechatpay": wechat.export_state()}).to_string();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if *last == text {
            return Ok(());
        }
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, &text).and_then(|()| std::fs::rename(&tmp, &self.path))?;
        *last = text;
        Ok(())
    }

    fn save(&self, alipay: &AlipayPlatformHandler, wechat: &WechatPayHandler) {
        if let Err(e) = self.write(alipay, wechat) {
            eprintln!(
                "cardbridge emulator: cannot write the state file {} ({})",
                self.path.display(),
                e.kind()
            );
        }
    }
}

struct Emulator {
    config: PlatformConfig,
    alipay: AlipayPlatformHandler,
    wechat: WechatPayHandler,
    state: Option<StateFile>,
    /// Cards restored from the state file at start.
    restored: usize,
    url: OnceLock<String>,
}

/// `http://host:port` for clients: an unspecified bind address is reached on loopback.
fn client_url(addr: SocketAddr) -> String {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(match a {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{a}")
}

pub fn run(out: &Output, a: &EmulatorArgs) -> Result<ExitCode> {
    let certificate = match (&a.wechat_certificate, &a.wechat_certificate_key) {
        (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
        (None, None) => None,
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "wechat-certificate: give both --wechat-certificate and --wechat-certificate-key",
            )
            .with_field("wechat-certificate"));
        }
    };
    let config = PlatformConfig::load(&Sources {
        config: a.config.as_deref(),
        keys: a.keys.as_deref(),
        certificate,
    })?;
    let alipay = AlipayPlatformHandler::new(config.alipay())?;
    let wechat = WechatPayHandler::new(config.wechat())?;
    let (state, restored) = match &a.state {
        Some(p) => {
            let (s, n) = StateFile::load(p, &alipay, &wechat)?;
            // Fail now, not at the first card, if the file cannot be written.
            s.write(&alipay, &wechat).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!("state: {} cannot be written ({})", p.display(), e.kind()),
                )
                .with_field("state")
            })?;
            (Some(s), n)
        }
        None => (None, 0),
    };
    let addr = (a.host.as_str(), a.port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut i| i.next())
        .ok_or_else(|| {
            Error::new(ErrorKind::InvalidParameter, "host: cannot be resolved to an address").with_field("host")
        })?;
    install_signal_handlers();
    let emulator = Arc::new(Emulator {
        config,
        alipay,
        wechat,
        state,
        restored,
        url: OnceLock::new(),
    });
    let serving = Arc::clone(&emulator);
    let server = HttpServer::bind(addr, move |request| serving.route(request))?;
    let url = client_url(server.local_addr());
    let _ = emulator.url.set(url.clone());
    if !addr.ip().is_loopback() {
        eprintln!(
            "cardbridge emulator: warning: listening on {addr}, not loopback; the control API has no \
             authentication and delivers calls for whoever reaches it"
        );
    }
    out.print(emulator.info(), || emulator.banner());

    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    server.stop();
    if let Some(s) = &emulator.state {
        s.save(&emulator.alipay, &emulator.wechat);
    }
    eprintln!("cardbridge emulator: stopped");
    Ok(ExitCode::SUCCESS)
}

/// A control API answer.
fn reply(status: u16, doc: &Value) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: doc.to_string().into_bytes(),
    }
}

fn invalid(field: &str, rule: &str) -> Error {
    Error::new(ErrorKind::InvalidParameter, format!("{field}: {rule}")).with_field(field)
}

/// Typed members of a control request body; errors name the member.
struct Args<'a>(&'a Map<String, Value>);

impl Args<'_> {
    fn string(&self, name: &str) -> Result<Option<String>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(name, "must be a string")),
        }
    }

    fn required(&self, name: &str) -> Result<String> {
        self.string(name)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(name, "is required (a non-empty string)"))
    }

    fn integer(&self, name: &str) -> Result<Option<i64>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| invalid(name, "must be an integer")),
        }
    }

    fn ranged(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>> {
        match self.integer(name)? {
            Some(n) if !(min..=max).contains(&n) => Err(invalid(name, &format!("must be from {min} to {max}"))),
            n => Ok(n),
        }
    }

    fn probability(&self, name: &str) -> Result<f64> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(0.0),
            Some(v) => v
                .as_f64()
                .filter(|p| (0.0..=1.0).contains(p))
                .ok_or_else(|| invalid(name, "must be a number from 0 to 1")),
        }
    }

    fn boolean(&self, name: &str, default: bool) -> Result<bool> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| invalid(name, "must be true or false")),
        }
    }

    fn tamper(&self) -> Result<Tamper> {
        Ok(match self.string("tamper")? {
            Some(t) => Tamper::parse(&t)?,
            None => Tamper::None,
        })
    }

    fn timeout(&self) -> Result<Duration> {
        let ms = self.ranged("timeout_ms", 1, 600_000)?.unwrap_or(10_000);
        Ok(Duration::from_millis(ms.unsigned_abs()))
    }

    /// A body given as a JSON value (sent compact) or as text (sent as is).
    fn body(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_bytes().to_vec())),
            Some(v @ Value::Object(_)) => Ok(Some(v.to_string().into_bytes())),
            Some(_) => Err(invalid(name, "must be a JSON object or a string")),
        }
    }
}

/// One object, or an array of them (each queued in order).
fn each_object(body: &Value) -> Result<Vec<&Map<String, Value>>> {
    match body {
        Value::Object(m) => Ok(vec![m]),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_object()
                    .ok_or_else(|| invalid("body", "must be an object or an array of objects"))
            })
            .collect(),
        _ => Err(invalid("body", "must be an object or an array of objects")),
    }
}

fn delay(a: &Args<'_>) -> Result<Duration> {
    let ms = a
        .ranged("delay_ms", 0, 600_000)?
        .ok_or_else(|| invalid("delay_ms", "is required for this fault"))?;
    Ok(Duration::from_millis(ms.unsigned_abs()))
}

fn alipay_fault(a: &Args<'_>) -> Result<Fault> {
    Ok(match a.required("fault")?.as_str() {
        "unknown" => Fault::Unknown,
        "fail" => Fault::Fail {
            code: a.string("code")?.unwrap_or_else(|| "PROCESS_FAIL".into()),
            message: a.string("message")?.unwrap_or_else(|| "emulated failure".into()),
        },
        "traffic_limit" => Fault::TrafficLimit,
        "http_status" => Fault::HttpStatus(
            a.ranged("status", 100, 999)?
                .and_then(|s| u16::try_from(s).ok())
                .ok_or_else(|| invalid("status", "is required for http_status"))?,
        ),
        "delay" => Fault::DelayThenAnswer(delay(a)?),
        "drop" => Fault::DropAfterProcessing,
        "unsigned" => Fault::Unsigned,
        "bad_signature" => Fault::BadSignature,
        "success_without_card_no" => Fault::SuccessWithoutCardNo,
        _ => {
            return Err(invalid(
                "fault",
                "must be one of unknown, fail, traffic_limit, http_status, delay, drop, unsigned, bad_signature, \
                 success_without_card_no",
            ));
        }
    })
}

fn wechat_fault(a: &Args<'_>) -> Result<WechatFault> {
    Ok(match a.required("fault")?.as_str() {
        "status" => {
            let status = a
                .ranged("status", 100, 999)?
                .and_then(|s| u16::try_from(s).ok())
                .ok_or_else(|| invalid("status", "is required for status"))?;
            let (code, message) = match status {
                429 => ("RATELIMIT_EXCEEDED", "达到调用速率限制"),
                400 => ("PARAM_ERROR", "参数错误"),
                s if s >= 500 => ("SYSTEM_ERROR", "系统错误"),
                _ => ("INVALID_REQUEST", "请求错误"),
            };
            WechatFault::Status {
                status,
                code: a.string("code")?.unwrap_or_else(|| code.into()),
                message: a.string("message")?.unwrap_or_else(|| message.into()),
            }
        }
        "accepted_202" => WechatFault::Accepted202,
        "delay" => WechatFault::DelayThenAnswer(delay(a)?),
        "drop" => WechatFault::DropAfterProcessing,
        "unsigned" => WechatFault::Unsigned,
        "bad_signature" => WechatFault::BadSignature,
        "stale" => WechatFault::StaleTimestamp,
        "probe" => WechatFault::SignTestProbe,
        "reserialized_body" => WechatFault::Altered(Alteration::ReserializedBody),
        "reencoded_query" => WechatFault::Altered(Alteration::ReencodedQuery),
        _ => {
            return Err(invalid(
                "fault",
                "must be one of status, accepted_202, delay, drop, unsigned, bad_signature, stale, probe",
            ));
        }
    })
}

/// `RandomFaults::path_contains` is `&'static`: each distinct text is kept once.
fn interned(text: &str) -> &'static str {
    static SEEN: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(s) = seen.iter().find(|s| **s == text) {
        return s;
    }
    let s: &'static str = Box::leak(text.to_string().into_boxed_str());
    seen.push(s);
    s
}

fn request_doc(r: &HttpRequest) -> Value {
    json!({"method": r.method, "target": r.target,
           "headers": r.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
           "body": String::from_utf8_lossy(&r.body)})
}

impl Emulator {
    fn url(&self) -> &str {
        self.url.get().map(String::as_str).unwrap_or_default()
    }

    fn route(&self, request: &HttpRequest) -> Action {
        let path = request.target.split('?').next().unwrap_or_default();
        if path == CONTROL || path.starts_with(&format!("{CONTROL}/")) {
            return Action::Respond(self.control(request));
        }
        let action = if path.starts_with("/v3/") {
            self.wechat.handle(request)
        } else {
            self.alipay.handle(request)
        };
        if let Some(s) = &self.state {
            s.save(&self.alipay, &self.wechat);
        }
        action
    }

    fn info(&self) -> Value {
        let c = &self.config;
        let url = self.url();
        json!({
            "url": url,
            "control": format!("{url}{CONTROL}/"),
            "alipayplus": {"base_url": url, "path_prefix": c.path_prefix,
                           "issue_card_url": format!("{url}{}", self.alipay.issue_card_path()),
                           "client_id": c.client_id, "key_version": c.key_version},
            "wechatpay": {"base_url": url, "mchid": c.mchid, "merchant_serial_no": c.merchant_serial_no,
                          "public_key_id": c.public_key_id,
                          "certificate_serial": c.platform_certificate.as_ref().map(|p| p.serial.clone()),
                          "api_v3_key": if c.api_v3_key_is_test { "the test key (README)" } else { "from the configuration" }},
            "keys": c.key_paths_json(),
            "state": self.state.as_ref().map(|s| s.path.display().to_string()),
            "restored_cards": self.restored,
            "pid": std::process::id(),
        })
    }

    fn banner(&self) -> String {
        let c = &self.config;
        let url = self.url();
        let mut t = format!(
            "cardbridge emulator listening on {url}\n  \
             Alipay+     issueCard at {url}{} (client_id {}, keyVersion {})\n  \
             WeChat Pay  {url}/v3/... (mchid {}, merchant serial {}, public key ID {}{})\n  \
             control     {url}{CONTROL}/\n  keys:",
            self.alipay.issue_card_path(),
            c.client_id,
            c.key_version,
            c.mchid,
            c.merchant_serial_no,
            c.public_key_id,
            c.platform_certificate
                .as_ref()
                .map(|p| format!(", certificate serial {}", p.serial))
                .unwrap_or_default(),
        );
        for (role, p) in &c.key_paths {
            t.push_str(&format!("\n    {role:<24} {}", p.display()));
        }
        match &self.state {
            Some(s) => t.push_str(&format!(
                "\n  state       {} ({} cards restored)",
                s.path.display(),
                self.restored
            )),
            None => t.push_str("\n  state       in memory (--state FILE keeps cards across restarts)"),
        }
        t.push_str("\nStop with Ctrl-C or SIGTERM.");
        t
    }

    fn control(&self, request: &HttpRequest) -> HttpResponse {
        let path = request.target.split('?').next().unwrap_or_default();
        let sub = path[CONTROL.len()..].trim_end_matches('/');
        let body = if request.body.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Map::new())
        } else {
            match serde_json::from_slice::<Value>(&request.body) {
                Ok(v) => v,
                Err(_) => {
                    return reply(
                        400,
                        &json!({"error": "INVALID_JSON", "message": "body: must be JSON", "field": "body"}),
                    );
                }
            }
        };
        let empty = Map::new();
        let args = Args(body.as_object().unwrap_or(&empty));
        let method = request.method.as_str();
        let result = match (method, sub) {
            ("GET", "") => Ok(self.info()),
            ("GET", "/counters") => Ok(self.counters()),
            ("POST", "/shutdown") => {
                STOP.store(true, Ordering::SeqCst);
                Ok(json!({"stopping": true}))
            }
            ("POST", "/alipayplus/faults") => each_object(&body).and_then(|items| {
                let faults = items
                    .into_iter()
                    .map(|m| Self::repeat(&Args(m), alipay_fault))
                    .collect::<Result<Vec<_>>>()?;
                let n = faults.iter().map(Vec::len).sum::<usize>();
                faults.into_iter().flatten().for_each(|f| self.alipay.push_fault(f));
                Ok(json!({"queued": n}))
            }),
            ("GET", "/alipayplus/cards") => Ok(json!({"cards": self.alipay.issued_cards()})),
            ("POST", "/alipayplus/mint") => self.alipay_mint(&args),
            ("POST", "/alipayplus/deliver") => self.alipay_deliver(&args),
            ("POST", "/alipayplus/verify") => self.alipay_verify(&args),
            ("POST", "/wechatpay/faults") => each_object(&body).and_then(|items| {
                let faults = items
                    .into_iter()
                    .map(|m| Self::repeat(&Args(m), wechat_fault))
                    .collect::<Result<Vec<_>>>()?;
                let n = faults.iter().map(Vec::len).sum::<usize>();
                faults.into_iter().flatten().for_each(|f| self.wechat.push_fault(f));
                Ok(json!({"queued": n}))
            }),
            ("POST", "/wechatpay/random-faults") => self.random_faults(&args),
            ("DELETE", "/wechatpay/random-faults") => {
                self.wechat.set_random_faults(None);
                Ok(json!({"random_faults": false}))
            }
            ("POST", "/wechatpay/cards") => self.seed_card(&args),
            ("GET", "/wechatpay/cards") => Ok(json!({"cards": self.wechat.user_card_codes().iter()
                .map(|c| (c.clone(), self.card_doc(c).unwrap_or_default())).collect::<Map<_, _>>()})),
            ("GET", p) if p.starts_with("/wechatpay/cards/") => {
                let code = percent_decode_str(&p["/wechatpay/cards/".len()..])
                    .decode_utf8_lossy()
                    .into_owned();
                match self.card_doc(&code) {
                    Some(doc) => Ok(doc),
                    None => {
                        return reply(
                            404,
                            &json!({"error": "NOT_FOUND", "message": "user_card_code: no such card", "field": "user_card_code"}),
                        );
                    }
                }
            }
            ("POST", "/wechatpay/mint") => self.wechat_mint(&args).map(|(doc, _)| doc),
            ("POST", "/wechatpay/deliver") => self.wechat_deliver(&args),
            (
                _,
                ""
                | "/counters"
                | "/shutdown"
                | "/alipayplus/faults"
                | "/alipayplus/cards"
                | "/alipayplus/mint"
                | "/alipayplus/deliver"
                | "/alipayplus/verify"
                | "/wechatpay/faults"
                | "/wechatpay/random-faults"
                | "/wechatpay/cards"
                | "/wechatpay/mint"
                | "/wechatpay/deliver",
            ) => {
                return reply(
                    405,
                    &json!({"error": "METHOD_NOT_ALLOWED", "message": "method not allowed on this control endpoint"}),
                );
            }
            _ => {
                return reply(
                    404,
                    &json!({"error": "NOT_FOUND", "message": "no such control endpoint (see GET /__cardbridge/)"}),
                );
            }
        };
        match result {
            Ok(doc) => reply(200, &doc),
            Err(e) => {
                let status = if matches!(e.kind(), ErrorKind::InvalidParameter | ErrorKind::InvalidConfig) {
                    400
                } else {
                    500
                };
                reply(
                    status,
                    &json!({"error": e.kind().name(), "message": e.message(), "field": e.field()}),
                )
            }
        }
    }

    /// A fault and its `count` (default 1, at most 1000).
    fn repeat<F: Clone>(a: &Args<'_>, parse: fn(&Args<'_>) -> Result<F>) -> Result<Vec<F>> {
        let fault = parse(a)?;
        let count = a.ranged("count", 1, 1000)?.unwrap_or(1);
        Ok(vec![fault; usize::try_from(count).unwrap_or(1)])
    }

    fn counters(&self) -> Value {
        let w = &self.wechat;
        let codes = w.user_card_codes();
        json!({
            "alipayplus": {"issue_card_hits": self.alipay.issue_card_hits(),
                           "cards_issued": self.alipay.cards_issued(),
                           "hits": self.alipay.hits_by_request_id()},
            "wechatpay": {"hits": w.hits(""), "hits_by_path": w.hits_by_path(),
                          "confirm_hits_total": w.hits_confirm_total(),
                          "confirm_hits": w.confirm_hits_by_code(),
                          "confirms_applied": codes.iter().map(|c| (c.clone(), json!(w.confirms_applied_for(c))))
                              .collect::<Map<_, _>>(),
                          "cards_confirmed": w.confirms_applied()},
        })
    }

    fn card_doc(&self, code: &str) -> Option<Value> {
        let w = &self.wechat;
        let card = w.user_card(code)?;
        Some(json!({"card": card, "confirms_applied": w.confirms_applied_for(code),
                    "confirm_hits": w.confirm_hits(code), "point_balance": w.point_balance(code)}))
    }

    fn random_faults(&self, a: &Args<'_>) -> Result<Value> {
        let faults = RandomFaults {
            seed: a.integer("seed")?.unwrap_or(0).unsigned_abs(),
            drop_after_processing: a.probability("drop_after_processing")?,
            delay_then_answer: a.probability("delay_then_answer")?,
            delay: Duration::from_millis(a.ranged("delay_ms", 0, 600_000)?.unwrap_or(1000).unsigned_abs()),
            status_500: a.probability("status_500")?,
            path_contains: interned(&a.string("path_contains")?.unwrap_or_default()),
        };
        if faults.drop_after_processing + faults.delay_then_answer + faults.status_500 > 1.0 {
            return Err(invalid(
                "drop_after_processing",
                "the three probabilities must add up to at most 1",
            ));
        }
        self.wechat.set_random_faults(Some(faults));
        Ok(json!({"random_faults": true}))
    }

    fn seed_card(&self, a: &Args<'_>) -> Result<Value> {
        let code = a.required("user_card_code")?;
        self.wechat.add_user_card(
            &code,
            &a.string("card_id")?.unwrap_or_else(|| deliver::DEFAULT_CARD_ID.into()),
            &a.string("openid")?.unwrap_or_else(|| deliver::DEFAULT_OPENID.into()),
            &a.string("brand_id")?.unwrap_or_else(|| SAMPLE_BRAND_ID.into()),
        );
        Ok(self.card_doc(&code).unwrap_or_default())
    }

    fn alipay_call(&self, a: &Args<'_>, url: String) -> Result<AlipayCall> {
        Ok(AlipayCall {
            url,
            api: a.string("api")?.unwrap_or_else(|| "notifyCardRegistration".into()),
            body: a.body("body")?,
            request_id: a.string("request_id")?,
            request_time: a.string("request_time")?,
            tamper: a.tamper()?,
            timeout: a.timeout()?,
        })
    }

    fn alipay_mint(&self, a: &Args<'_>) -> Result<Value> {
        let call = self.alipay_call(a, String::new())?;
        let target = match a.string("target")? {
            Some(t) if t.starts_with('/') => t,
            Some(_) => return Err(invalid("target", "must start with /")),
            None => crate::emulator::PlatformDriver::target_for(&call.api),
        };
        let (request, request_id) = deliver::alipay_mint(&self.config, &call, &target)?;
        Ok(json!({"request": request_doc(&request), "request_id": request_id}))
    }

    fn alipay_deliver(&self, a: &Args<'_>) -> Result<Value> {
        let call = self.alipay_call(a, a.required("url")?)?;
        let report = deliver::alipay_deliver(&self.config, &call)?;
        let mut doc = report.json();
        doc["answer_body"] = json!(report.first_answer().map(String::from_utf8_lossy));
        Ok(doc)
    }

    fn alipay_verify(&self, a: &Args<'_>) -> Result<Value> {
        let target = a.required("target")?;
        let headers = match a.0.get("headers") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|h| match h.as_array().map(Vec::as_slice) {
                    Some([Value::String(n), Value::String(v)]) => Ok((n.clone(), v.clone())),
                    _ => Err(invalid("headers", "must be an array of [name, value] string pairs")),
                })
                .collect::<Result<Vec<_>>>()?,
            _ => {
                return Err(invalid(
                    "headers",
                    "is required: an array of [name, value] string pairs",
                ));
            }
        };
        let body = a.body("body")?.unwrap_or_default();
        let (valid, problems) = deliver::alipay_answer_signature(&self.config, &target, &headers, &body);
        Ok(json!({"valid": valid, "problems": problems}))
    }

    fn wechat_call(&self, a: &Args<'_>, url: String) -> Result<WechatCall> {
        let mut call = WechatCall::new(url, a.tamper()?, a.timeout()?);
        if let Some(t) = a.string("event_type")? {
            call.event_type = t;
        }
        if let Some(t) = a.string("original_type")? {
            call.original_type = t;
        }
        call.resource = match a.0.get("resource") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(_) => return Err(invalid("resource", "must be a JSON object")),
        };
        call.user_card_code = a.string("user_card_code")?;
        call.card_id = a.string("card_id")?;
        call.openid = a.string("openid")?;
        call.now_unix = a.integer("now_unix")?;
        Ok(call)
    }

    /// Mints a callback; a `USER_CARD.CREATE` also seeds its card (unless
    /// `"seed": false` or the card exists), as WeChat Pay has it before it calls.
    fn wechat_mint(&self, a: &Args<'_>) -> Result<(Value, deliver::MintedCallback)> {
        let call = self.wechat_call(a, String::new())?;
        let minted = deliver::wechat_mint(&self.wechat, &call)?;
        if a.boolean("seed", true)? {
            if let Some((code, card_id, openid, brand_id)) = &minted.card {
                if self.wechat.user_card(code).is_none() {
                    self.wechat.add_user_card(code, card_id, openid, brand_id);
                }
            }
        }
        let doc = json!({"request": request_doc(&minted.request),
                         "user_card_code": minted.card.as_ref().map(|c| c.0.clone())});
        Ok((doc, minted))
    }

    fn wechat_deliver(&self, a: &Args<'_>) -> Result<Value> {
        let call = self.wechat_call(a, a.required("url")?)?;
        let (_, minted) = self.wechat_mint(a)?;
        let report = deliver::wechat_deliver(&call, minted)?;
        let mut doc = report.json();
        doc["answer_body"] = json!(report.first_answer().map(String::from_utf8_lossy));
        Ok(doc)
    }
}
