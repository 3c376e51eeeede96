//! Delivering the outbox over SMTP, without ever holding up a run.
//!
//! Configuration comes from the environment only, so secrets never sit in pipeline files:
//! `PLUMB_SMTP_URL` (`smtp://host:25` plain, `smtp://user@host:587?tls=required` or
//! `?tls=opportunistic` STARTTLS, `smtps://host:465` implicit TLS), `PLUMB_SMTP_PASSWORD`,
//! `PLUMB_ALERT_FROM` (default `plumb@HOSTNAME`) and `PLUMB_SMTP_CA_FILE` (a PEM bundle to trust
//! in addition to the public roots, for a relay with a private CA). The password is never
//! printed, logged or stored; errors name the server as `scheme://user@host:port` only.
//!
//! Delivery is at least once: an alert is claimed (by pid and process start time), sent, then
//! marked sent. A sender that dies between the send and the mark leaves it claimed by a dead
//! process, and the next sender delivers it again.
//!
//! [`Courier`] runs delivery on its own thread during a run: the run kicks it when an alert is
//! queued and gives it a bounded time to finish at the end. Whatever is not delivered stays
//! queued for the next invocation.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::state::{NewAlert, Runner, State};

/// How long one SMTP connection or command may take, unless `PLUMB_SMTP_TIMEOUT` says.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// One message's whole exchange may take this many command timeouts: a server that answers, but
/// a byte at a time, cannot hold a delivery longer.
const EXCHANGE_TIMEOUTS: u32 = 3;

#[derive(Clone)]
pub struct SmtpConfig {
    url: url::Url,
    password: Option<String>,
    timeout: Duration,
    from: String,
    ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("server", &self.server())
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl SmtpConfig {
    /// Read the environment. `Ok(None)` when `PLUMB_SMTP_URL` is not set.
    pub fn from_env() -> Result<Option<SmtpConfig>, String> {
        let Some(raw) = std::env::var_os("PLUMB_SMTP_URL") else {
            return Ok(None);
        };
        let raw = raw.to_string_lossy().into_owned();
        let mut url = url::Url::parse(&raw).map_err(|e| {
            format!("PLUMB_SMTP_URL is not a URL ({e}); write e.g. smtp://mail.example.com:25")
        })?;
        if !matches!(url.scheme(), "smtp" | "smtps") || url.host_str().is_none() {
            return Err("PLUMB_SMTP_URL must look like smtp://host:25, smtp://user@host:587?tls=required or smtps://host:465".into());
        }
        match url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned())
        {
            None => {}
            Some(v) if v == "required" || v == "opportunistic" => {}
            Some(v) => {
                return Err(format!(
                    "PLUMB_SMTP_URL: tls={v} is not known; use tls=required or tls=opportunistic"
                ));
            }
        }
        // A password written into the URL is accepted, but taken out of it at once.
        let mut password = std::env::var("PLUMB_SMTP_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty());
        if let Some(p) = url.password() {
            let decoded = userinfo_decode(p);
            password = password.or(Some(decoded));
            let _ = url.set_password(None);
        }
        let from = std::env::var("PLUMB_ALERT_FROM")
            .ok()
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| format!("plumb@{}", crate::process::hostname()));
        let ca_file = std::env::var_os("PLUMB_SMTP_CA_FILE").map(PathBuf::from);
        let timeout = match std::env::var("PLUMB_SMTP_TIMEOUT") {
            Ok(t) => humantime::parse_duration(&t)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("PLUMB_SMTP_TIMEOUT {t:?} is not a duration; write e.g. 10s or 1m"))?,
            Err(_) => SMTP_TIMEOUT,
        };
        Ok(Some(SmtpConfig {
            url,
            password,
            timeout,
            from,
            ca_file,
        }))
    }

    /// `smtp://user@host:port`: safe to print.
    pub fn server(&self) -> String {
        let user = if self.url.username().is_empty() {
            String::new()
        } else {
            format!("{}@", self.url.username())
        };
        let port = self.url.port().map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "{}://{user}{}{port}",
            self.url.scheme(),
            self.url.host_str().unwrap_or("")
        )
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let host = self.url.host_str().unwrap_or_default().to_string();
        let mut b =
            AsyncSmtpTransport::<Tokio1Executor>::from_url(self.url.as_str()).map_err(|e| e.to_string())?;
        if let Some(ca) = &self.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| format!("cannot read PLUMB_SMTP_CA_FILE {}: {e}", ca.display()))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| format!("PLUMB_SMTP_CA_FILE {}: {e}", ca.display()))?;
            let params = TlsParameters::builder(host)
                .add_root_certificate(cert)
                .build_rustls()
                .map_err(|e| e.to_string())?;
            let tls = self
                .url
                .query_pairs()
                .find(|(k, _)| k == "tls")
                .map(|(_, v)| v.into_owned());
            b = match (self.url.scheme(), tls.as_deref()) {
                ("smtps", _) => b.tls(Tls::Wrapper(params)),
                (_, Some("required")) => b.tls(Tls::Required(params)),
                (_, Some("opportunistic")) => b.tls(Tls::Opportunistic(params)),
                _ => b,
            };
        }
        if let Some(pw) = &self.password {
            b = b.credentials(Credentials::new(userinfo_decode(self.url.username()), pw.clone()));
        }
        Ok(b.timeout(Some(self.timeout)).build())
    }
}

