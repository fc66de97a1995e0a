//! The cross-line rules, seen through the parser as a reader of a history meets them.

use crate::parse::parse;

#[test]
fn one_operation_in_flight_per_client_and_none_after_unknown() {
    let a = r#"{"type":"op","client":1,"op":"put","key":"k","value":"a","call_ns":1,"return_ns":5,"outcome":"ok","revision":2}"#;
    let b = r#"{"type":"op","client":1,"op":"put","key":"k","value":"b","call_ns":4,"return_ns":6,"outcome":"ok","revision":3}"#;
    let e = parse(&format!("{a}\n{b}\n")).unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("in flight"), "{e}");
    let u = r#"{"type":"op","client":1,"op":"put","key":"k","value":"a","call_ns":1,"outcome":"unknown"}"#;
    let c = r#"{"type":"op","client":1,"op":"get","key":"k","call_ns":9,"return_ns":10,"outcome":"failed"}"#;
    let e = parse(&format!("{u}\n{c}\n")).unwrap_err();
    assert!(e.message.contains("new client id"), "{e}");
    let dup = r#"{"type":"op","client":2,"op":"put","key":"k","value":"a","call_ns":1,"return_ns":5,"outcome":"failed"}"#;
    let e = parse(&format!("{a}\n{dup}\n")).unwrap_err();
    assert!(e.message.contains("unique"), "{e}");
}

#[test]
fn a_watcher_keeps_what_it_watches() {
    let w1 =
        r#"{"type":"watch","watcher":1,"key":"k","start_revision":1,"time_ns":5,"revision":2}"#;
    let w2 = r#"{"type":"watch","watcher":1,"key":"k","prefix":true,"start_revision":1,"time_ns":6,"revision":2}"#;
    let e = parse(&format!("{w1}\n{w2}\n")).unwrap_err();
    assert_eq!(e.line, 2);
    let w3 =
        r#"{"type":"watch","watcher":1,"key":"k","start_revision":1,"time_ns":4,"revision":2}"#;
    assert!(parse(&format!("{w1}\n{w3}\n"))
        .unwrap_err()
        .message
        .contains("goes back"));
}
