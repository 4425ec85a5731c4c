//! Plain HTTP values shared by the clients, the inbound handlers and the
//! emulator, plus the one outbound transport (ureq on rustls + aws-lc-rs).
//!
//! TLS verification is always on. Plain `http://` is accepted only for
//! loopback addresses, which is where the bundled emulator listens.

use crate::error::{Error, ErrorKind, Result};
use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

/// Default largest inbound body (Alipay+ calls, WeChat Pay callbacks): 1 MiB.
/// Platform calls are a few KiB; configurable as `max_body_bytes`.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// One HTTP header as a (name, value) pair; names compare case-insensitively.
pub type Header = (String, String);

/// Finds a header by case-insensitive name; the first one wins.
pub fn find_header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Rule text for a configured value that is sent in an HTTP header.
pub const HEADER_VALUE_RULE: &str =
    "must be 1 to 128 printable ASCII characters without spaces or control characters (no CR or LF)";

/// Checks a configured value that the library sends in an HTTP header
/// (`Client-Id`, the `keyVersion` of `Signature`, ...): 1 to 128 visible ASCII
/// characters, so no CR, LF or other control character can split or add a
/// header. The error is `InvalidConfig` naming `field`, never the value.
pub fn check_header_value(field: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > 128 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::config(format!("{field}: {HEADER_VALUE_RULE}"))
            .with_field(field)
            .with_limit(Some("128".into())));
    }
    Ok(())
}

/// An HTTP request as the library sees it: method, request-target (path and
/// raw query), headers and the exact body bytes.
///
/// `Debug` shows the method, the path (query hidden), header names (values
/// only for a few harmless headers) and the body size, never signatures or
/// the body.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct HttpRequest {
    /// Upper-case method, e.g. `POST`.
    pub method: String,
    /// Request-target as on the wire: path plus `?query`, still percent-encoded.
    pub target: String,
    /// Headers in the order received.
    pub headers: Vec<Header>,
    /// Raw body bytes.
    pub body: Vec<u8>,
}

/// A complete HTTP response: status, headers and the exact body bytes.
///
/// `Debug` shows the status, header names (values only for a few harmless
/// headers) and the body size, never signatures or the body.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Headers to send (or as received).
    pub headers: Vec<Header>,
    /// Raw body bytes.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("target", &crate::redact::Target(&self.target))
            .field("headers", &crate::redact::Headers(&self.headers))
            .field("body", &crate::redact::Bytes(self.body.len()))
            .finish()
    }
}

impl std::fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &crate::redact::Headers(&self.headers))
            .field("body", &crate::redact::Bytes(self.body.len()))
            .finish()
    }
}

impl HttpResponse {
    /// Case-insensitive header lookup.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// Connection settings for outbound calls.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// TCP + TLS connect timeout (SDK default 15 s).
    pub connect_timeout: Duration,
    /// Time to wait for the response (SDK default 15 s).
    pub read_timeout: Duration,
    /// Extra trusted CA certificates (PEM), added to the public web roots.
    pub extra_ca_pem: Option<String>,
    /// `User-Agent` header value.
    pub user_agent: String,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(15),
            extra_ca_pem: None,
            user_agent: format!(
                "cardbridge/{} ({}; {})",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH
            ),
        }
    }
}

/// Largest response body we read; platform answers are a few KiB.
const MAX_RESPONSE_BYTES: u64 = 1 << 20;

/// The outbound HTTP transport. Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct Transport {
    agent: ureq::Agent,
    user_agent: String,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transport")
    }
}

impl Transport {
    /// Builds the transport: rustls with the aws-lc-rs provider, verification
    /// on, no redirects, no transparent retries, statuses returned as values.
    pub fn new(config: &TransportConfig) -> Result<Self> {
        if config.user_agent.bytes().any(|b| !(b == b' ' || b.is_ascii_graphic())) {
            return Err(Error::config(
                "transport.user_agent: must be printable ASCII without control characters (no CR or LF)",
            )
            .with_field("transport.user_agent"));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let roots = match &config.extra_ca_pem {
            None => ureq::tls::RootCerts::WebPki,
            Some(pem_text) => {
                let mut certs: Vec<ureq::tls::Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
                    .iter()
                    .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                    .collect();
                let extra = pem::parse_many(pem_text)
                    .map_err(|e| Error::config(format!("extra CA bundle: {}", crate::crypto::pem_problem(&e))))?;
                let extra: Vec<_> = extra.into_iter().filter(|p| p.tag() == "CERTIFICATE").collect();
                if extra.is_empty() {
                    return Err(Error::config("extra CA bundle: no CERTIFICATE found"));
                }
                certs.extend(
                    extra
                        .iter()
                        .map(|p| ureq::tls::Certificate::from_der(p.contents()).to_owned()),
                );
                ureq::tls::RootCerts::Specific(Arc::new(certs))
            }
        };
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(provider)
            .root_certs(roots)
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(config.connect_timeout))
            .timeout_recv_response(Some(config.read_timeout))
            .timeout_recv_body(Some(config.read_timeout))
            .user_agent(config.user_agent.as_str())
            .accept_encoding("identity")
            .build()
            .new_agent();
        Ok(Transport {
            agent,
            user_agent: config.user_agent.clone(),
        })
    }

