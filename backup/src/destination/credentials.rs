//! The node-local S3 credentials, taken the way AWS tools take them (never from the zone
//! file): `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`), else the
//! shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`)
//! with the profile `AWS_PROFILE` (default `default`).
//!
//! Invariants:
//! - a credentials file that group or others may read or write is refused, naming the
//!   `chmod 600` that fixes it; the file is read bounded (it is a few lines);
//! - no error, `Debug` or log line ever holds a key: errors name variables, files,
//!   profiles and line numbers only;
//! - [`parse_profile`] is pure; [`resolve`] takes the environment as a function, so both
//!   are tested without touching the process environment.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zone_io::Error;
use zone_io::{read_small_file, Links};

/// An access key, its secret and an optional session token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

/// The credentials in the process environment (see the module doc).
pub fn from_env() -> Result<Credentials, Error> {
    resolve(&|key| std::env::var(key).ok())
}

/// The credentials `env` gives: the variables first, else the shared credentials file.
pub fn resolve(env: &dyn Fn(&str) -> Option<String>) -> Result<Credentials, Error> {
    let var = |key: &str| env(key).filter(|v| !v.trim().is_empty());
    match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key), Some(secret_key)) => {
            return Ok(Credentials {
                access_key: access_key.trim().to_string(),
                secret_key: secret_key.trim().to_string(),
                session_token: var("AWS_SESSION_TOKEN").map(|t| t.trim().to_string()),
            })
        }
        (Some(_), None) => return Err(half_set("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")),
        (None, Some(_)) => return Err(half_set("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")),
        (None, None) => {}
    }
    let (path, named) = match var("AWS_SHARED_CREDENTIALS_FILE") {
        Some(file) => (PathBuf::from(file), true),
        None => {
            let Some(home) = var("HOME") else {
                return Err(Error::new(
                    "no S3 credentials: AWS_ACCESS_KEY_ID is not set, and without HOME there is no ~/.aws/credentials",
                )
                .fix("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_SHARED_CREDENTIALS_FILE"));
            };
            (Path::new(&home).join(".aws").join("credentials"), false)
        }
    };
    let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let profile = profile.trim();
    let meta = std::fs::metadata(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            let why = if named {
                "the credentials file AWS_SHARED_CREDENTIALS_FILE names does not exist"
            } else {
                "no S3 credentials: AWS_ACCESS_KEY_ID is not set and this credentials file does not exist"
            };
            Error::new(why).file(&path).fix(
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write the file (chmod 600) with an [default] profile",
            )
        } else {
            Error::io("read", &path, &e)
        }
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::new(format!(
            "the credentials file is {mode:04o}: readable or writable by others, who could take the store's keys"
        ))
        .file(&path)
        .fix(format!("chmod 600 {}", path.display())));
    }
    let bytes = read_small_file(&path, Links::Follow)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::new("is not UTF-8 text")
            .file(&path)
            .fix("write it as an INI file")
    })?;
    match parse_profile(&text, profile) {
        Ok(Some(credentials)) => Ok(credentials),
        Ok(None) => Err(Error::new(format!("there is no profile [{profile}]"))
            .file(&path)
            .fix("add the profile, or set AWS_PROFILE to one the file has")),
        Err(problem) => Err(Error::new(problem)
            .file(&path)
            .field(format!("[{profile}]"))
            .fix(
                "write aws_access_key_id = ... and aws_secret_access_key = ... under the profile",
            )),
    }
}

fn half_set(set: &str, unset: &str) -> Error {
    Error::new(format!("{set} is set but {unset} is not"))
        .field(unset)
        .fix(format!(
            "set both {set} and {unset}, or neither (to use the shared credentials file)"
        ))
}

