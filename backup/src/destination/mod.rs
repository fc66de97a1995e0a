//! Where backups go: S3-compatible object storage and plain directories, behind one
//! [`Target`] trait, so the chain code never knows which it writes to.
//!
//! - [`mod@file`]: a directory (a mounted USB disk, a NAS): files under it, 0600 in 0700
//!   directories, every write atomic and durable, never a step through a symbolic link;
//! - [`s3`]: any S3-compatible store, path-style, requests presigned by rusty-s3 and sent
//!   by ureq, with timeouts, retries and multipart uploads;
//! - [`object`]: what every target is: the [`Target`] trait, its objects, its errors and
//!   the rules of object names;
//! - [`credentials`]: the node-local S3 keys, taken the way AWS tools take them;
//! - [`counting`]: a target that counts the requests made to another (tests, benchmarks);
//! - [`retry`]: timeouts, the backoff schedule, and which failures are worth retrying;
//! - [`tls`]: what failed in TLS inside an HTTPS client's error (the app's other HTTPS
//!   clients read theirs with it too).
//!
//! Invariants every target keeps:
//! - object names are relative keys (`full/….db.age`); [`check_name`] refuses `..`,
//!   hidden segments, empty segments and a leading `/`, so no name reaches outside the
//!   target;
//! - `put` and `put_file` are all-or-nothing: `list` and `get` never see a partial object;
//! - an error is one line naming the target URL and the object, and says whether trying
//!   again later may help ([`TargetError::retryable`]); it never holds a credential or a
//!   presigned URL's signature.

pub mod counting;
pub mod credentials;
pub mod file;
pub mod object;
pub mod retry;
pub mod s3;
pub mod tls;

use std::path::Path;

use zone_io::Error;

pub use object::{check_name, check_prefix, ObjectInfo, Target, TargetError};
use zone_model::backup::settings::{self, Location, TargetSpec};

/// The target a `[[backup.target]]` names. A relative `ca_file` is relative to `base_dir`
/// (the node config's directory); S3 credentials come from the environment.
pub fn open(spec: &TargetSpec, base_dir: &Path) -> Result<Box<dyn Target>, Error> {
    match &spec.location {
        Location::Dir(root) => Ok(Box::new(file::DirTarget::new(&spec.url, root))),
        Location::S3 { bucket, prefix } => {
            let region = spec.region.as_deref().unwrap_or(s3::DEFAULT_REGION);
            let endpoint = match &spec.endpoint {
                Some(endpoint) => endpoint.clone(),
                None => s3::aws_endpoint(region),
            };
            let ca_file = spec.ca_file.as_ref().map(|f| base_dir.join(f));
            let credentials = credentials::from_env()?;
            let store = s3::S3Target::new(
                &spec.url,
                &s3::Store {
                    bucket,
                    prefix,
                    endpoint: &endpoint,
                    region,
                    ca_file: ca_file.as_deref(),
                },
                credentials,
                s3::Options::default(),
            )?;
            Ok(Box::new(store))
        }
    }
}

/// The target at `url` on the owner's machine, where no zone file is at hand: the
/// endpoint and region are the arguments, else `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`
/// and `AWS_REGION` (then `AWS_DEFAULT_REGION`), as AWS tools read them.
pub fn open_url(
    url: &str,
    endpoint: Option<&str>,
    region: Option<&str>,
    ca_file: Option<&Path>,
) -> Result<Box<dyn Target>, Error> {
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
    let location = settings::parse_location(url).map_err(|e| e.field("--from"))?;
    let (bucket, prefix) = match location {
        Location::Dir(root) => {
            if endpoint.is_some() || region.is_some() || ca_file.is_some() {
                return Err(
                    Error::new("--endpoint, --region and --ca-file are for s3:// targets")
                        .field("--from")
                        .fix("leave them out for a file:// target"),
                );
            }
            return Ok(Box::new(file::DirTarget::new(url, &root)));
        }
        Location::S3 { bucket, prefix } => (bucket, prefix),
    };
    let region = match region {
        Some(r) => r.to_string(),
        None => env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| s3::DEFAULT_REGION.to_string()),
    };
    let (endpoint, from) = match endpoint {
        Some(e) => (e.to_string(), "--endpoint"),
        None => match env("AWS_ENDPOINT_URL_S3") {
            Some(e) => (e, "AWS_ENDPOINT_URL_S3"),
            None => match env("AWS_ENDPOINT_URL") {
                Some(e) => (e, "AWS_ENDPOINT_URL"),
                None => (s3::aws_endpoint(&region), "--endpoint"),
            },
        },
    };
    let endpoint = endpoint.trim().trim_end_matches('/').to_string();
    settings::check_endpoint(&endpoint).map_err(|e| e.field(from))?;
    let credentials = credentials::from_env()?;
    let store = s3::S3Target::new(
        url,
        &s3::Store {
            bucket: &bucket,
            prefix: &prefix,
            endpoint: &endpoint,
            region: &region,
            ca_file,
        },
        credentials,
        s3::Options::default(),
    )?;
    Ok(Box::new(store))
}
