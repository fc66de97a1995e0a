//! An S3-compatible store (AWS, SeaweedFS, MinIO, Garage, a NAS): path-style URLs,
//! requests presigned by rusty-s3 and sent by ureq.
//!
//! Invariants:
//! - object `name` is stored under the key `PREFIX/name` (`name` alone with no prefix);
//!   a listing strips the prefix again, so names are the same on every target;
//! - every request has timeouts and is retried with backoff ([`retry::Policy`]);
//! - a file at least a part long is uploaded in parts (create, parts, complete; aborted on
//!   failure), so the object appears whole or not at all, with memory bounded by a part;
//! - `ca_file`, when set, holds the only roots the store's certificate may chain to;
//! - nothing here prints a presigned URL (its query holds the signature) or a key.

mod multipart;
mod request;
mod store;

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rusty_s3::actions::ListObjectsV2;

use super::object::{
    check_name, check_prefix, write_local_atomic, ObjectInfo, Target, TargetError, Tracked,
};
use super::retry::{self, Failure};
pub use store::{
    aws_endpoint, Options, S3Target, Store, DEFAULT_PART_SIZE, DEFAULT_REGION, MIN_PART_SIZE,
};
use store::{join_key, MAX_XML_BYTES};

impl S3Target {
    /// The request [`Target::put`] sends for `data`, signed: its URL and the headers to
    /// send with it. For tests that cut a PUT off midway, as a killed writer does.
    pub fn put_request(&self, name: &str, data: &[u8]) -> Result<request::Signed, TargetError> {
        check_name(&self.url, name)?;
        let key = self.key(name);
        let action = self.bucket.put_object(Some(&self.credentials), &key);
        Ok(self.sign(action, data, data.len() as u64))
    }
}

impl Target for S3Target {
    fn url(&self) -> &str {
        &self.url
    }

    fn put(&self, name: &str, data: &[u8]) -> Result<(), TargetError> {
        check_name(&self.url, name)?;
        let key = self.key(name);
        self.options
            .retry
            .run(|| {
                let action = self.bucket.put_object(Some(&self.credentials), &key);
                self.send(action, data, data.len() as u64, false).map(drop)
            })
            .map_err(|f| self.error(name, f))
    }

    fn put_file(&self, name: &str, path: &Path) -> Result<(), TargetError> {
        check_name(&self.url, name)?;
        let local = |e: std::io::Error| {
            self.error(
                name,
                Failure::fatal(format!("cannot read {}: {e}", path.display())),
            )
        };
        let mut file = File::open(path).map_err(local)?;
        let len = file.metadata().map_err(local)?.len();
        if len < self.options.part_size {
            let mut data = Vec::with_capacity(len as usize);
            file.read_to_end(&mut data).map_err(local)?;
            return self.put(name, &data);
        }
        self.put_multipart(&self.key(name), &mut file, len)
            .map_err(|f| self.error(name, f))
    }