/// The credentials of `profile` in an AWS shared credentials file (INI): `None` if the
/// file has no such section, an error naming the line or key that is wrong. Sections are
/// `[name]` (`[profile name]` is read too); `#` and `;` start comments; keys are
/// `aws_access_key_id`, `aws_secret_access_key` and `aws_session_token`, others ignored.
pub fn parse_profile(text: &str, profile: &str) -> Result<Option<Credentials>, String> {
    let mut in_profile = false;
    let mut found = false;
    let (mut access_key, mut secret_key, mut session_token) = (None, None, None);
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            let Some(name) = section.strip_suffix(']') else {
                return Err(format!(
                    "line {}: a section header without \"]\"",
                    index + 1
                ));
            };
            let name = name.trim();
            let name = name.strip_prefix("profile ").map_or(name, str::trim);
            in_profile = name == profile;
            found |= in_profile;
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "line {}: neither [section] nor key = value",
                index + 1
            ));
        };
        if !in_profile {
            continue;
        }
        let value = Some(value.trim().to_string()).filter(|v| !v.is_empty());
        match key.trim().to_ascii_lowercase().as_str() {
            "aws_access_key_id" => access_key = value,
            "aws_secret_access_key" => secret_key = value,
            "aws_session_token" => session_token = value,
            _ => {}
        }
    }
    if !found {
        return Ok(None);
    }
    match (access_key, secret_key) {
        (Some(access_key), Some(secret_key)) => Ok(Some(Credentials {
            access_key,
            secret_key,
            session_token,
        })),
        (None, _) => Err("aws_access_key_id is missing or empty".into()),
        (_, None) => Err("aws_secret_access_key is missing or empty".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const FILE: &str = "\
# the store on the NAS
[default]
aws_access_key_id = AKIDEFAULT
aws_secret_access_key = s3cr3t/with=equals

[profile backup]
; a comment
AWS_ACCESS_KEY_ID=AKIBACKUP
aws_secret_access_key=other
aws_session_token = tok
region = eu-west-1

[broken]
aws_access_key_id = AKIBROKEN
";

    #[test]
    fn profiles_are_read_as_aws_tools_read_them() {
        let d = parse_profile(FILE, "default").unwrap().unwrap();
        assert_eq!(d.access_key, "AKIDEFAULT");
        assert_eq!(d.secret_key, "s3cr3t/with=equals");
        assert_eq!(d.session_token, None);
        let b = parse_profile(FILE, "backup").unwrap().unwrap();
        assert_eq!(
            (b.access_key.as_str(), b.secret_key.as_str()),
            ("AKIBACKUP", "other")
        );
        assert_eq!(b.session_token.as_deref(), Some("tok"));
        assert_eq!(parse_profile(FILE, "nope"), Ok(None));
        let broken = parse_profile(FILE, "broken").unwrap_err();
        assert!(broken.contains("aws_secret_access_key"), "{broken}");
        assert!(parse_profile("[default\nx=y", "default")
            .unwrap_err()
            .contains("line 1"));
        let garbage = parse_profile("[default]\nAKIDLEAK\n", "default").unwrap_err();
        assert!(
            garbage.contains("line 2") && !garbage.contains("AKID"),
            "{garbage}"
        );
    }

    #[test]
    fn nothing_secret_is_printed() {
        let c = parse_profile(FILE, "default").unwrap().unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("AKID") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn the_variables_come_first_and_must_come_in_pairs() {
        let c = resolve(&env(&[
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "sec"),
            ("AWS_SESSION_TOKEN", "tok"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
        ]))
        .unwrap();
        assert_eq!(c.session_token.as_deref(), Some("tok"));
        let half = resolve(&env(&[("AWS_ACCESS_KEY_ID", "AKID")])).unwrap_err();
        assert_eq!(half.field_name(), Some("AWS_SECRET_ACCESS_KEY"));
        let half = resolve(&env(&[("AWS_SECRET_ACCESS_KEY", "sec")])).unwrap_err();
        assert_eq!(half.field_name(), Some("AWS_ACCESS_KEY_ID"));
        assert!(!half.to_string().contains("sec\""));
    }

    #[test]
    fn the_file_must_be_private_and_hold_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(&path, FILE).unwrap();
        let file = path.to_str().unwrap();
        let vars = |profile: &str| {
            env(&[
                ("AWS_SHARED_CREDENTIALS_FILE", file),
                ("AWS_PROFILE", profile),
            ])
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = resolve(&vars("default")).unwrap_err().to_string();
        assert!(
            open.contains(&format!("chmod 600 {file}")) && open.contains("0644"),
            "{open}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(resolve(&vars("backup")).unwrap().access_key, "AKIBACKUP");
        let missing = resolve(&vars("nope")).unwrap_err().to_string();
        assert!(
            missing.contains("[nope]") && missing.contains(file),
            "{missing}"
        );
        let home = env(&[("HOME", dir.path().to_str().unwrap())]);
        let absent = resolve(&home).unwrap_err().to_string();
        assert!(absent.contains(".aws/credentials"), "{absent}");
        let default_home = dir.path().join(".aws");
        std::fs::create_dir(&default_home).unwrap();
        std::fs::copy(&path, default_home.join("credentials")).unwrap();
        assert_eq!(resolve(&home).unwrap().access_key, "AKIDEFAULT");
    }
}
