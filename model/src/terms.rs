//! The shape every duration in zone-etcd's files shares: whole numbers, each followed by
//! its unit (`1h30m`, `500ms`, `7d`). Which units there are, and in which order, is the
//! reader's: `[backup]`'s durations (`backup::duration`) and etcd's compaction retention
//! (`settings::retention`) read different ones.

/// `text` as (number, unit) terms, the unit being the letters after each number;
/// `None` when a term lacks its number or its unit, or a number overflows.
pub fn terms(text: &str) -> Option<Vec<(u64, &str)>> {
    let mut found = Vec::new();
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let letters = rest[digits..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        if digits == 0 || letters == 0 {
            return None;
        }
        let number = rest[..digits].parse().ok()?;
        found.push((number, &rest[digits..digits + letters]));
        rest = &rest[digits + letters..];
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::terms;

    #[test]
    fn numbers_each_with_its_unit() {
        assert_eq!(terms("1h30m"), Some(vec![(1, "h"), (30, "m")]));
        assert_eq!(terms("500ms"), Some(vec![(500, "ms")]));
        for bad in [
            "",
            "h",
            "5",
            "1.5h",
            "-1h",
            "1 h",
            "1h5",
            "99999999999999999999s",
        ] {
            assert_eq!(terms(bad), None, "{bad}");
        }
    }
}
