//! Email: handlebars templates (files under `templates/email/`, each overridable from
//! `email.templates_dir`), rendered as plain text and HTML, and sent with `lettre` over SMTP
//! (none, STARTTLS or TLS, with credentials) or written to an outbox folder (the development
//! default, so the run command needs no mail server).

use handlebars::Handlebars;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use livesessions_domain::Email;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where email goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    /// `.eml` files in `email.outbox_dir`.
    Outbox,
    /// A mail server.
    Smtp,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain text (a relay on loopback).
    None,
    /// Upgrade with STARTTLS.
    Starttls,
    /// TLS from the first byte.
    Tls,
}

/// The `email.smtp.*` keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    /// The server.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// None, STARTTLS or TLS.
    pub security: SmtpSecurity,
    /// User name, if the server wants one.
    pub username: Option<String>,
    /// Password, with the user name.
    pub password: Option<String>,
    /// How long one send may take.
    #[serde(with = "livesessions_domain::duration::text")]
    pub timeout: Duration,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 587,
            security: SmtpSecurity::Starttls,
            username: None,
            password: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// The `email.*` keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailSettings {
    /// The sender, e.g. `livesessions <no-reply@example.com>`.
    pub from: String,
    /// Outbox (default) or SMTP.
    pub transport: TransportKind,
    /// Where the outbox writes `.eml` files.
    pub outbox_dir: PathBuf,
    /// The mail server, for `transport = "smtp"`.
    pub smtp: SmtpSettings,
    /// A folder whose templates replace the built-in ones of the same name.
    pub templates_dir: Option<PathBuf>,
    /// The client app's base, for reschedule links (defaults to the API's public URL).
    pub app_url: Option<String>,
}

impl Default for EmailSettings {
    fn default() -> Self {
        Self {
            from: "livesessions <no-reply@livesessions.local>".into(),
            transport: TransportKind::Outbox,
            outbox_dir: PathBuf::from(".data/outbox"),
            smtp: SmtpSettings::default(),
            templates_dir: None,
            app_url: None,
        }
    }
}

/// The built-in templates: the text of each notice, and the two layouts.
const BUILT_IN: &[(&str, &str)] = &[
    ("layout.txt", include_str!("../../templates/email/layout.txt.hbs")),
    ("layout.html", include_str!("../../templates/email/layout.html.hbs")),
    ("requested.txt", include_str!("../../templates/email/requested.txt.hbs")),
    ("confirmed.txt", include_str!("../../templates/email/confirmed.txt.hbs")),
    ("declined.txt", include_str!("../../templates/email/declined.txt.hbs")),
    ("expired.txt", include_str!("../../templates/email/expired.txt.hbs")),
    ("reminder.txt", include_str!("../../templates/email/reminder.txt.hbs")),
    ("rescheduled.txt", include_str!("../../templates/email/rescheduled.txt.hbs")),
    ("cancelled.txt", include_str!("../../templates/email/cancelled.txt.hbs")),
    ("late_cancelled.txt", include_str!("../../templates/email/late_cancelled.txt.hbs")),
    (
        "late_cancelled_fee_waived.txt",
        include_str!("../../templates/email/late_cancelled_fee_waived.txt.hbs"),
    ),
    ("client_no_show.txt", include_str!("../../templates/email/client_no_show.txt.hbs")),
    ("provider_no_show.txt", include_str!("../../templates/email/provider_no_show.txt.hbs")),
    (
        "provider_unavailable.txt",
        include_str!("../../templates/email/provider_unavailable.txt.hbs"),
    ),
    (
        "reschedule_offer_lapsed.txt",
        include_str!("../../templates/email/reschedule_offer_lapsed.txt.hbs"),
    ),
    (
        "authorization_prompt.txt",
        include_str!("../../templates/email/authorization_prompt.txt.hbs"),
    ),
    (
        "messaging_session_started.txt",
        include_str!("../../templates/email/messaging_session_started.txt.hbs"),
    ),
    (
        "availability_request.txt",
        include_str!("../../templates/email/availability_request.txt.hbs"),
    ),
    ("fee_outstanding.txt", include_str!("../../templates/email/fee_outstanding.txt.hbs")),
    ("fee_written_off.txt", include_str!("../../templates/email/fee_written_off.txt.hbs")),
];

/// A notice's words: its subject and its body (without greeting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    /// The email's subject.
    pub subject: String,
    /// The body.
    pub body: String,
}

/// The templates, loaded once.
pub struct Templates {
    text: Handlebars<'static>,
    html: Handlebars<'static>,
}

impl Templates {
    /// The built-in templates, each replaced by `<dir>/<name>.hbs` when that file exists.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut text = Handlebars::new();
        text.set_strict_mode(true);
        text.register_escape_fn(handlebars::no_escape);
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        for (name, built_in) in BUILT_IN {
            let source = match dir.map(|d| d.join(format!("{name}.hbs"))).filter(|p| p.is_file()) {
                Some(path) => std::fs::read_to_string(&path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                None => built_in.to_string(),
            };
            let registry = if name.ends_with(".html") { &mut html } else { &mut text };
            registry
                .register_template_string(name, source)
                .map_err(|e| anyhow::anyhow!("template {name}: {e}"))?;
        }
        Ok(Self { text, html })
    }

