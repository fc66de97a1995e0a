//! Prometheus' text exposition format 0.0.4, as every `--format prometheus` of zone-etcd
//! writes it: gauge families with `# HELP` and `# TYPE` lines, label values and help texts
//! escaped as the format requires (its tests are the check metrics'). `check` and
//! `backup status` write with it.

/// One gauge family: HELP, TYPE, then its samples, each `(labels, value)`.
pub fn family<V: std::fmt::Display>(
    out: &mut String,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (String, V)>,
) {
    out.push_str(&format!("# HELP {name} {}\n", escape_help(help)));
    out.push_str(&format!("# TYPE {name} gauge\n"));
    for (labels, value) in samples {
        out.push_str(&format!("{name}{{{labels}}} {value}\n"));
    }
}

/// `name="value",...` with each value escaped.
pub fn labels(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", escape_label(value)))
        .collect::<Vec<_>>()
        .join(",")
}

/// A label value as the format requires: backslash, double quote and line feed escaped.
pub fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A HELP text: backslash and line feed escaped.
pub fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}