    fn get(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, TargetError> {
        check_name(&self.url, name)?;
        let key = self.key(name);
        self.options
            .retry
            .run(|| {
                let action = self.bucket.get_object(Some(&self.credentials), &key);
                let Some(response) = self.send(action, &[], limit, true)? else {
                    return Ok(None);
                };
                let too_big = || {
                    let problem = format!("the object is larger than the {limit} bytes expected");
                    Failure::fatal(problem)
                };
                let length = response.headers().get("content-length");
                if length.and_then(|v| v.to_str().ok()?.parse::<u64>().ok()) > Some(limit) {
                    return Err(too_big());
                }
                // ureq's limit refuses a body of exactly the limit: allow one byte more.
                let body = response.into_body().into_with_config();
                match body.limit(limit.saturating_add(1)).read_to_vec() {
                    Ok(bytes) if bytes.len() as u64 > limit => Err(too_big()),
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(ureq::Error::BodyExceedsLimit(_)) => Err(too_big()),
                    Err(e) => Err(retry::transport(&e)),
                }
            })
            .map_err(|f| self.error(name, f))
    }

    fn get_to_file(&self, name: &str, path: &Path) -> Result<bool, TargetError> {
        check_name(&self.url, name)?;
        let key = self.key(name);
        self.options
            .retry
            .run(|| {
                let head = self.bucket.head_object(Some(&self.credentials), &key);
                // The size sets the GET's timeout. A HEAD answer has no body to tell a
                // missing object from a missing bucket: the GET after it does.
                let size = self.send(head, &[], 0, true)?.and_then(|found| {
                    let length = found.headers().get("content-length");
                    length.and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                });
                let size = size.unwrap_or(0);
                let action = self.bucket.get_object(Some(&self.credentials), &key);
                let Some(response) = self.send(action, &[], size, true)? else {
                    return Ok(false);
                };
                let mut body = Tracked::new(response.into_body().into_reader());
                match write_local_atomic(path, &mut body) {
                    Ok(_) => Ok(true),
                    Err(e) if body.failed => {
                        Err(Failure::retry(format!("download broke off: {e}")))
                    }
                    Err(e) => Err(Failure::fatal(format!(
                        "cannot write {}: {e}",
                        path.display()
                    ))),
                }
            })
            .map_err(|f| self.error(name, f))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, TargetError> {
        check_prefix(&self.url, prefix)?;
        let object = format!("list {prefix:?}");
        let full = format!("{}{prefix}", join_key(&self.prefix, ""));
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .options
                .retry
                .run(|| {
                    let mut action = self.bucket.list_objects_v2(Some(&self.credentials));
                    action.with_prefix(full.as_str());
                    action.with_max_keys(usize::from(self.options.list_page));
                    if let Some(token) = &token {
                        action.with_continuation_token(token.as_str());
                    }
                    let response = self.send(action, &[], MAX_XML_BYTES, false)?;
                    let xml = Self::read_xml(response.expect("not absent"))?;
                    ListObjectsV2::parse_response(&xml)
                        .map_err(|e| Failure::fatal(format!("the listing is not S3 XML: {e}")))
                })
                .map_err(|f| self.error(&object, f))?;
            let strip = full.len() - prefix.len();
            for content in page.contents {
                // A key ending in "/" is a folder marker some stores list, not an object.
                if content.key.len() > strip && !content.key.ends_with('/') {
                    found.push(ObjectInfo {
                        name: content.key[strip..].to_string(),
                        size: content.size.unwrap_or(0),
                    });
                }
            }
            match page.next_continuation_token {
                Some(next) if token.as_ref() != Some(&next) => token = Some(next),
                Some(_) => {
                    let f = Failure::fatal("the store repeated a continuation token");
                    return Err(self.error(&object, f));
                }
                None => break,
            }
        }
        found.sort();
        Ok(found)
    }

    fn delete(&self, name: &str) -> Result<(), TargetError> {
        check_name(&self.url, name)?;
        let key = self.key(name);
        self.options
            .retry
            .run(|| {
                let action = self.bucket.delete_object(Some(&self.credentials), &key);
                self.send(action, &[], 0, true).map(drop)
            })
            .map_err(|f| self.error(name, f))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::credentials::Credentials;
    use super::*;
    use rusty_s3::S3Action;

    fn target(prefix: &str) -> S3Target {
        let creds = Credentials {
            access_key: "AKIDTEST".into(),
            secret_key: "secret".into(),
            session_token: None,
        };
        let store = Store {
            bucket: "zone-backups",
            prefix,
            endpoint: "http://127.0.0.1:8333/",
            region: DEFAULT_REGION,
            ca_file: None,
        };
        S3Target::new("s3://zone-backups/p", &store, creds, Options::default()).unwrap()
    }

    #[test]
    fn keys_go_under_the_prefix_and_urls_are_path_style() {
        let t = target("zones/example");
        assert_eq!(t.key("full/1.snap.age"), "zones/example/full/1.snap.age");
        assert_eq!(target("").key("full/1"), "full/1");
        let url = t
            .bucket
            .get_object(Some(&t.credentials), &t.key("full/a b+c"))
            .sign(Duration::from_secs(60));
        assert!(
            url.as_str()
                .starts_with("http://127.0.0.1:8333/zone-backups/zones/example/full/a%20b%2Bc?"),
            "{}",
            retry::redact(url.as_str())
        );
        assert_eq!(
            aws_endpoint("eu-west-1"),
            "https://s3.eu-west-1.amazonaws.com"
        );
    }

    #[test]
    fn parts_are_never_below_the_s3_minimum() {
        let creds = Credentials {
            access_key: "a".into(),
            secret_key: "b".into(),
            session_token: Some("t".into()),
        };
        let store = Store {
            bucket: "bkt",
            prefix: "",
            endpoint: "https://s3.example.net",
            region: "r",
            ca_file: None,
        };
        let options = Options {
            part_size: 1,
            ..Options::default()
        };
        let t = S3Target::new("s3://bkt", &store, creds, options).unwrap();
        assert_eq!(t.options.part_size, MIN_PART_SIZE);
    }

    #[test]
    fn a_bad_endpoint_or_ca_file_is_named() {
        let creds = Credentials {
            access_key: "a".into(),
            secret_key: "b".into(),
            session_token: None,
        };
        let mut store = Store {
            bucket: "bkt",
            prefix: "",
            endpoint: "ftp://x",
            region: "r",
            ca_file: None,
        };
        let e = S3Target::new("s3://bkt", &store, creds.clone(), Options::default());
        assert!(e.err().unwrap().to_string().contains("ftp://x"));
        store.endpoint = "https://s3.example.net";
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, "not a certificate").unwrap();
        store.ca_file = Some(&pem);
        let e = S3Target::new("s3://bkt", &store, creds, Options::default());
        let e = e.err().unwrap();
        assert_eq!(e.file_path(), Some(pem.as_path()), "{e}");
    }
}
