//! Talking to the server: connecting with one-line errors, finding the stream, and retrying
//! what a failover or a restart makes fail for a while (with backoff, within a patience).

use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream::Stream};

use crate::Error;

/// Connects to `server` (a URL such as `nats://user:secret@host:4222`, or several separated
/// by commas), failing at once, with [`Error::Unreachable`] or [`Error::Auth`], when no server
/// answers or the credentials are refused. Credentials in a URL (`user:password@`, or a token
/// as `token@`) are sent to every server; [`connect_with_creds`] takes a NATS `.creds` file
/// instead. After the first connection the client reconnects on its own, forever; the
/// forwarder and the importer retry their work meanwhile.
///
/// ```no_run
/// # async fn example() -> Result<(), ringledger_jetstream::Error> {
/// let client = ringledger_jetstream::connect("nats://127.0.0.1:4222").await?;
/// # drop(client);
/// # Ok(())
/// # }
/// ```
pub async fn connect(server: &str) -> Result<async_nats::Client, Error> {
    connect_with_creds(server, None).await
}

/// [`connect`] with a NATS credentials file (JWT and NKey seed), if given.
///
/// ```no_run
/// # async fn example() -> Result<(), ringledger_jetstream::Error> {
/// let creds = std::path::Path::new("/etc/nats/edge.creds");
/// let client = ringledger_jetstream::connect_with_creds("tls://hub:4222", Some(creds)).await?;
/// # drop(client);
/// # Ok(())
/// # }
/// ```
pub async fn connect_with_creds(
    server: &str,
    creds: Option<&std::path::Path>,
) -> Result<async_nats::Client, Error> {
    let mut options = match creds {
        Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| Error::Auth {
                server: server.to_owned(),
                reason: format!("reading {}: {e}", path.display()),
            })?,
        None => async_nats::ConnectOptions::new(),
    };
    let mut urls = Vec::new();
    for url in server.split(',').map(str::trim) {
        let (url, credentials) = split_credentials(url);
        match credentials {
            Some((user, Some(password))) => {
                options = options.user_and_password(user.to_owned(), password.to_owned());
            }
            Some((token, None)) => options = options.token(token.to_owned()),
            None => {}
        }
        urls.push(url);
    }
    let options = options
        .name("ringledger-jetstream")
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(REQUEST_TIMEOUT));
    // Shown without the credentials.
    let shown = urls.join(",");
    options.connect(urls).await.map_err(|error| {
        // The client's message repeats its cause; one copy is enough.
        let reason = error.to_string();
        match error.kind() {
            async_nats::ConnectErrorKind::AuthorizationViolation
            | async_nats::ConnectErrorKind::Authentication => Error::Auth {
                server: shown,
                reason: error.kind().to_string(),
            },
            _ => Error::Unreachable {
                server: shown,
                reason,
            },
        }
    })
}

/// A URL without its `user[:password]@` part, and that part.
fn split_credentials(url: &str) -> (String, Option<(&str, Option<&str>)>) {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return (url.to_owned(), None);
    };
    let (userinfo, host) = (&rest[..at], &rest[at + 1..]);
    let bare = match scheme {
        Some(scheme) => format!("{scheme}://{host}"),
        None => host.to_owned(),
    };
    let credentials = match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (userinfo, None),
    };
    (bare, Some(credentials))
}

#[cfg(test)]
mod tests {
    use super::split_credentials;

    #[test]
    fn credentials_are_taken_out_of_a_url() {
        assert_eq!(
            split_credentials("nats://ops:s3cret@10.0.0.1:4222"),
            ("nats://10.0.0.1:4222".into(), Some(("ops", Some("s3cret"))))
        );
        assert_eq!(
            split_credentials("tok@host:4222"),
            ("host:4222".into(), Some(("tok", None)))
        );
        assert_eq!(
            split_credentials("nats://host"),
            ("nats://host".into(), None)
        );
    }
}

/// A failure to retry (it may pass: a leader election, a restart) or to stop at.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Worth retrying; the text says what failed.
    Transient(String),
    /// Retrying does not help.
    Fatal(Error),
}

