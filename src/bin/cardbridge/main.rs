//! `cardbridge`: the operator's tool. Checks payloads, signs and verifies by
//! hand (printing the exact string that was signed), decrypts a captured
//! WeChat Pay callback, and looks into the outbox.
//!
//! Secrets are read from the configuration file (the same JSON the library
//! takes) or from the environment, and never printed. Exit codes: 0 success,
//! 1 a check failed (invalid payload, signature mismatch), 2 usage or
//! configuration error.

mod commands;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cardbridge",
    version,
    about = "Membership-card integration for Alipay+ and WeChat Pay: check, sign, verify, inspect",
    after_help = "Examples:\n  \
      cardbridge validate issueCard request.json\n  \
      cardbridge validate wechat.confirm - < confirm.json\n  \
      cardbridge sign alipayplus --config alipay.json --uri /v2/pds/memberships/issueCard body.json\n  \
      cardbridge verify wechatpay --config wechat.json --header 'Wechatpay-Timestamp: 1700000000' ... body.json\n  \
      cardbridge decrypt-callback --config wechat.json --headers headers.txt --body body.json\n  \
      cardbridge outbox list --store cardbridge.db --state pending"
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
    /// Looks into the outbox of a store (read-only unless `resume` or `purge`).
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
}

#[derive(Args)]
struct ValidateArgs {
    /// The message: an Alipay+ API (`issueCard`, `notifyCardRegistration`, …, `<api>Response`)
    /// or a WeChat Pay call (`wechat.confirm`, `wechat.updateUserCard`, `wechat.getUserCard`,
    /// `wechat.syncUserPoints`).
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

#[derive(Subcommand)]
enum OutboxCommand {
    /// Lists entries (newest last), without bodies.
    List(OutboxListArgs),
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
        Command::Outbox { command } => match command {
            OutboxCommand::List(a) => commands::outbox_list(&out, &a),
            OutboxCommand::Show(a) => commands::outbox_show(&out, &a),
            OutboxCommand::Purge(a) => commands::outbox_purge(&out, &a),
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            out.error(&e);
            ExitCode::from(2)
        }
    }
}
