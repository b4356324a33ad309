//! The portal's emails: an access request submitted (to the admins), approved, rejected (with
//! the reason) and revoked (to the developer).
//!
//! Every email is rendered from its template (`emails/EVENT.txt`: a `Subject:` line, a blank
//! line, the body) and written to the store's outbox first; a sender delivers what is due over
//! SMTP, retrying with a growing pause, and records the outcome. Without an SMTP server the
//! emails stay in the outbox, which admins read on `/manage/outbox`. No email carries a secret.

use crate::pages::templates::Templates;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use portico_store::portal_outbox::OutboxMail;
use portico_store::{Store, StoreError};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// What happened, and the template (`emails/{event}.txt`) that tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Submitted,
    Approved,
    Rejected,
    Revoked,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Submitted => "submitted",
            Event::Approved => "approved",
            Event::Rejected => "rejected",
            Event::Revoked => "revoked",
        }
    }
}

/// How long one SMTP exchange may take.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per email before it is left, with its error, in the outbox.
pub const MAX_ATTEMPTS: u32 = 8;
/// How often the sender looks for due emails when nothing woke it.
const POLL: Duration = Duration::from_secs(5);

/// Where emails go, and how.
#[derive(Clone, Default)]
pub struct MailSettings {
    /// `smtp://HOST:PORT` (plain), `smtp://HOST:587?tls=required` (STARTTLS) or
    /// `smtps://HOST:465`, with `USER:PASSWORD@` if the server wants a login. `None`: emails
    /// stay in the outbox.
    pub smtp_url: Option<String>,
    /// The sender of every email.
    pub from: String,
    /// Who is told of submitted requests.
    pub notify: Vec<String>,
    /// The portal's address as people reach it, for links in emails.
    pub portal_url: String,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The SMTP URL may hold a password.
        f.debug_struct("MailSettings")
            .field("smtp", &self.smtp_url.is_some())
            .field("from", &self.from)
            .field("notify", &self.notify)
            .field("portal_url", &self.portal_url)
            .finish()
    }
}