    /// The words of template `name` (`Subject: …`, a blank line, the body).
    pub fn words(&self, name: &str, context: &serde_json::Value) -> anyhow::Result<Words> {
        let rendered = self.text.render(&format!("{name}.txt"), context)?;
        let (first, body) = rendered.split_once("\n\n").unwrap_or((rendered.as_str(), ""));
        let subject = first
            .strip_prefix("Subject:")
            .map(str::trim)
            .ok_or_else(|| anyhow::anyhow!("template {name} must start with `Subject: `"))?;
        Ok(Words { subject: subject.to_string(), body: body.trim().to_string() })
    }

    /// The whole email for a person: subject, plain text and HTML.
    pub fn email(
        &self,
        name: &str,
        context: &serde_json::Value,
    ) -> anyhow::Result<(String, String, String)> {
        let words = self.words(name, context)?;
        let mut context = context.clone();
        context["body"] = words.body.clone().into();
        context["subject"] = words.subject.clone().into();
        context["paragraphs"] =
            words.body.split("\n\n").map(|p| serde_json::Value::from(p.trim())).collect();
        let text = self.text.render("layout.txt", &context)?;
        let html = self.html.render("layout.html", &context)?;
        Ok((words.subject, text, html))
    }
}

/// Where sent mail goes.
enum Transport {
    Outbox(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// Sends email.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    /// The templates.
    pub templates: Templates,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Stable per key and recipient, so mail clients can drop a duplicate.
    pub message_id: String,
    /// The recipient: name and address.
    pub to: (String, Email),
    /// The subject.
    pub subject: String,
    /// Plain text.
    pub text: String,
    /// HTML.
    pub html: String,
    /// An `.ics` invite and its method, if any.
    pub invite: Option<(String, &'static str)>,
}

impl Mailer {
    /// A mailer as `settings` say.
    pub fn new(settings: &EmailSettings) -> anyhow::Result<Self> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("email.from {:?}: {e}", settings.from))?;
        let transport = match settings.transport {
            TransportKind::Outbox => {
                std::fs::create_dir_all(&settings.outbox_dir)?;
                Transport::Outbox(AsyncFileTransport::new(&settings.outbox_dir))
            }
            TransportKind::Smtp => {
                let smtp = &settings.smtp;
                let builder = match smtp.security {
                    SmtpSecurity::None => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                    }
                    SmtpSecurity::Starttls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)?
                    }
                    SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)?,
                };
                let mut builder = builder.port(smtp.port).timeout(Some(smtp.timeout));
                if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
                    builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
                }
                Transport::Smtp(builder.build())
            }
        };
        Ok(Self { transport, from, templates: Templates::load(settings.templates_dir.as_deref())? })
    }

    /// Sends one message; an error means it was not accepted (retry later).
    pub async fn send(&self, outgoing: &Outgoing) -> anyhow::Result<()> {
        let to = Mailbox::new(Some(outgoing.to.0.clone()), outgoing.to.1.as_str().parse()?);
        let body = MultiPart::alternative_plain_html(outgoing.text.clone(), outgoing.html.clone());
        let body = match &outgoing.invite {
            Some((ics, method)) => MultiPart::mixed().multipart(body).singlepart(
                Attachment::new("invite.ics".to_string()).body(
                    ics.clone(),
                    ContentType::parse(&format!("text/calendar; method={method}; charset=UTF-8"))?,
                ),
            ),
            None => MultiPart::mixed().multipart(body),
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&outgoing.subject)
            .message_id(Some(outgoing.message_id.clone()))
            .multipart(body)?;
        match &self.transport {
            Transport::Outbox(outbox) => {
                outbox.send(message).await?;
            }
            Transport::Smtp(smtp) => {
                smtp.send(message).await?;
            }
        }
        Ok(())
    }

    /// The sender's address.
    pub fn from_address(&self) -> String {
        self.from.email.to_string()
    }
}

/// The template context shared by room messages and emails.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Context {
    /// The recipient's name (emails only).
    pub name: String,
    /// The start, in the recipient's zone.
    pub when: String,
    /// Until when the provider may confirm, in the recipient's zone.
    pub confirm_by: String,
    /// Minutes.
    pub duration: u32,
    /// Video, audio or chat.
    pub modality: String,
    /// Where a reminder sends the reader to join: an email's own join link, or for the room
    /// the API's `GET /v1/sessions/{id}/join` (never a join token).
    pub join_link: Option<String>,
    /// Where to reschedule (after a provider's absence).
    pub reschedule_link: Option<String>,
    /// The fee (late cancellation, no-show, one owed).
    pub fee: Option<String>,
    /// When an owed fee is tried again, in the recipient's zone.
    pub next_attempt: Option<String>,
    /// The next session's estimate.
    pub estimate: Option<String>,
    /// Until when to authorize it.
    pub authorize_by: Option<String>,
    /// The client who shared windows (availability requests).
    pub client_name: Option<String>,
    /// The windows they shared, in the recipient's zone.
    pub windows: Vec<String>,
}
