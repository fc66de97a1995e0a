//! What failed in TLS inside an HTTPS client's (ureq's) error: the stores' retries read it
//! (an untrusted certificate stays so on a retry), and so do the app's other HTTPS clients
//! (the nameservice's lookup, the identity endpoint's client). Pure: it only types an
//! error it is given.

/// rustls' own error inside a failed request, if TLS failed.
pub fn rustls_error(e: &ureq::Error) -> Option<&rustls::Error> {
    match e {
        ureq::Error::Rustls(tls) => Some(tls),
        ureq::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    }
}

/// What failed in TLS, said as a line, if TLS failed.
pub fn tls_failure(e: &ureq::Error) -> Option<String> {
    match e {
        ureq::Error::Tls(what) => Some(what.to_string()),
        _ => rustls_error(e).map(ToString::to_string),
    }
}