/// A URL's user or password as written, percent-decoded as RFC 3986 says: `+` stays a plus and
/// `&` is an ordinary character (form decoding would turn the one into a space and cut at the
/// other).
fn userinfo_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// What one delivery round did.
#[derive(Debug, Default)]
pub struct Delivery {
    pub sent: usize,
    /// (alert id, subject, error)
    pub failed: Vec<(i64, String, String)>,
    /// Alerts left queued without a try, and why.
    pub untried: usize,
    pub why_untried: Option<String>,
}

/// Send every alert that is due (or, with `all`, every queued one). Never panics. Each message's
/// exchange is bounded (`EXCHANGE_TIMEOUTS` command timeouts); once the server itself fails (no
/// answer, refused connection, TLS), or `deadline` passes, the rest stay queued untried, so that
/// a dead or dripping server costs one bounded attempt, not one per alert.
///
/// `skip` holds alerts already tried by this sender; they are left for the next invocation
/// rather than hammered again within one run.
pub async fn deliver(
    state_dir: &Path,
    cfg: &SmtpConfig,
    me: Runner,
    all: bool,
    skip: &mut std::collections::HashSet<i64>,
    deadline: Option<tokio::time::Instant>,
) -> Result<Delivery, String> {
    let state = State::open(state_dir).map_err(|e| e.to_string())?;
    let now = if all {
        "9999-12-31T23:59:59Z".to_string()
    } else {
        crate::state::now_rfc3339()
    };
    let mut due = state.due_alerts(&now).map_err(|e| e.to_string())?;
    due.retain(|a| skip.insert(a.id));
    let mut report = Delivery::default();
    if due.is_empty() {
        return Ok(report);
    }
    let transport = match cfg.transport() {
        Ok(t) => t,
        Err(e) => {
            for a in &due {
                let _ = state.alert_failed(a.id, &e);
                report.failed.push((a.id, a.subject.clone(), e.clone()));
            }
            return Ok(report);
        }
    };
    let mut due = due.into_iter();
    while let Some(alert) = due.next() {
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            report.untried = 1 + due.len();
            report.why_untried = Some("the flush ran out of time".into());
            break;
        }
        if !state.claim_alert(alert.id, me).map_err(|e| e.to_string())? {
            continue;
        }
        let sent = match deadline {
            Some(d) => tokio::time::timeout_at(
                d,
                send(&transport, cfg, &alert.recipients, &alert.subject, &alert.body),
            )
            .await
            .unwrap_or_else(|_| {
                Err(Failure {
                    message: "the flush ran out of time".into(),
                    server: true,
                    never: false,
                })
            }),
            None => send(&transport, cfg, &alert.recipients, &alert.subject, &alert.body).await,
        };
        match sent {
            Ok(()) => {
                state.alert_sent(alert.id).map_err(|e| e.to_string())?;
                tracing::info!(event = "alert_sent", alert = alert.id, subject = %alert.subject, server = %cfg.server());
                report.sent += 1;
            }
            Err(f) if f.never => {
                let e = format!("can never be delivered: {}", f.message);
                state
                    .alert_undeliverable(alert.id, &e)
                    .map_err(|e| e.to_string())?;
                tracing::warn!(event = "alert_undeliverable", alert = alert.id, error = %e);
                report.failed.push((alert.id, alert.subject.clone(), e));
            }
            Err(f) => {
                let e = format!("{}: {}", cfg.server(), f.message);
                state.alert_failed(alert.id, &e).map_err(|e| e.to_string())?;
                tracing::info!(event = "alert_failed", alert = alert.id, error = %e);
                report.failed.push((alert.id, alert.subject.clone(), e));
                if f.server && due.len() > 0 {
                    report.untried = due.len();
                    report.why_untried = Some(format!("{} failed: {}", cfg.server(), f.message));
                    break;
                }
            }
        }
    }
    Ok(report)
}