/// Writes emails to the outbox and sends them.
#[derive(Clone)]
pub struct Mailer {
    settings: Arc<MailSettings>,
    templates: Templates,
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    wake: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The SMTP URL may hold a password.
        f.debug_struct("Mailer")
            .field("smtp", &self.transport.is_some())
            .field("from", &self.settings.from)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Checks the settings: a bad SMTP URL or address is an error at start, not a lost email.
    pub fn new(settings: MailSettings, templates: Templates) -> Result<Self, String> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| format!("--mail-from {:?}: {e}", settings.from))?;
        for address in &settings.notify {
            address
                .parse::<Mailbox>()
                .map_err(|e| format!("--notify {address:?}: {e}"))?;
        }
        let transport = match &settings.smtp_url {
            None => None,
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    // The URL may hold a password: never echo it.
                    .map_err(|e| format!("--smtp: not an SMTP URL ({e})"))?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            ),
        };
        Ok(Self {
            settings: Arc::new(settings),
            templates,
            transport,
            from,
            wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    pub fn sends(&self) -> bool {
        self.transport.is_some()
    }

    pub fn notify_list(&self) -> &[String] {
        &self.settings.notify
    }

    /// Renders `event`'s email for `context` (plus `portal_url`) and writes it to the outbox
    /// for each recipient; `None` means the admins (`--notify`). Failing to write is logged,
    /// never the caller's failure: the step the email tells of has happened.
    pub async fn queue(&self, store: &Store, event: Event, to: Option<&str>, mut context: Value) {
        if let Value::Object(map) = &mut context {
            map.insert("portal_url".into(), self.settings.portal_url.clone().into());
        }
        let name = format!("emails/{}.txt", event.as_str());
        let text = match self.templates.render(&name, &context) {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(template = %name, error = %e, "portal: an email template failed");
                return;
            }
        };
        let (subject, body) = split_subject(&text);
        let recipients: Vec<String> = match to {
            Some(to) => vec![to.to_string()],
            // With no admin address, one copy for the outbox page, addressed to no one.
            None if self.settings.notify.is_empty() => vec![String::new()],
            None => self.settings.notify.clone(),
        };
        for recipient in recipients {
            if let Err(e) = store
                .queue_mail(event.as_str(), &recipient, &subject, &body)
                .await
            {
                tracing::error!(error = %e, event = event.as_str(), "portal: writing an email to the outbox");
            }
        }
        self.wake.notify_one();
    }

    /// Sends what is due, until the process ends.
    pub async fn run(self, store: Store) {
        if self.transport.is_none() {
            return;
        }
        loop {
            if let Err(e) = self.send_due(&store).await {
                tracing::warn!(error = %e, "portal: reading the outbox");
            }
            let _ = tokio::time::timeout(POLL, self.wake.notified()).await;
        }
    }

    /// One pass over the due emails.
    pub async fn send_due(&self, store: &Store) -> Result<(), StoreError> {
        let Some(transport) = &self.transport else {
            return Ok(());
        };
        for mail in store.due_mails(MAX_ATTEMPTS, 50).await? {
            // 30 s, 1 min, 2 min, … between attempts, at most an hour.
            let pause = (30u64 << mail.attempts.min(7)).min(3600);
            if !store.take_mail(&mail, pause).await? {
                continue;
            }
            let outcome = match self.message(&mail) {
                Ok(message) => transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("SMTP: {e}")),
                Err(e) => Err(e),
            };
            match &outcome {
                Ok(()) => tracing::info!(event = %mail.event, "portal: email sent"),
                Err(e) => {
                    tracing::warn!(event = %mail.event, error = %e, "portal: email not sent")
                }
            }
            store
                .mail_attempted(&mail.id, outcome.err().as_deref())
                .await?;
        }
        Ok(())
    }

    fn message(&self, mail: &OutboxMail) -> Result<Message, String> {
        if mail.recipient.is_empty() {
            return Err("no recipient: give the admins' addresses with --notify".into());
        }
        let to: Mailbox = mail
            .recipient
            .parse()
            .map_err(|e| format!("recipient {:?}: {e}", mail.recipient))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .body(mail.body.clone())
            .map_err(|e| e.to_string())
    }
}

/// The `Subject:` first line and the body after the blank line.
fn split_subject(text: &str) -> (String, String) {
    let text = text.trim_start();
    match text.strip_prefix("Subject:") {
        Some(rest) => {
            let (subject, body) = rest.split_once('\n').unwrap_or((rest, ""));
            (
                subject.trim().to_string(),
                body.trim_start_matches(['\r', '\n']).to_string(),
            )
        }
        None => ("Portico developer portal".to_string(), text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_line_is_taken_off_the_body() {
        assert_eq!(
            split_subject("Subject: Hello\n\nBody\nmore"),
            ("Hello".into(), "Body\nmore".into())
        );
        assert_eq!(
            split_subject("no subject"),
            ("Portico developer portal".into(), "no subject".into())
        );
    }

    #[test]
    fn bad_settings_are_refused_at_start() {
        let templates = Templates::embedded();
        let ok = MailSettings {
            from: "portal@example.com".into(),
            ..Default::default()
        };
        assert!(Mailer::new(ok.clone(), templates.clone()).is_ok());
        let e = Mailer::new(
            MailSettings {
                smtp_url: Some("http://user:hunter22@mail".into()),
                ..ok.clone()
            },
            templates.clone(),
        )
        .unwrap_err();
        assert!(e.starts_with("--smtp"), "{e}");
        assert!(!e.contains("hunter22"), "{e}");
        let e = Mailer::new(
            MailSettings {
                notify: vec!["not an address".into()],
                ..ok
            },
            templates,
        )
        .unwrap_err();
        assert!(e.starts_with("--notify"), "{e}");
    }
}
