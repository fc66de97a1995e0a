//! How `undo` prints a key: as UTF-8 when it is, escaped otherwise, on one line.
//!
//! Invariant: the result never holds a control character, so a key cannot break a line
//! of the plan or of an error. Pure.

/// A key as UTF-8 when it is, with control characters escaped; else with every byte
/// outside printable ASCII escaped.
pub fn show_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_string(),
        Ok(text) => text.escape_debug().to_string(),
        Err(_) => key.escape_ascii().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_print_as_text_when_they_are_and_escaped_otherwise() {
        assert_eq!(show_key(b"services/a"), "services/a");
        assert_eq!(show_key("services/é".as_bytes()), "services/é");
        assert_eq!(show_key(b"a\nb"), "a\\nb");
        assert_eq!(show_key(b"a\xffb"), "a\\xffb");
    }
}
