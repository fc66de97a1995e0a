//! How long a request to a store may take and how often it is tried: the timeouts, the
//! backoff schedule (exponential, with jitter) and which failures are worth another try.
//!
//! Pure but for [`Policy::run`], which sleeps between attempts. Invariants:
//! - every request has a connect timeout and a whole-request timeout that grows with the
//!   bytes it carries, so a hung store never blocks the caller for longer than
//!   `attempts` × that timeout plus the backoffs;
//! - only failures that may pass by themselves are retried (connection errors, timeouts,
//!   5xx, 429, `SlowDown`); a refusal (403, a bad request, an untrusted certificate) is
//!   returned at once, since asking again gets the same answer.

use std::time::Duration;

/// A failed attempt, before it is given the target URL and object name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub problem: String,
    pub retryable: bool,
}

impl Failure {
    pub fn retry(problem: impl Into<String>) -> Self {
        Failure {
            problem: problem.into(),
            retryable: true,
        }
    }

    pub fn fatal(problem: impl Into<String>) -> Self {
        Failure {
            problem: problem.into(),
            retryable: false,
        }
    }
}

/// Timeouts and retries of the requests to one store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// How many times a request is tried in all (at least 1).
    pub attempts: u32,
    /// The wait after the first failed attempt; each later wait doubles, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    pub connect_timeout: Duration,
    /// The whole-request timeout of a request without a body…
    pub base_timeout: Duration,
    /// …plus one second for every this many bytes it carries either way.
    pub bytes_per_second: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            attempts: 4,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            connect_timeout: Duration::from_secs(5),
            base_timeout: Duration::from_secs(30),
            bytes_per_second: 1 << 20,
        }
    }
}

impl Policy {
    /// The whole-request timeout of a request that moves `bytes`.
    pub fn timeout_for(&self, bytes: u64) -> Duration {
        let extra = bytes / self.bytes_per_second.max(1);
        self.base_timeout + Duration::from_secs(extra)
    }

    /// The wait before attempt `retry + 2` (after `retry + 1` failures): `first_backoff`
    /// doubled `retry` times, capped at `max_backoff`, then scaled by `jitter` in [0, 1]
    /// to between half and all of it, so clients that failed together do not come back
    /// together.
    pub fn backoff(&self, retry: u32, jitter: f64) -> Duration {
        let full = self
            .first_backoff
            .saturating_mul(1u32 << retry.min(20))
            .min(self.max_backoff);
        full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// Runs `attempt` until it succeeds, fails for good, or `attempts` are spent; the
    /// last failure says how many attempts were made.
    pub fn run<T>(&self, mut attempt: impl FnMut() -> Result<T, Failure>) -> Result<T, Failure> {
        let attempts = self.attempts.max(1);
        let mut retry = 0;
        loop {
            match attempt() {
                Ok(value) => return Ok(value),
                Err(failure) if !failure.retryable => return Err(failure),
                Err(failure) if retry + 1 >= attempts => {
                    return Err(Failure::retry(format!(
                        "{} (after {attempts} attempts)",
                        failure.problem
                    )))
                }
                Err(_) => {
                    std::thread::sleep(self.backoff(retry, jitter()));
                    retry += 1;
                }
            }
        }
    }
}

/// A uniform number in [0, 1) from the system's random source.
fn jitter() -> f64 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 4];
    match ring::rand::SystemRandom::new().fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

/// Whether an HTTP answer is worth another try: 5xx, 429, and S3's `SlowDown`,
/// `RequestTimeout` and `InternalError` whatever their status.
pub fn status_is_retryable(status: u16, code: &str) -> bool {
    status >= 500
        || status == 429
        || matches!(code, "SlowDown" | "RequestTimeout" | "InternalError")
}

/// An S3 error answer: its `Code`, and the failure to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: String,
    pub failure: Failure,
}

/// An HTTP answer other than a success, from its status and body (S3's `<Error>` XML,
/// whose `Code` and `Message` it names, with a fix for the usual causes).
pub fn refusal(status: u16, body: &str) -> Refusal {
    let code = xml_text(body, "Code").unwrap_or_default().to_string();
    let message = xml_text(body, "Message").unwrap_or_default();
    let fix = match (status, code.as_str()) {
        (_, "SignatureDoesNotMatch" | "InvalidAccessKeyId" | "InvalidToken" | "ExpiredToken") => {
            " (fix: check the node's S3 credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the shared credentials file's profile)"
        }
        (_, "AccessDenied") | (403, "") => {
            " (fix: give this access key the right to list, get, put and delete objects under the target's prefix)"
        }
        (_, "NoSuchBucket") => " (fix: create the bucket, or correct the target URL)",
        (_, "RequestTimeTooSkewed") => " (fix: set the node's clock right, e.g. with NTP)",
        (301 | 307, _) | (_, "PermanentRedirect" | "AuthorizationHeaderMalformed") => {
            " (fix: set the bucket's region and endpoint in the target)"
        }
        _ => "",
    };
    let mut problem = format!("HTTP {status}");
    if !code.is_empty() {
        problem = format!("{problem} {code}");
    }
    if !message.is_empty() {
        problem = format!("{problem}: {}", redact(message));
    }
    problem.push_str(fix);
    let failure = Failure {
        problem,
        retryable: status_is_retryable(status, &code),
    };
    Refusal { code, failure }
}