    /// The `User-Agent` this transport sends.
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }

    /// Sends one request and returns the response, whatever its status.
    /// Timeouts map to [`ErrorKind::Timeout`], everything else that prevents an
    /// answer to [`ErrorKind::Transport`].
    pub fn send(&self, url: &str, method: &str, headers: &[Header], body: &[u8]) -> Result<HttpResponse> {
        match self.exchange(url, method, headers, body) {
            Exchange::Answered(r) => Ok(r),
            Exchange::NotSent(e) | Exchange::Lost(e) => Err(e),
        }
    }

    /// Sends one request and says what became of it: answered, certainly not
    /// sent (the connection was never made), or lost after it may have reached
    /// the peer (a timeout or a broken connection while sending or waiting).
    pub fn exchange(&self, url: &str, method: &str, headers: &[Header], body: &[u8]) -> Exchange {
        match self.send_inner(url, method, headers, body) {
            Ok(r) => Exchange::Answered(r),
            Err((e, false)) => Exchange::NotSent(e),
            Err((e, true)) => Exchange::Lost(e),
        }
    }

    /// The error carries whether the request may have left this process.
    fn send_inner(
        &self,
        url: &str,
        method: &str,
        headers: &[Header],
        body: &[u8],
    ) -> std::result::Result<HttpResponse, (Error, bool)> {
        // The parsed, normalised form is what goes out, so the checked host is the one contacted.
        let url = check_url(url).map_err(|e| (e, false))?;
        let mut builder = ureq::http::Request::builder().method(method).uri(url.as_str());
        for (n, v) in headers {
            builder = builder.header(n.as_str(), v.as_str());
        }
        let request = builder.body(body.to_vec()).map_err(|e| {
            (
                Error::new(ErrorKind::InvalidParameter, format!("cannot build HTTP request: {e}")),
                false,
            )
        })?;
        let response = self.agent.run(request).map_err(|e| {
            let sent = may_have_been_sent(&e);
            (map_ureq_error(e), sent)
        })?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        response
            .into_body()
            .into_reader()
            .take(MAX_RESPONSE_BYTES)
            .read_to_end(&mut body)
            .map_err(|e| (map_io_error(&e), true))?;
        Ok(HttpResponse { status, headers, body })
    }
}

/// What became of one request (see [`Transport::exchange`]).
#[derive(Debug)]
pub enum Exchange {
    /// An answer arrived (any status).
    Answered(HttpResponse),
    /// The request certainly did not reach the peer (no connection).
    NotSent(Error),
    /// The request may have reached the peer; its answer is lost.
    Lost(Error),
}

/// Whether a failed ureq call may have delivered the request: only failures
/// before a connection existed (name resolution, connect, TLS set-up, a bad
/// URL) prove it did not.
fn may_have_been_sent(e: &ureq::Error) -> bool {
    use ureq::Timeout as T;
    !matches!(
        e,
        ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::BadUri(_)
            | ureq::Error::InvalidProxyUrl
            | ureq::Error::Tls(_)
            | ureq::Error::Rustls(_)
            | ureq::Error::Timeout(T::Resolve | T::Connect)
    )
}

/// A base or request URL that passed [`check_url`]: parsed by a WHATWG URL
/// parser, so the host that was checked is the host the transport connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedUrl(url::Url);

impl CheckedUrl {
    /// The normalised URL text (lower-case scheme and host), as sent.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
    /// The path (starting with `/`).
    pub fn path(&self) -> &str {
        self.0.path()
    }
    /// Whether the URL has a query or a fragment.
    pub fn has_query_or_fragment(&self) -> bool {
        self.0.query().is_some() || self.0.fragment().is_some()
    }
}

