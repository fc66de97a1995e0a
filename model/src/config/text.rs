//! A config's text: read bounded from a regular file, its format detected (TOML, or the
//! seed's JSON), deserialised with parser errors turned into one located line naming the
//! key; and the DNS-name rule every name in a config follows.
//!
//! Invariants: a config is read whole and at most zone-io's small-file bound; a parser
//! error is one line with the file, the key (when the line names one), the line and
//! column, and the fix; a name that is not a lowercase DNS name is refused saying why.

use std::path::Path;

use zone_io::Error;

/// The text formats a config may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Json,
}

impl Format {
    /// JSON by extension or by a leading `{`; TOML otherwise.
    pub fn detect(path: &Path, text: &str) -> Format {
        let json_ext = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if json_ext || text.trim_start().starts_with('{') {
            Format::Json
        } else {
            Format::Toml
        }
    }
}

/// Deserialises `text` in its detected format, turning parser errors into one located line.
/// Keys `T` does not know are skipped: a file whose unknown keys matter is read with
/// [`parse_reporting`].
pub fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, Error> {
    parse_reporting(path, text, &[]).map(|(value, _)| value)
}

/// Like [`parse`], and the path of every key `T` does not know but `accepted` (see
/// [`super::ignored`]): for the caller to warn about, never to refuse.
pub fn parse_reporting<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
    accepted: &[&str],
) -> Result<(T, Vec<String>), Error> {
    match Format::detect(path, text) {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            super::ignored::read(&mut de, accepted)
                .and_then(|read| de.end().map(|()| read))
                .map_err(|e| {
                    let error = Error::new(format!(
                        "line {}, column {}: invalid JSON: {}",
                        e.line(),
                        e.column(),
                        strip_position(&e.to_string())
                    ));
                    with_key_at(error, text, e.line())
                        .file(path)
                        .fix("correct the JSON syntax or value at that position")
                })
        }
        Format::Toml => toml::Deserializer::parse(text)
            .and_then(|de| super::ignored::read(de, accepted))
            .map_err(|e| {
                let (line, column) = e
                    .span()
                    .map(|span| line_column(text, span.start))
                    .unwrap_or((1, 1));
                let error = Error::new(format!(
                    "line {line}, column {column}: invalid TOML: {}",
                    e.message().trim()
                ));
                with_key_at(error, text, line)
                    .file(path)
                    .fix("correct the TOML syntax or value at that position")
            }),
    }
}

/// Reads a config file as UTF-8 text, bounded in size (configs are small; a huge file is
/// a mistake, not a config) and only from a regular file.
pub fn read_config(path: &Path) -> Result<String, Error> {
    zone_io::read_text(path)
}

/// Names the field of a parser error by the key its line sets (`key = ...` in TOML,
/// `"key": ...` in JSON): the parsers give a position, the operator wants a name.
fn with_key_at(error: Error, text: &str, line: usize) -> Error {
    let Some(source) = text.lines().nth(line.saturating_sub(1)) else {
        return error;
    };
    let Some((key, _)) = source.split_once(['=', ':']) else {
        return error;
    };
    let key = key.trim().trim_matches('"');
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if bare {
        error.field(key)
    } else {
        error
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// serde_json appends " at line L column C"; we put the position first instead.
fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => message,
    }
}

/// Checks a DNS name as used for zones and nodes: lowercase letters, digits and hyphens in
/// dot-separated labels of 1 to 63 characters, 253 at most in all.
pub fn check_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > 253 {
        return Err(format!("{name:?} is longer than 253 characters"));
    }
    if name.ends_with('.') {
        return Err(format!(
            "{name:?} ends with a dot; write it without the final dot"
        ));
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "{name:?} has uppercase letters; write it in lowercase"
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("{name:?} has an empty label (two dots in a row)"));
        }
        if label.len() > 63 {
            return Err(format!("{name:?} has a label longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(format!(
                "{name:?} is not a DNS name: {c:?} is not allowed (use a-z, 0-9, '-' and '.')"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("{name:?} has a label that starts or ends with '-'"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(check_dns_name("node1.example.zone").is_ok());
        assert!(check_dns_name("n").is_ok());
        for bad in [
            "",
            "Node1.zone",
            "node_1.zone",
            "a..b",
            "-a.b",
            "a.b.",
            "a b",
        ] {
            assert!(check_dns_name(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(check_dns_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn toml_errors_carry_line_and_column() {
        let err = parse::<toml::Value>(Path::new("z.toml"), "a = 1\nb = = 2\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("z.toml: b: line 2, column"), "{text}");
        assert!(!text.contains('\n'));
    }
}
