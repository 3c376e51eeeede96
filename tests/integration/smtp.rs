//! A real SMTP server on loopback for alert tests: mailin-embedded, optionally with STARTTLS
//! (a throwaway CA and a leaf certificate for localhost/127.0.0.1, made with rcgen) and AUTH.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailin_embedded::response::{AUTH_OK, INVALID_CREDENTIALS, OK};
use mailin_embedded::{AuthMechanism, Handler, Response, Server, SslConfig};

/// One received message.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    pub data: String,
}

impl Mail {
    /// The subject, unfolded (a long header continues on lines that start with a space).
    pub fn subject(&self) -> String {
        let mut lines = self.data.lines().skip_while(|l| !l.starts_with("Subject: "));
        let Some(first) = lines.next() else {
            return String::new();
        };
        let mut s = first["Subject: ".len()..].to_string();
        for l in lines.take_while(|l| l.starts_with([' ', '\t'])) {
            s.push_str(l);
        }
        s
    }

    /// The body, with quoted-printable soft line breaks undone.
    pub fn body(&self) -> String {
        let body = self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        body.replace("=\r\n", "")
            .replace("=3D", "=")
            .replace("\r\n", "\n")
    }
}

#[derive(Clone)]
struct Collector {
    mails: Arc<Mutex<Vec<Mail>>>,
    to: Vec<String>,
    buf: Vec<u8>,
    password: Option<String>,
}

impl Handler for Collector {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.buf.clear();
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.buf.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.mails.lock().unwrap().push(Mail {
            to: std::mem::take(&mut self.to),
            data: String::from_utf8_lossy(&self.buf).into_owned(),
        });
        OK
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
        if user == "plumb" && Some(password) == self.password.as_deref() {
            AUTH_OK
        } else {
            INVALID_CREDENTIALS
        }
    }
}

pub struct MailServer {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    /// PEM of the CA that signed the server's certificate (TLS servers only).
    pub ca_pem: Option<String>,
    _dir: tempfile::TempDir,
}

/// A port that nothing listens on (yet).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl MailServer {
    /// Plain SMTP on a fresh port.
    pub fn start() -> MailServer {
        Self::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), false, None)
    }

    /// Plain SMTP on a given port.
    pub fn start_at(port: u16) -> MailServer {
        Self::start_on(TcpListener::bind(("127.0.0.1", port)).unwrap(), false, None)
    }

    /// STARTTLS with a throwaway CA, and AUTH PLAIN required with user `plumb` and `password`.
    pub fn start_tls_auth(password: &str) -> MailServer {
        Self::start_on(
            TcpListener::bind("127.0.0.1:0").unwrap(),
            true,
            Some(password.to_string()),
        )
    }

    fn start_on(listener: TcpListener, tls: bool, password: Option<String>) -> MailServer {
        // mailin's rustls and lettre's may bring different crypto backends; pick one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = listener.local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let handler = Collector {
            mails: mails.clone(),
            to: Vec::new(),
            buf: Vec::new(),
            password: password.clone(),
        };
        let mut server = Server::new(handler);
        server.with_name("localhost").with_tcp_listener(listener);
        let mut ca_pem = None;
        if tls {
            let (ca, leaf, key) = certificates();
            let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
            std::fs::write(p("ca.pem"), &ca).unwrap();
            std::fs::write(p("leaf.pem"), &leaf).unwrap();
            std::fs::write(p("key.pem"), &key).unwrap();
            server
                .with_ssl(SslConfig::Trusted {
                    cert_path: p("leaf.pem"),
                    key_path: p("key.pem"),
                    chain_path: p("ca.pem"),
                })
                .unwrap();
            ca_pem = Some(ca);
        }
        if password.is_some() {
            server.with_auth(AuthMechanism::Plain);
        }
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        MailServer {
            port,
            mails,
            ca_pem,
            _dir: dir,
        }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// Wait until at least `n` messages arrived, and return them.
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<Mail> {
        let start = Instant::now();
        loop {
            let m = self.mails();
            if m.len() >= n || start.elapsed() > limit {
                return m;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// (CA PEM, leaf certificate PEM, leaf key PEM): a CA, and a server certificate it signed for
/// localhost and 127.0.0.1 (rustls rejects a CA certificate used as a server's own).
fn certificates() -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    (ca_cert.pem(), leaf_cert.pem(), leaf_key.serialize_pem())
}
