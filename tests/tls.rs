//! TLS is always verified: a loopback HTTPS server with a certificate from a
//! private test CA is refused by default and accepted once that CA is given as
//! the extra CA bundle.

use cardbridge::ErrorKind;
use cardbridge::http::{Transport, TransportConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Serves `connections` TLS connections on `ip`, answering each request with 200 "ok".
fn https_server(ip: &str, connections: usize) -> (String, std::thread::JoinHandle<()>) {
    let cert = CertificateDer::from(pem::parse(fixture("server.pem")).unwrap().into_contents());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        pem::parse(fixture("server.key")).unwrap().into_contents(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let tcp = stream.unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut buf = [0u8; 4096];
            // A client that refuses our certificate aborts the handshake: that read fails, which is fine.
            if tls.read(&mut buf).is_ok() {
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        }
    });
    (format!("https://{ip}:{port}/probe"), handle)
}

#[test]
fn unknown_ca_is_refused_and_an_extra_ca_bundle_is_trusted() {
    let (url, server) = https_server("127.0.0.1", 2);

    let default = Transport::new(&TransportConfig::default()).unwrap();
    let err = default.send(&url, "GET", &[], b"").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");

    let with_ca = Transport::new(&TransportConfig {
        extra_ca_pem: Some(fixture("ca.pem")),
        ..Default::default()
    })
    .unwrap();
    let resp = with_ca.send(&url, "GET", &[], b"").unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"ok");
    server.join().unwrap();
}

#[test]
fn a_certificate_for_another_name_is_refused_even_with_its_ca() {
    // 127.0.0.2 is loopback too, but the certificate names only 127.0.0.1 and localhost.
    let (url, server) = https_server("127.0.0.2", 1);
    let with_ca = Transport::new(&TransportConfig {
        extra_ca_pem: Some(fixture("ca.pem")),
        ..Default::default()
    })
    .unwrap();
    let err = with_ca.send(&url, "GET", &[], b"").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    server.join().unwrap();
}
