//! The identity endpoint's HTTP/1.1, by hand: one request per connection, one answer.
//!
//! `POST /v1/identity?name=<service>` (no `name`, or an empty one: the node's own
//! identity) with a PKCS#10 request in PEM as the body; the answer is `200` with the
//! identity's chain in PEM, `403` with the one refusal line, `409` while an enforced
//! policy waits for etcd's auth to go on (ask again), `429` past the node's limits
//! ([`super::limits`]), `503` when this member cannot issue now (its signer revoked, a
//! branch or the ledger's record not made: ask again, or another member), `500` when its
//! signer failed, or `400`, `404`, `405`, `413` with one line saying what was wrong.
//! `POST /v1/gateway?name=<service>` with the service's gateway password as the body
//! ([`super::password`]): `200` with one line once it is set, `409` while etcd's auth is
//! not on yet, `502` when the member's etcd failed.
//! `POST /v1/free?name=<service>` with a prefix as the body (no `name`: the node's own
//! prefix): `200` with how many keys under it the member deleted ([`super::free`]).
//! `POST /v1/revocations` (an empty body): `200` with the zone's signed revocations
//! document the member holds, or an empty body when the zone revoked nothing; a node that
//! is not a member keeps it to know when an identity it holds was revoked
//! ([`super::revoked`]). A node decides by `403` (refused), `409` (auth not on yet) and
//! `429` or `503` (not now); any other answer is a failure ([`super::client`]).
//!
//! Invariants: at most [`HEAD_BYTES`] of head and [`BODY_BYTES`] of body are read, the
//! body only as long as its `Content-Length` says (no chunked bodies), and the whole
//! request within [`REQUEST_TIME`]; nothing read is echoed beyond a short, escaped quote.

use std::io::Read;
use std::time::{Duration, Instant};

/// The path of an identity's request.
pub const PATH: &str = "/v1/identity";
/// The path of a gateway password's request.
pub const GATEWAY_PATH: &str = "/v1/gateway";
/// The path of a request for the zone's revocations.
pub const REVOCATIONS_PATH: &str = "/v1/revocations";
/// The path of a request to free a prefix of a tenant's ([`super::free`]).
pub const FREE_PATH: &str = "/v1/free";
/// How long a member waits, before it answers an identity or a gateway password, for the
/// keepers to make the etcd user it names (they look each second, and a loaded zone's
/// leader takes seconds to apply): an identity handed out works at once, as a user's
/// script expects. A node waits for the answer this long beyond its own
/// [`super::client::REQUEST_TIMEOUT`] ([`answer_time`]).
pub const USER_WAIT: Duration = Duration::from_secs(15);

/// How long a node waits for a member's whole answer at `path`: those that may wait for
/// a user ([`USER_WAIT`]) take that long more.
pub fn answer_time(path: &str, request: Duration) -> Duration {
    match path {
        PATH | GATEWAY_PATH => request + USER_WAIT,
        _ => request,
    }
}

/// The most of a request's head that is read.
pub const HEAD_BYTES: usize = 8 * 1024;
/// The most of a body that is read: a CSR is under 1 KiB.
pub const BODY_BYTES: usize = 16 * 1024;
/// How long a whole request may take to arrive (each read gives up sooner: the socket's
/// own timeout).
pub const REQUEST_TIME: Duration = Duration::from_secs(10);

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An identity for the request in the body.
    Identity,
    /// The service's gateway password in the body set on its user.
    Gateway,
    /// The zone's revocations document, as the member holds it.
    Revocations,
    /// The keys under the prefix in the body deleted, for a tenant a quota stopped.
    Free,
}

/// A request the endpoint answers.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    pub kind: Kind,
    /// The service asked for; `None` for the node's own identity.
    pub name: Option<String>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body of a gateway request is a password.
        f.debug_struct("Request")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

/// An answer that is not a certificate: its status and its one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub line: String,
}

impl Answer {
    pub fn new(status: u16, line: impl Into<String>) -> Answer {
        Answer {
            status,
            line: line.into(),
        }
    }
}

/// Reads one request from `stream`.
pub fn read_request(stream: &mut impl Read) -> Result<Request, Answer> {
    let started = Instant::now();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if data.len() > HEAD_BYTES {
            return Err(Answer::new(400, "bad request: the head is too long"));
        }
        read_more(stream, &mut data, &mut buf, started)?;
    };
    let head = std::str::from_utf8(&data[..head_end])
        .map_err(|_| Answer::new(400, "bad request: the head is not UTF-8"))?;
    let (kind, name, length) = parse_head(head)?;
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        read_more(stream, &mut body, &mut buf, started)?;
    }
    if body.len() > length {
        return Err(Answer::new(
            400,
            "bad request: more than Content-Length was sent (one request per connection)",
        ));
    }
    Ok(Request { kind, name, body })
}

fn read_more(
    stream: &mut impl Read,
    data: &mut Vec<u8>,
    buf: &mut [u8],
    started: Instant,
) -> Result<(), Answer> {
    if started.elapsed() > REQUEST_TIME {
        return Err(Answer::new(400, "bad request: it took too long to arrive"));
    }
    match stream.read(buf) {
        Ok(0) => Err(Answer::new(400, "bad request: the connection ended early")),
        Ok(n) => {
            data.extend_from_slice(&buf[..n]);
            Ok(())
        }
        Err(e) => Err(Answer::new(400, format!("bad request: {e}"))),
    }
}