/// Why a message was not sent, and whether the fault is the server's (every other message would
/// meet it too) rather than this message's (a recipient refused).
#[derive(Debug)]
struct Failure {
    message: String,
    server: bool,
    /// No later try can succeed: the alert names an address no mailer can parse.
    never: bool,
}

/// Send an alert that could not be put in the outbox (the state database refused the write),
/// at once and once: there is no row to retry from.
pub fn send_unqueued(cfg: &SmtpConfig, a: &NewAlert) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let transport = cfg.transport()?;
        send(&transport, cfg, &a.recipients, &a.subject, &a.body)
            .await
            .map_err(|f| format!("{}: {}", cfg.server(), f.message))
    })
}

async fn send(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    cfg: &SmtpConfig,
    recipients: &[String],
    subject: &str,
    body: &str,
) -> Result<(), Failure> {
    let mine = |message: String| Failure {
        message,
        server: false,
        never: false,
    };
    let mut m = Message::builder()
        .from(cfg.from.parse().map_err(|e| Failure {
            message: format!("PLUMB_ALERT_FROM {:?}: {e}", cfg.from),
            server: true,
            never: false,
        })?)
        .subject(subject.to_string())
        .header(ContentType::TEXT_PLAIN);
    for r in recipients {
        m = m.to(r.parse().map_err(|e| Failure {
            message: format!("recipient {r:?}: {e}"),
            server: false,
            never: true,
        })?);
    }
    let message = m.body(body.to_string()).map_err(|e| mine(e.to_string()))?;
    // lettre bounds each command; this bounds the whole exchange too.
    let limit = cfg.timeout * EXCHANGE_TIMEOUTS;
    match tokio::time::timeout(limit, transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        // An SMTP reply refusing this message (a recipient, its size) is about the message.
        Ok(Err(e)) => Err(Failure {
            server: !(e.is_transient() || e.is_permanent()),
            message: e.to_string(),
            never: false,
        }),
        Err(_) => Err(Failure {
            message: format!(
                "the server did not finish the exchange within {}",
                humantime::format_duration(limit)
            ),
            server: true,
            never: false,
        }),
    }
}

enum Kick {
    Deliver,
    Stop,
}

/// Delivers alerts on its own thread while a run goes on.
pub struct Courier {
    tx: mpsc::Sender<Kick>,
    done: mpsc::Receiver<Delivery>,
}

impl Courier {
    pub fn start(state_dir: PathBuf, cfg: SmtpConfig, me: Runner) -> Courier {
        let (tx, rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            let mut total = Delivery::default();
            let mut tried = std::collections::HashSet::new();
            while let Ok(kick) = rx.recv() {
                // Coalesce kicks that piled up while sending.
                let mut stop = matches!(kick, Kick::Stop);
                while let Ok(k) = rx.try_recv() {
                    stop |= matches!(k, Kick::Stop);
                }
                match rt.block_on(deliver(&state_dir, &cfg, me, false, &mut tried, None)) {
                    Ok(d) => {
                        total.sent += d.sent;
                        total.failed.extend(d.failed);
                        total.untried = d.untried;
                        total.why_untried = d.why_untried;
                    }
                    Err(e) => tracing::warn!(event = "alert_delivery_error", error = %e),
                }
                if stop {
                    break;
                }
            }
            let _ = done_tx.send(total);
        });
        let c = Courier { tx, done };
        c.kick();
        c
    }

    /// Deliver whatever is due, soon.
    pub fn kick(&self) {
        let _ = self.tx.send(Kick::Deliver);
    }

    /// Deliver what is due one last time, waiting at most `limit`. What is not delivered by
    /// then stays queued.
    pub fn finish(self, limit: Duration) -> Option<Delivery> {
        let _ = self.tx.send(Kick::Stop);
        self.done.recv_timeout(limit).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::userinfo_decode;

    #[test]
    fn userinfo_keeps_plus_and_ampersand_and_decodes_percent_escapes() {
        assert_eq!(userinfo_decode("a+b&c=d"), "a+b&c=d");
        assert_eq!(userinfo_decode("p%2Bw%26rd%40x%25"), "p+w&rd@x%");
        assert_eq!(userinfo_decode("plain"), "plain");
        assert_eq!(userinfo_decode(""), "");
    }
}