/// Retries a failing step with exponential backoff (50 ms doubling to 2 s) for as long as the
/// failures last less than `patience` (counted from `since`).
pub(crate) struct Backoff {
    since: Option<Instant>,
    delay: Duration,
    patience: Duration,
    /// How many retries so far, over the whole run.
    pub(crate) retries: u64,
}

impl Backoff {
    pub(crate) fn new(patience: Duration) -> Self {
        Self {
            since: None,
            delay: Duration::from_millis(50),
            patience,
            retries: 0,
        }
    }

    /// Progress was made: the next failure starts a new count.
    pub(crate) fn reset(&mut self) {
        self.since = None;
        self.delay = Duration::from_millis(50);
    }

    /// Notes a failure and sleeps before the retry, or gives up.
    pub(crate) async fn wait(&mut self, failure: String) -> Result<(), Error> {
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() >= self.patience {
            return Err(Error::GaveUp {
                after: since.elapsed(),
                last: failure,
            });
        }
        self.retries += 1;
        tracing::warn!(retry_in = ?self.delay, "{failure}");
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(Duration::from_secs(2));
        Ok(())
    }

    /// Runs `step` until it succeeds, fails fatally or the patience runs out.
    pub(crate) async fn retry<T, F, Fut>(&mut self, mut step: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        loop {
            match step().await {
                Ok(value) => {
                    self.reset();
                    return Ok(value);
                }
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::Transient(what)) => self.wait(what).await?,
            }
        }
    }
}

/// How long one request to the server may take before it counts as a transient failure. The
/// client's own timeouts do not cover a request queued while it is disconnected.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// `request`, failing transiently after [`REQUEST_TIMEOUT`].
pub(crate) async fn bounded<T, E: std::fmt::Display>(
    what: &str,
    request: impl Future<Output = Result<T, E>>,
) -> Result<Result<T, E>, Failure> {
    tokio::time::timeout(REQUEST_TIMEOUT, request)
        .await
        .map_err(|_| Failure::Transient(format!("{what}: no answer within {REQUEST_TIMEOUT:?}")))
}

/// The stream `name`: missing is fatal when `missing_is_fatal` (at the start), transient
/// otherwise (a cluster coming back may not know it for a moment).
pub(crate) async fn stream(
    js: &jetstream::Context,
    name: &str,
    missing_is_fatal: bool,
) -> Result<Stream, Failure> {
    use async_nats::jetstream::context::GetStreamErrorKind;
    match bounded(&format!("looking up stream {name}"), js.get_stream(name)).await? {
        Ok(stream) => Ok(stream),
        Err(error) => {
            let text = format!("looking up stream {name}: {error}");
            let missing = matches!(error.kind(), GetStreamErrorKind::JetStream(ref e)
                if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND);
            let unavailable = matches!(error.kind(), GetStreamErrorKind::JetStream(ref e)
                if e.error_code() == jetstream::ErrorCode::JETSTREAM_NOT_ENABLED
                    || e.error_code() == jetstream::ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT);
            if missing && missing_is_fatal {
                Err(Failure::Fatal(Error::StreamMissing {
                    stream: name.to_owned(),
                }))
            } else if unavailable && missing_is_fatal {
                Err(Failure::Fatal(Error::NoJetStream(error.to_string())))
            } else {
                Err(Failure::Transient(text))
            }
        }
    }
}

/// Whether the NATS subject `subject` matches `pattern` (with `*` for one token and `>` for
/// the rest).
///
/// ```
/// use ringledger_jetstream::subject_matches;
///
/// assert!(subject_matches("events.>", "events.host1.app"));
/// assert!(subject_matches("events.*.app", "events.host1.app"));
/// assert!(!subject_matches("events.*", "events.host1.app"));
/// assert!(!subject_matches("orders", "events"));
/// ```
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for token in pattern.split('.') {
        match (token, subject_tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (literal, Some(actual)) if literal == actual => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}