/// What is asked, the service asked for and the body's length, from a request's head.
pub fn parse_head(head: &str) -> Result<(Kind, Option<String>, usize), Answer> {
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split(' ');
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    if parts.next().is_some() || !version.is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(Answer::new(
            400,
            "bad request: not an HTTP/1.1 request line",
        ));
    }
    let target = target.unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let kind = match path {
        PATH => Kind::Identity,
        GATEWAY_PATH => Kind::Gateway,
        REVOCATIONS_PATH => Kind::Revocations,
        FREE_PATH => Kind::Free,
        _ => {
            return Err(Answer::new(
                404,
                format!(
                    "not found: ask POST {PATH}, POST {GATEWAY_PATH}, POST {REVOCATIONS_PATH} or POST {FREE_PATH}"
                ),
            ))
        }
    };
    if method != Some("POST") {
        return Err(Answer::new(405, format!("method not allowed: POST {path}")));
    }
    let mut name = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("name", value)) if name.is_none() => name = Some(value.to_string()),
            _ => {
                return Err(Answer::new(
                    400,
                    "bad request: the query takes one parameter, name=<service>",
                ))
            }
        }
    }
    let mut length = None;
    for line in lines {
        let Some((key, value)) = line.split_once(':') else {
            return Err(Answer::new(400, "bad request: a header line without ':'"));
        };
        if key.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Answer::new(
                400,
                "bad request: send the body with a Content-Length",
            ));
        }
        if key.eq_ignore_ascii_case("content-length") {
            let parsed = value.trim().parse::<usize>().ok();
            if length.is_some() || parsed.is_none() {
                return Err(Answer::new(400, "bad request: a bad Content-Length"));
            }
            length = parsed;
        }
    }
    let length = length.ok_or_else(|| Answer::new(400, "bad request: no Content-Length"))?;
    if length > BODY_BYTES {
        return Err(Answer::new(
            413,
            format!("too large: a certificate request is at most {BODY_BYTES} bytes"),
        ));
    }
    let name = name.filter(|n| !n.is_empty());
    if kind == Kind::Gateway && name.is_none() {
        return Err(Answer::new(
            400,
            "bad request: a gateway password is a service's: name=<service>",
        ));
    }
    Ok((kind, name, length))
}

/// The whole HTTP/1.1 answer: `status` with `body`.
pub fn response(status: u16, body: &str) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        409 => "Conflict",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        _ => "Internal Server Error",
    };
    let kind = if status == 200 && body.starts_with("-----BEGIN") {
        "application/pem-certificate-chain"
    } else {
        "text/plain; charset=utf-8"
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_that_wait_for_a_user_take_longer() {
        let request = Duration::from_secs(5);
        assert_eq!(answer_time(PATH, request), request + USER_WAIT);
        assert_eq!(answer_time(GATEWAY_PATH, request), request + USER_WAIT);
        assert_eq!(answer_time(REVOCATIONS_PATH, request), request);
        assert_eq!(answer_time(FREE_PATH, request), request);
    }

    fn read(text: &str) -> Result<Request, Answer> {
        read_request(&mut std::io::Cursor::new(text.as_bytes().to_vec()))
    }

    #[test]
    fn one_post_with_a_sized_body_is_read_whole() {
        let r = read(
            "POST /v1/identity?name=photos HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        )
        .unwrap();
        assert_eq!(r.name.as_deref(), Some("photos"));
        assert_eq!(r.kind, Kind::Identity);
        assert_eq!(r.body, b"hello");
        let r =
            read("POST /v1/gateway?name=photos HTTP/1.1\r\nContent-Length: 3\r\n\r\npw!").unwrap();
        assert_eq!((r.kind, r.name.as_deref()), (Kind::Gateway, Some("photos")));
        assert!(
            !format!("{r:?}").contains("pw!"),
            "a password is never in a log"
        );
        for own in ["/v1/identity", "/v1/identity?name=", "/v1/identity?"] {
            let r = read(&format!("POST {own} HTTP/1.1\r\ncontent-length: 0\r\n\r\n")).unwrap();
            assert_eq!(r.name, None, "{own}");
        }
    }

    #[test]
    fn anything_else_is_answered_with_its_status_and_one_line() {
        let status = |text: &str| read(text).unwrap_err().status;
        assert_eq!(status("GET /v1/identity HTTP/1.1\r\n\r\n"), 405);
        assert_eq!(status("POST /v1/other HTTP/1.1\r\n\r\n"), 404);
        assert_eq!(status("GET /v1/gateway?name=a HTTP/1.1\r\n\r\n"), 405);
        // A node's own identity has no gateway password.
        assert_eq!(
            status("POST /v1/gateway HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            400
        );
        assert_eq!(status("POST /v1/identity HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(
            status("POST /v1/identity?name=a&name=b HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST /v1/identity?user=root HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST /v1/identity HTTP/1.1\r\nContent-Length: 99999\r\n\r\n"),
            413
        );
        assert_eq!(
            status("POST /v1/identity HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST /v1/identity HTTP/1.1\r\nContent-Length: 9\r\n\r\nshort"),
            400
        );
        assert_eq!(
            status("POST /v1/identity HTTP/1.1\r\nContent-Length: 1\r\n\r\ntoo long"),
            400
        );
        assert_eq!(status(&"x".repeat(HEAD_BYTES * 2)), 400);
        let answer = response(403, "refused: no\n");
        let text = String::from_utf8(answer).unwrap();
        assert!(text.starts_with("HTTP/1.1 403 Forbidden\r\n"));
        assert!(text.ends_with("Content-Length: 12\r\nConnection: close\r\n\r\nrefused: no\n"));
    }
}
