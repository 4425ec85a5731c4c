//! `cardbridge`: the operator's tool. Checks payloads, signs and verifies by
//! hand (printing the exact string that was signed), decrypts a captured
//! WeChat Pay callback, looks into the outbox, runs a standalone emulator of
//! both platforms, and fires correctly signed platform calls at a merchant's
//! own endpoint.
//!
//! Secrets are read from the configuration file (the same JSON the library
//! takes) or from the environment, and never printed. Exit codes: 0 success,
//! 1 a check failed (invalid payload, signature mismatch, a merchant answer
//! judged wrong), 2 usage or configuration error, 3 the merchant did not
//! answer (`notify`).

mod commands;
mod control;
mod deliver;
// The platform emulators: test support, in this binary only (the library has
// none). The Rust integration tests compile this module into themselves
// (`#[path]`) and use parts the tool does not.
#[allow(dead_code, unused_imports)]
mod emulator;
mod platform;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cardbridge",
    version,
    about = "Membership-card integration for Alipay+ and WeChat Pay: check, sign, verify, inspect, emulate, notify",
    after_help = "Examples:\n  \
      cardbridge validate issueCard request.json\n  \
      cardbridge validate wechat.confirm - < confirm.json\n  \
      cardbridge sign alipayplus --config alipay.json --uri /v2/pds/memberships/issueCard body.json\n  \
      cardbridge verify wechatpay --config wechat.json --header 'Wechatpay-Timestamp: 1700000000' ... body.json\n  \
      cardbridge decrypt-callback --config wechat.json --headers headers.txt --body body.json\n  \
      cardbridge outbox list --store cardbridge.db --state pending\n  \
      cardbridge emulator --port 8090\n  \
      cardbridge notify http://127.0.0.1:8080/v2/pds/memberships/notifyCardRegistration\n  \
      cardbridge notify --wechat --tamper probe http://127.0.0.1:8080/wechat/notify\n\n\
      Exit codes: 0 success, 1 a check failed, 2 usage or configuration error, 3 no answer (notify)"
)]
struct Cli {
    /// Machine-readable output (one JSON document).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Checks a payload against every documented rule; errors name the field path, the rule and the limit.
    Validate(ValidateArgs),
    /// Signs a request body and prints the exact string that was signed and the header to send.
    Sign(SignArgs),
    /// Verifies a signature over a body and says why it fails.
    Verify(VerifyArgs),
    /// Verifies and decrypts a captured WeChat Pay callback (headers + raw body).
    DecryptCallback(DecryptArgs),
    /// Says why a captured platform call fails its signature check, and what to change
    /// (a proxy's rewritten path, an added query or slash, a re-encoded body, clock skew).
    #[command(after_help = "Examples:\n  \
      cardbridge diagnose alipayplus --config alipay.json --headers h.txt --body b.json \\\n    \
        --target /v2/pds/memberships/notifyCardRegistration\n  \
      cardbridge --json diagnose wechatpay --config wechat.json --headers h.txt --body b.json\n  \
      cardbridge diagnose wechatpay --config wechat.json --answer sign-error.json \\\n    \
        --method POST --target '/v3/...' --headers sent-headers.txt --body sent-body.json\n\n\
      Prints which check failed, the measured clock offset, and the rewrite under which the\n\
      signature verifies with its fix. Never prints the body, a signature or personal data.\n\
      Exit code 0: the signature verifies; 1: it does not (diagnosis printed).")]
    Diagnose(DiagnoseArgs),
    /// Looks into the outbox of a store (read-only unless `resume` or `purge`).
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Runs a loopback emulator of both platforms (Alipay+ issueCard, the WeChat Pay
    /// card-member APIs) with a control API under /__cardbridge/.
    #[command(after_help = "Examples:\n  \
      cardbridge emulator --port 8090\n  \
      cardbridge --json emulator --port 0 --state emulator-state.json\n  \
      curl -s http://127.0.0.1:8090/__cardbridge/counters\n\n\
      Stops cleanly on SIGTERM, SIGINT (Ctrl-C) or POST /__cardbridge/shutdown.")]
    Emulator(EmulatorArgs),
    /// Sends a correctly signed (or deliberately spoiled) platform call to a merchant
    /// endpoint, checks the answer's signature and format, and prints a verdict.
    #[command(after_help = "Examples:\n  \
      cardbridge notify http://127.0.0.1:8080/v2/pds/memberships/notifyCardRegistration\n  \
      cardbridge notify --tamper bad-signature http://127.0.0.1:8080\n  \
      cardbridge notify --tamper duplicate --request-id REQ-1 http://127.0.0.1:8080\n  \
      cardbridge --json notify --wechat http://127.0.0.1:8080/wechat/notify\n\n\
      Exit codes: 0 PASS, 1 FAIL (the answer is wrong), 2 usage or configuration error,\n\
      3 NO ANSWER (connection refused, timeout).")]
    Notify(NotifyArgs),
}

#[derive(Args)]
pub struct EmulatorArgs {
    /// TCP port; 0 picks a free one (the URL is printed at start).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Directory with the keys, named as in tests/fixtures/keys (test_platform_private.pem,
    /// test_merchant_public.pem, …); default: the test keys. Env `CARDBRIDGE_KEYS`.
    #[arg(long, env = "CARDBRIDGE_KEYS")]
    keys: Option<PathBuf>,
    /// Platform configuration JSON (client_id, key_version, path_prefix, keys as PEM, mchid,
    /// merchant_serial_no, public_key_id, api_v3_key, platform_certificate); members given
    /// override the key directory and the test IDs. Env `CARDBRIDGE_PLATFORM_CONFIG`.
    #[arg(long, env = "CARDBRIDGE_PLATFORM_CONFIG")]
    config: Option<PathBuf>,
    /// Keeps issued cards and WeChat user cards in this JSON file across restarts.
    #[arg(long)]
    state: Option<PathBuf>,
    /// WeChat Pay certificate mode: the platform certificate (PEM) …
    #[arg(long, requires = "wechat_certificate_key")]
    wechat_certificate: Option<PathBuf>,
    /// … and its private key (PEM).
    #[arg(long, requires = "wechat_certificate")]
    wechat_certificate_key: Option<PathBuf>,
}

#[derive(Args)]
pub struct NotifyArgs {
    /// The merchant endpoint. Alipay+: its full URL, whose path (and query) is signed as the
    /// request-target; a bare base URL gets /v2/pds/memberships/<api>. WeChat Pay: the notify_url.
    url: String,
    /// Send a WeChat Pay card-event callback (USER_CARD.CREATE) instead of an Alipay+ call.
    #[arg(long)]
    wechat: bool,
    /// Spoil the call: bad-signature, stale, duplicate, probe (both platforms); wrong-key,
    /// malformed-header, wrong-client-id (Alipay+); bad-tag, wrong-serial, missing-header (WeChat Pay).
    #[arg(long, value_enum, default_value = "none")]
    tamper: deliver::Tamper,
    /// Platform configuration JSON (as for `emulator`). Env `CARDBRIDGE_PLATFORM_CONFIG`.
    #[arg(long, env = "CARDBRIDGE_PLATFORM_CONFIG")]
    config: Option<PathBuf>,
    /// Key directory (as for `emulator`). Env `CARDBRIDGE_KEYS`.
    #[arg(long, env = "CARDBRIDGE_KEYS")]
    keys: Option<PathBuf>,
    /// Alipay+: the inbound API (notifyCardRegistration, inquireCardDetail, updateCardDetail,
    /// inquireMemberAssets); the others need --body.
    #[arg(long, default_value = "notifyCardRegistration")]
    api: String,
    /// The body (Alipay+) or the decrypted resource (WeChat Pay) as a JSON file; default: a sample.
    #[arg(long)]
    body: Option<PathBuf>,
    /// Alipay+: the requestId of the sample registration (default: a fresh one).
    #[arg(long)]
    request_id: Option<String>,
    /// WeChat Pay: the sample card's user_card_code (default: fresh digits).
    #[arg(long)]
    user_card_code: Option<String>,
    /// WeChat Pay: the sample card's card_id.
    #[arg(long)]
    card_id: Option<String>,
    /// WeChat Pay: the sample card's openid.
    #[arg(long)]
    openid: Option<String>,
    /// WeChat Pay: the event_type.
    #[arg(long, default_value = deliver::DEFAULT_EVENT_TYPE)]
    event_type: String,
    /// Connect and read timeout, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
}

#[derive(Args)]
struct ValidateArgs {
    /// The message: an Alipay+ API (`issueCard`, `notifyCardRegistration`, …, `<api>Response`)
    /// or a WeChat Pay call, `wechat.<operation>` (`wechat.confirm`, `wechat.updateUserCard`,
    /// `wechat.createCardTemplate`, `wechat.importUserCard`, … every card-member operation).
    api: String,
    /// The JSON file, or `-` for standard input.
    #[arg(default_value = "-")]
    file: PathBuf,
    /// Alipay+: apply the lenient rules for a body received from the platform.
    #[arg(long)]
    inbound: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Platform {
    Alipayplus,
    Wechatpay,
}

#[derive(Args)]
struct SignArgs {
    platform: Platform,
    /// Configuration JSON (the library's), or env `CARDBRIDGE_CONFIG`.
    #[arg(long, env = "CARDBRIDGE_CONFIG")]
    config: PathBuf,
    /// Request-target (path and query) exactly as sent, e.g. `/v2/pds/memberships/issueCard`.
    #[arg(long)]
    uri: String,
    /// HTTP method.
    #[arg(long, default_value = "POST")]
    method: String,
    /// Alipay+ `Request-Time` to sign (default: now); WeChat Pay Unix seconds (default: now).
    #[arg(long)]
    time: Option<String>,
    /// WeChat Pay nonce (default: random).
    #[arg(long)]
    nonce: Option<String>,
    /// The body file, or `-` for standard input (empty for a GET).
    #[arg(default_value = "-")]
    file: PathBuf,
}

#[derive(Args)]
struct VerifyArgs {
    platform: Platform,
    /// Configuration JSON (the library's), or env `CARDBRIDGE_CONFIG`.
    #[arg(long, env = "CARDBRIDGE_CONFIG")]
    config: PathBuf,
    /// A header as `Name: value` (repeat); Alipay+ needs `Client-Id`, `Request-Time` or
    /// `Response-Time`, `Signature`; WeChat Pay the `Wechatpay-*` headers.
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// Alipay+: the request-target that was signed.
    #[arg(long)]
    uri: Option<String>,
    /// Alipay+: the method that was signed.
    #[arg(long, default_value = "POST")]
    method: String,
    /// Alipay+: the signature is the platform's (verify with its public key, the default) or
    /// ours (`--ours`: with the public half of the merchant key).
    #[arg(long)]
    ours: bool,
    /// Skip the 300 s window (WeChat Pay) for a capture older than that.
    #[arg(long)]
    ignore_time: bool,
    /// The body file, or `-` for standard input.
    #[arg(default_value = "-")]
    file: PathBuf,
}

#[derive(Args)]
struct DecryptArgs {
    /// WeChat Pay configuration JSON, or env `CARDBRIDGE_CONFIG`.
    #[arg(long, env = "CARDBRIDGE_CONFIG")]
    config: PathBuf,
    /// The captured headers, one `Name: value` per line.
    #[arg(long)]
    headers: PathBuf,
    /// The captured raw body.
    #[arg(long)]
    body: PathBuf,
    /// Skip the 300 s window for a capture older than that.
    #[arg(long)]
    ignore_time: bool,
}

#[derive(Args)]
struct DiagnoseArgs {
    platform: Platform,
    /// Configuration JSON (the library's), or env `CARDBRIDGE_CONFIG`.
    #[arg(long, env = "CARDBRIDGE_CONFIG")]
    config: PathBuf,
    /// The captured headers, one `Name: value` per line (proxy headers such as
    /// `X-Original-URI` included: they help find a rewritten path).
    #[arg(long)]
    headers: PathBuf,
    /// The captured raw body.
    #[arg(long)]
    body: PathBuf,
    /// Alipay+: the request-target as the handler received it.
    #[arg(long, default_value = "/v2/pds/memberships/notifyCardRegistration")]
    target: String,
    /// Judge the clock as of this Unix time in milliseconds (default: now).
    #[arg(long)]
    now_ms: Option<i64>,
    /// Outbound: the platform's signature refusal of one of OUR requests (WeChat Pay `SIGN_ERROR`
    /// body, or Alipay+ answer whose `resultMessage` echoes the gateway's string-to-sign); then
    /// `--headers` (our `Authorization`, or `Client-Id` and `Request-Time`), `--body`, `--target`
    /// and `--method` describe the request we sent, and the platform's string-to-sign is compared
    /// with ours.
    #[arg(long)]
    answer: Option<PathBuf>,
    /// With `--answer`: the method we sent.
    #[arg(long, default_value = "POST")]
    method: String,
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// Lists entries (newest last), without bodies.
    List(OutboxListArgs),
    /// Delivers one pending entry (or every pending one with `--all`) with the platform
    /// configuration: a WeChat confirm starts with a read-back; a final entry prints its answer.
    Resume(OutboxResumeArgs),
    /// Shows one entry and its attempts; the body only with `--show-body`.
    Show(OutboxShowArgs),
    /// Deletes final entries older than `--older-than-days`.
    Purge(OutboxPurgeArgs),
}

#[derive(Args)]
struct StoreArgs {
    /// SQLite store file or PostgreSQL connection string (`postgresql://…`, `host=… dbname=…`),
    /// or env `CARDBRIDGE_STORE`.
    #[arg(long, env = "CARDBRIDGE_STORE")]
    store: String,
}

#[derive(Args)]
struct OutboxListArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only `pending`, `succeeded` or `failed` entries.
    #[arg(long)]
    state: Option<String>,
    /// Only entries of this kind, e.g. `alipayplus.issueCard`.
    #[arg(long)]
    kind: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Start after this id (page cursor).
    #[arg(long)]
    after: Option<String>,
}

#[derive(Args)]
struct OutboxShowArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The outbox id.
    id: String,
    /// Also print the request body and the stored answer (may hold personal data).
    #[arg(long)]
    show_body: bool,
}

