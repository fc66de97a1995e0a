//! Sizes as people write them in zone-etcd's files: `"64 MiB"`, `"512 KiB"`, `"1.5 GiB"`,
//! `"100MB"`, or a bare number of bytes (`"1048576"`, or the TOML integer 1048576).
//!
//! Invariants: binary units (`KiB`, `MiB`, `GiB`, `TiB`, and `Ki`…`Ti`) are powers of 1024 and SI units
//! (`kB`/`KB`, `MB`, `GB`, `TB`) powers of 1000, as their names say; `B` and no unit are
//! bytes; a fraction is allowed with a unit and rounds down to whole bytes; nothing
//! overflows (a size over `u64::MAX` bytes is refused, never wrapped). [`render`] writes
//! the largest binary unit that holds the size exactly, else bytes, and [`parse`] reads
//! back what it wrote.

/// The units a size may carry, and their bytes.
/// (`Ki`, `Mi`, `Gi`, `Ti` as Kubernetes writes them; a bare `K`, `M` or `G` means 1000s
/// to some and 1024s to others, so it is refused.)
const UNITS: [(&str, u64); 14] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("kB", 1_000),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
];

/// The binary units sizes are written back in, the largest first.
const BINARY: [(&str, u64); 4] = [
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
];

/// What a size's value may be, for the one line that refuses it.
pub const SHAPE: &str =
    "a size such as \"64 MiB\", \"512 KiB\" or \"1 GiB\" (or a number of bytes)";

/// The bytes `text` says, or why it says none (the caller names the field).
pub fn parse(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = (&text[..split], text[split..].trim());
    let bad = || format!("{text:?} is not {SHAPE}");
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(bad());
    }
    let scale = match unit {
        "" => 1,
        unit => UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, bytes)| *bytes)
            .ok_or_else(bad)?,
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.contains('.') || (!fraction.is_empty() && scale == 1) {
        return Err(bad());
    }
    let too_large = || format!("{text:?} is more bytes than any disk holds");
    let whole: u64 = whole.parse().map_err(|_| too_large())?;
    let mut bytes = whole.checked_mul(scale).ok_or_else(too_large)?;
    if !fraction.is_empty() {
        // Digits after the point, each a tenth of the last: exact in integers.
        let digits = &fraction[..fraction.len().min(9)];
        let part: u64 = digits.parse().map_err(|_| bad())?;
        let denominator = 10u64.pow(digits.len() as u32);
        let extra = (u128::from(part) * u128::from(scale)) / u128::from(denominator);
        bytes = bytes
            .checked_add(u64::try_from(extra).map_err(|_| too_large())?)
            .ok_or_else(too_large)?;
    }
    Ok(bytes)
}

/// `bytes` as written back: `"64 MiB"` when a binary unit holds it exactly, else the bare
/// number of bytes.
pub fn render(bytes: u64) -> String {
    for (unit, scale) in BINARY {
        if bytes >= scale && bytes.is_multiple_of(scale) {
            return format!("{} {unit}", bytes / scale);
        }
    }
    bytes.to_string()
}

/// `bytes` as people read it in a line: one decimal in the largest binary unit it reaches
/// (`"1.5 GiB"`, `"980 B"`).
pub fn human(bytes: u64) -> String {
    for (unit, scale) in BINARY {
        if bytes >= scale {
            let tenths = (u128::from(bytes) * 10 / u128::from(scale)) as u64;
            return if tenths.is_multiple_of(10) {
                format!("{} {unit}", tenths / 10)
            } else {
                format!("{}.{} {unit}", tenths / 10, tenths % 10)
            };
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_written_by_people() {
        for (text, bytes) in [
            ("64 MiB", 64 << 20),
            ("64MiB", 64 << 20),
            ("512 KiB", 512 << 10),
            ("1 GiB", 1 << 30),
            ("1.5 GiB", 3 << 29),
            ("2 TiB", 2 << 40),
            ("100MB", 100_000_000),
            ("100 kB", 100_000),
            ("100 KB", 100_000),
            ("16Mi", 16 << 20),
            ("1048576", 1 << 20),
            ("0", 0),
            ("  7 B ", 7),
            ("0.5 KiB", 512),
            ("0.001 KiB", 1),
        ] {
            assert_eq!(parse(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn what_is_no_size_is_refused_with_its_shape() {
        for text in [
            "",
            "MiB",
            "64 mib",
            "64 MiBs",
            "-1 MiB",
            "1.5",
            "1.5 B",
            ".5 MiB",
            "5. MiB",
            "1.2.3 MiB",
            "64 Mi B",
            "ten MiB",
            "16M",
            "1 G",
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains("is not a size such as"), "{text}: {err}");
        }
        let err = parse("99999999999 TiB").unwrap_err();
        assert!(err.contains("more bytes than any disk holds"), "{err}");
        assert!(parse("18446744073709551616").is_err());
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        for bytes in [
            0,
            1,
            1000,
            1024,
            1536,
            64 << 20,
            (64 << 20) + 1,
            3 << 29,
            5 << 40,
        ] {
            assert_eq!(parse(&render(bytes)), Ok(bytes), "{}", render(bytes));
        }
        assert_eq!(render(64 << 20), "64 MiB");
        assert_eq!(render(3 << 29), "1536 MiB");
        assert_eq!(render(1000), "1000");
        assert_eq!(human(3 << 29), "1.5 GiB");
        assert_eq!(human(980), "980 B");
        assert_eq!(human(64 << 20), "64 MiB");
    }
}