/// The text of the first `<tag>…</tag>` in `xml`: enough for S3's flat `<Error>` answers,
/// for which rusty-s3 has no parser.
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..start + len].trim())
}

/// A transport failure (no HTTP answer) as a [`Failure`]: an untrusted certificate or a
/// malformed URL stays so on a retry; a refused or reset connection, a timeout or an
/// unknown host may not.
pub fn transport(e: &ureq::Error) -> Failure {
    if let Some(tls) = super::tls::tls_failure(e) {
        return Failure::fatal(format!(
            "TLS: {tls} (with a private CA, set ca_file to the PEM of the CA the store's certificate chains to)"
        ));
    }
    match e {
        ureq::Error::Io(io) => Failure::retry(match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused (is the store up?)".into(),
            _ => format!("I/O error: {}", io.kind()),
        }),
        ureq::Error::Timeout(what) => Failure::retry(format!("timed out ({what})")),
        ureq::Error::HostNotFound => Failure::retry("the endpoint's host name does not resolve"),
        ureq::Error::ConnectionFailed => Failure::retry("the connection failed"),
        ureq::Error::BadUri(_) | ureq::Error::RequireHttpsOnly(_) => {
            Failure::fatal("the request URL is not usable (check the endpoint)")
        }
        // The other variants' texts do not carry the URL; stay on the safe side anyway.
        other => Failure::retry(redact(&other.to_string())),
    }
}

/// `text` with the query string of every URL in it cut off: a presigned URL's query holds
/// the access key id and the signature.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('?') {
        out.push_str(&rest[..at]);
        out.push_str("?…");
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ')')
            .map_or(rest.len(), |n| at + n);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half() {
        let p = Policy::default();
        let ms = |retry, jitter| p.backoff(retry, jitter).as_millis();
        assert_eq!(
            [0, 1, 2, 3, 4, 5, 40].map(|r| ms(r, 1.0)),
            [500, 1000, 2000, 4000, 8000, 8000, 8000]
        );
        assert_eq!(ms(0, 0.0), 250);
        assert_eq!(ms(3, 0.0), 2000);
        assert_eq!(ms(2, 0.5), 1500);
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }

    #[test]
    fn the_timeout_grows_with_the_size() {
        let p = Policy::default();
        assert_eq!(p.timeout_for(0), Duration::from_secs(30));
        assert_eq!(p.timeout_for(8 << 20), Duration::from_secs(38));
        assert_eq!(p.timeout_for(1 << 30), Duration::from_secs(30 + 1024));
    }

    #[test]
    fn run_retries_only_what_may_pass_and_says_how_often_it_tried() {
        let p = Policy {
            first_backoff: Duration::from_millis(1),
            ..Policy::default()
        };
        let mut calls = 0;
        let r: Result<(), _> = p.run(|| {
            calls += 1;
            Err(Failure::retry("HTTP 503"))
        });
        assert_eq!(calls, 4);
        assert_eq!(
            r.unwrap_err(),
            Failure::retry("HTTP 503 (after 4 attempts)")
        );
        let mut calls = 0;
        let r: Result<(), _> = p.run(|| {
            calls += 1;
            Err(Failure::fatal("HTTP 403"))
        });
        assert_eq!((calls, r.unwrap_err().retryable), (1, false));
        let mut calls = 0;
        let r = p.run(|| {
            calls += 1;
            if calls < 3 {
                Err(Failure::retry("reset"))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(r, Ok(3));
    }

    #[test]
    fn what_is_retried() {
        assert!(status_is_retryable(503, "SlowDown"));
        assert!(status_is_retryable(500, ""));
        assert!(status_is_retryable(429, ""));
        assert!(status_is_retryable(400, "RequestTimeout"));
        assert!(!status_is_retryable(403, "SignatureDoesNotMatch"));
        assert!(!status_is_retryable(404, "NoSuchBucket"));
    }

    #[test]
    fn refusals_name_the_code_and_the_fix() {
        let body = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match.</Message><Key>a</Key></Error>";
        let r = refusal(403, body);
        assert_eq!(r.code, "SignatureDoesNotMatch");
        assert!(!r.failure.retryable);
        assert!(
            r.failure.problem.starts_with(
                "HTTP 403 SignatureDoesNotMatch: The request signature we calculated does not match. (fix: check the node's S3 credentials"
            ),
            "{}",
            r.failure.problem
        );
        let slow = refusal(503, "<Error><Code>SlowDown</Code></Error>");
        assert!(slow.failure.retryable);
        assert_eq!(slow.failure.problem, "HTTP 503 SlowDown");
        assert_eq!(
            refusal(502, "<html>bad gateway</html>").failure,
            Failure::retry("HTTP 502")
        );
    }

    #[test]
    fn presigned_queries_are_cut_off() {
        let text = "GET http://s3:8333/b/k?X-Amz-Credential=AKID%2F1&X-Amz-Signature=abc failed";
        assert_eq!(redact(text), "GET http://s3:8333/b/k?… failed");
        assert_eq!(redact("no url here"), "no url here");
        assert_eq!(redact("a?b c?d"), "a?… c?…");
    }
}