#[derive(Args)]
struct OutboxResumeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Which platform's entries (`alipayplus` issueCard or `wechatpay` confirm).
    #[arg(long)]
    platform: Platform,
    /// The library configuration JSON of that platform, or env `CARDBRIDGE_CONFIG`.
    #[arg(long, env = "CARDBRIDGE_CONFIG")]
    config: PathBuf,
    /// The outbox id (see `outbox list`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    id: Option<String>,
    /// Every pending entry of the platform nobody else is delivering.
    #[arg(long)]
    all: bool,
}

#[derive(Args)]
struct OutboxPurgeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Final entries last updated more than this many days ago.
    #[arg(long)]
    older_than_days: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = commands::Output { json: cli.json };
    let result = match cli.command {
        Command::Validate(a) => commands::validate(&out, &a.api, &a.file, a.inbound),
        Command::Sign(a) => commands::sign(&out, &a),
        Command::Verify(a) => commands::verify(&out, &a),
        Command::DecryptCallback(a) => commands::decrypt_callback(&out, &a),
        Command::Diagnose(a) => commands::diagnose(&out, &a),
        Command::Outbox { command } => match command {
            OutboxCommand::List(a) => commands::outbox_list(&out, &a),
            OutboxCommand::Show(a) => commands::outbox_show(&out, &a),
            OutboxCommand::Purge(a) => commands::outbox_purge(&out, &a),
            OutboxCommand::Resume(a) => commands::outbox_resume(&out, &a),
        },
        Command::Emulator(a) => control::run(&out, &a),
        Command::Notify(a) => commands::notify(&out, &a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            out.error(&e);
            ExitCode::from(2)
        }
    }
}