/// Only `https://`, or plain `http://` to a loopback host (the local
/// emulator): an IP literal in `127.0.0.0/8` or `::1`, or `localhost`.
///
/// The URL is parsed by a real URL parser (the `url` crate) and the checks
/// are made on what it parsed, so `http://localhost:1@192.0.2.2` is seen as
/// host `192.0.2.2` (and refused for its user information anyway). Refused:
/// any scheme but `http`/`https` (case-insensitive), user information
/// (`user@` or `user:password@`), a host written with percent escapes,
/// and IPv4-mapped IPv6 addresses such as `[::ffff:127.0.0.1]` for plain http.
/// Errors never repeat the URL, which may carry credentials.
pub fn check_url(url: &str) -> Result<CheckedUrl> {
    let parsed = url::Url::parse(url).map_err(|e| Error::config(format!("URL is not valid ({e})")))?;
    match parsed.scheme() {
        "https" | "http" => {}
        _ => {
            return Err(Error::config(
                "URL must start with https:// (http:// only for loopback)",
            ));
        }
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::config(
            "URL must not contain user information (user@ or user:password@)",
        ));
    }
    // The parser decodes percent escapes in hosts; other HTTP stacks do not, so
    // a host is only accepted written plainly. The authority ends at the first
    // '/', '\\', '?' or '#' after the scheme.
    let after_scheme = url.split_once("://").map_or("", |(_, rest)| rest);
    let authority = after_scheme.split(['/', '\\', '?', '#']).next().unwrap_or("");
    if authority.contains('%') {
        return Err(Error::config("URL host must not be percent-encoded"));
    }
    let host = parsed.host().ok_or_else(|| Error::config("URL must have a host"))?;
    if parsed.scheme() == "http" {
        let loopback = match host {
            url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
            url::Host::Ipv4(ip) => ip.is_loopback(),
            url::Host::Ipv6(ip) => ip.is_loopback(),
        };
        if !loopback {
            return Err(Error::config(
                "plain http is only allowed for loopback hosts (127.0.0.0/8, [::1], localhost: the local emulator); use https",
            ));
        }
    }
    Ok(CheckedUrl(parsed))
}

fn map_ureq_error(e: ureq::Error) -> Error {
    match e {
        ureq::Error::Timeout(t) => Error::new(ErrorKind::Timeout, format!("timed out ({t})")),
        ureq::Error::Io(io) => map_io_error(&io),
        other => Error::new(ErrorKind::Transport, format!("transport error: {other}")),
    }
}

fn map_io_error(e: &std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            Error::new(ErrorKind::Timeout, format!("timed out ({e})"))
        }
        _ => Error::new(ErrorKind::Transport, format!("transport error: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_is_case_insensitive() {
        let h = vec![
            ("Signature".to_string(), "a".to_string()),
            ("signature".to_string(), "b".to_string()),
        ];
        assert_eq!(find_header(&h, "SIGNATURE"), Some("a"));
        assert_eq!(find_header(&h, "Response-Time"), None);
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(check_url("https://open-sea-global.alipay.com/api").is_ok());
        assert!(check_url("http://127.0.0.1:8080/x").is_ok());
        assert!(check_url("http://127.9.9.9/x").is_ok());
        assert!(check_url("http://localhost:1/x").is_ok());
        assert!(check_url("http://LOCALHOST:1/x").is_ok());
        assert!(check_url("http://[::1]:9/x").is_ok());
        let e = check_url("http://example.com/x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("http://10.0.0.1/x").is_err());
    }

    #[test]
    fn userinfo_cannot_smuggle_a_remote_host() {
        // The host is 192.0.2.2; "localhost:1" is user information.
        for url in [
            "http://localhost:1@192.0.2.2",
            "http://localhost:1@192.0.2.2/x",
            "http://127.0.0.1@192.0.2.2:80/",
            "http://[::1]@192.0.2.2/",
            "https://user:secret@example.com/",
            "https://user@example.com/",
        ] {
            let e = check_url(url).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
            assert!(!e.message().contains("secret"), "{e}");
        }
        // A backslash ends the authority for the parser: the host is example.com.
        assert!(check_url("http://example.com\\@localhost/").is_err());
    }

    #[test]
    fn ipv6_uppercase_schemes_and_percent_hosts() {
        assert!(check_url("http://[::1]/").is_ok());
        assert!(check_url("http://[0:0:0:0:0:0:0:1]:8080/").is_ok());
        for url in [
            "http://[::ffff:192.0.2.2]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[2001:db8::1]/",
        ] {
            assert!(check_url(url).is_err(), "{url}");
        }
        assert_eq!(
            check_url("HTTP://127.0.0.1:1/x").unwrap().as_str(),
            "http://127.0.0.1:1/x"
        );
        assert_eq!(
            check_url("HTTPS://Example.COM/x").unwrap().as_str(),
            "https://example.com/x"
        );
        assert!(check_url("HTTP://example.com/").is_err());
        assert!(check_url("hTtP://192.0.2.2/").is_err());
        for url in [
            "http://%6c%6fcalhost:1/",
            "http://%31%32%37.0.0.1/",
            "http://127.0.0.1%2f@192.0.2.2/",
            "https://%65xample.com/",
        ] {
            assert!(check_url(url).is_err(), "{url}");
        }
        assert!(check_url("http:///x").is_err());
        assert!(check_url("not a url").is_err());
    }

    #[test]
    fn extra_ca_bundle_must_hold_a_certificate() {
        let cfg = TransportConfig {
            extra_ca_pem: Some("nope".into()),
            ..Default::default()
        };
        assert_eq!(Transport::new(&cfg).unwrap_err().kind(), ErrorKind::InvalidConfig);
        assert!(Transport::new(&TransportConfig::default()).is_ok());
    }
}
