//! A real SMTP server for the tests: aiosmtpd (PyPI, installed by `./dev test` under
//! `.tools/python`) on a loopback port, keeping what it receives in a maildir the tests read.

use livesessions_worker::dev_server::{free_port, spawn_tied_to_this_process};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One message the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// `To:`.
    pub to: String,
    /// `Subject:`.
    pub subject: String,
    /// `Message-ID:`.
    pub message_id: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
    /// The `text/calendar` attachment, if any.
    pub invite: Option<String>,
}

/// A running (or stopped) mail server.
pub struct MailServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl MailServer {
    /// A server on a free port, not started yet.
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("ls-mail-{}", uuid::Uuid::new_v4().simple()));
        Self { port: free_port().expect("a free port"), dir, child: None }
    }

    /// Starts it (again) and waits until it accepts connections.
    pub fn start(&mut self) {
        let pythonpath = std::env::var("LIVESESSIONS_TEST_PYTHONPATH")
            .unwrap_or_else(|_| crate::crate_dir().join("../.tools/python").display().to_string());
        let mut command = Command::new("python3");
        command
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{}", self.port),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&self.dir)
            .env("PYTHONPATH", pythonpath)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(
            spawn_tied_to_this_process(command)
                .expect("aiosmtpd starts (run the tests with ./dev test)"),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd never listened on {}", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it: the port refuses connections until [`MailServer::start`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Everything received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("new")) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort_by_key(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok());
        files.iter().map(|path| parse(&std::fs::read(path).expect("a message file"))).collect()
    }

    /// Waits (30 s at most) until `count` messages for `to` have arrived; answers them.
    pub async fn wait_for(&self, to: &str, count: usize) -> Vec<Received> {
        crate::eventually(&format!("{count} emails to {to}"), || async {
            let mine: Vec<Received> =
                self.received().into_iter().filter(|m| m.to.contains(to)).collect();
            if mine.len() >= count {
                Ok(mine)
            } else {
                Err(format!("{:?}", mine.iter().map(|m| &m.subject).collect::<Vec<_>>()))
            }
        })
        .await
    }
}

impl MailServer {
    /// Waits (30 s at most) for an email to `to` whose subject starts with `subject`.
    pub async fn wait_for_subject(&self, to: &str, subject: &str) -> Received {
        crate::eventually(&format!("an email {subject:?} to {to}"), || async {
            let mails = self.received();
            let seen: Vec<String> =
                mails.iter().filter(|m| m.to.contains(to)).map(|m| m.subject.clone()).collect();
            mails
                .into_iter()
                .find(|m| m.to.contains(to) && m.subject.starts_with(subject))
                .ok_or_else(|| format!("{seen:?}"))
        })
        .await
    }
}

impl Default for MailServer {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn parse(bytes: &[u8]) -> Received {
    use mailparse::MailHeaderMap;
    let mail = mailparse::parse_mail(bytes).expect("a MIME message");
    let header = |name: &str| mail.headers.get_first_value(name).unwrap_or_default();
    let mut received = Received {
        to: header("To"),
        subject: header("Subject"),
        message_id: header("Message-ID"),
        text: String::new(),
        html: String::new(),
        invite: None,
    };
    let mut parts = vec![&mail];
    while let Some(part) = parts.pop() {
        parts.extend(part.subparts.iter());
        match part.ctype.mimetype.as_str() {
            "text/plain" => received.text = part.get_body().unwrap_or_default(),
            "text/html" => received.html = part.get_body().unwrap_or_default(),
            "text/calendar" => received.invite = part.get_body().ok(),
            _ => {}
        }
    }
    received
}
