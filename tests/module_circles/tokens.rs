//! The tokens of Rust source this checker needs: identifiers, string literals (their
//! text, for `#[path]`), `::` and the punctuation of items and use trees; comments,
//! char literals, lifetimes and numbers are skipped.
//!
//! Invariant: a brace inside a string, a char literal or a comment is no token, so the
//! nesting of modules and items is read right.

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Id(String),
    Str(String),
    Punct(&'static str),
    Other,
}

pub fn tokenize(text: &str) -> Vec<Tok> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let ident = |c: u8| c == b'_' || c.is_ascii_alphanumeric();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if let Some((len, hashes)) = raw_string_start(&b[i..]) {
            let body = i + len;
            let mut close = Vec::from(&b"\""[..]);
            close.extend(std::iter::repeat_n(b'#', hashes));
            let end = find(b, body, &close).unwrap_or(b.len());
            out.push(Tok::Str(
                String::from_utf8_lossy(&b[body..end]).into_owned(),
            ));
            i = (end + close.len()).min(b.len());
        } else if c == b'"' || (c == b'b' && b.get(i + 1) == Some(&b'"')) {
            let start = if c == b'b' { i + 2 } else { i + 1 };
            let mut j = start;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            out.push(Tok::Str(
                String::from_utf8_lossy(&b[start..j.min(b.len())]).into_owned(),
            ));
            i = j + 1;
        } else if c == b'\'' || (c == b'b' && b.get(i + 1) == Some(&b'\'')) {
            // A char literal ('a', '\n', 'é') or a lifetime ('a).
            let start = if c == b'b' { i + 2 } else { i + 1 };
            let char_end = if b.get(start) == Some(&b'\\') {
                find(b, start + 2, b"'")
            } else {
                let len = text[start..].chars().next().map_or(1, char::len_utf8);
                (b.get(start + len) == Some(&b'\'')).then_some(start + len)
            };
            match char_end {
                Some(end) if end - start <= 12 => {
                    out.push(Tok::Other);
                    i = end + 1;
                }
                _ => {
                    i = start;
                    while i < b.len() && ident(b[i]) {
                        i += 1;
                    }
                    out.push(Tok::Other);
                }
            }
        } else if c == b'_' || c.is_ascii_alphabetic() {
            let start = i;
            if b[i..].starts_with(b"r#") {
                i += 2;
            }
            while i < b.len() && ident(b[i]) {
                i += 1;
            }
            let word = text[start..i].trim_start_matches("r#").to_string();
            out.push(Tok::Id(word));
        } else if c.is_ascii_digit() {
            while i < b.len() && (ident(b[i]) || b[i] == b'.') {
                i += 1;
            }
            out.push(Tok::Other);
        } else if b[i..].starts_with(b"::") {
            out.push(Tok::Punct("::"));
            i += 2;
        } else {
            const PUNCT: &[&str] = &["{", "}", ";", ",", "*", "#", "[", "]", "=", "!"];
            let one = &text[i..i + 1];
            out.push(match PUNCT.iter().find(|p| **p == one) {
                Some(p) => Tok::Punct(p),
                None => Tok::Other,
            });
            i += text[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

/// `r"`, `r#"`, `br##"`…: the opening's length and its number of `#`.
fn raw_string_start(b: &[u8]) -> Option<(usize, usize)> {
    let rest = b.strip_prefix(b"b").unwrap_or(b);
    let prefix = b.len() - rest.len();
    let rest = rest.strip_prefix(b"r")?;
    let hashes = rest.iter().take_while(|c| **c == b'#').count();
    (rest.get(hashes) == Some(&b'"')).then_some((prefix + 1 + hashes + 1, hashes))
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    (from..b.len()).find(|&i| b[i..].starts_with(needle))
}
