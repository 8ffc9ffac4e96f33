//! Golden tests of `lyncd signin`'s human output (the table on stdout) for a success and two
//! failures. Timings, ports, dates, serials and other run-specific values are normalised; the
//! rest — step order, titles, wording, diagnoses — must match the files in tests/golden/.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test -p lyncd --test golden` and review the diff.

mod common;

use common::lab::{Lab, PASSWORD, text};

/// Numbers that are part of the wording, not of the run.
const KEEP: [&str; 8] = ["1.0", "1.1", "1.2", "1.3", "2010", "2013", "2015", "2016"];

/// Replaces every run of hex-ish characters that contains a digit by `#`, and the random
/// endpoint id in the GRUU by `<epid>`.
fn normalise(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let hexish = |c: char| c.is_ascii_hexdigit() || matches!(c, ':' | '.' | '-' | '+');
    while i < chars.len() {
        if chars[i].is_ascii_digit() || (hexish(chars[i]) && chars[i].is_ascii_alphanumeric()) {
            let start = i;
            while i < chars.len() && hexish(chars[i]) {
                i += 1;
            }
            let run: String = chars[start..i].iter().collect();
            // Keep the run's trailing punctuation (sentence ends, "1." list numbers read fine).
            let trimmed = run.trim_end_matches(['.', ':', '-', '+']);
            if trimmed.chars().any(|c| c.is_ascii_digit()) {
                // Only whole tokens: a run glued to letters (e.g. "lyncfe") is a word part.
                // The time of an ISO date follows its "T".
                let after_date_t =
                    start > 1 && chars[start - 1] == 'T' && chars[start - 2].is_ascii_digit();
                let glued_before =
                    start > 0 && chars[start - 1].is_ascii_alphanumeric() && !after_date_t;
                // Fixed facts in the wording (protocol versions, product years) stay.
                let fixed = KEEP.contains(&trimmed);
                if glued_before || fixed {
                    out.push_str(&run);
                } else {
                    out.push('#');
                    out.push_str(&run[trimmed.len()..]);
                }
            } else {
                out.push_str(&run);
            }
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    let mut lines: Vec<String> = Vec::new();
    for line in out.lines() {
        let line = match line.find("opaque=user:epid:") {
            Some(at) => {
                let rest = &line[at + "opaque=user:epid:".len()..];
                let end = rest.find(';').unwrap_or(rest.len());
                format!("{}opaque=user:epid:<epid>{}", &line[..at], &rest[end..])
            }
            None => line.to_string(),
        };
        lines.push(line.trim_end().to_string());
    }
    lines.join("\n") + "\n"
}

fn check(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"));
    let actual = normalise(actual);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run UPDATE_GOLDEN=1 cargo test -p lyncd --test golden",
            path.display()
        )
    });
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(5)
            .map(|(i, (a, b))| format!("line {}:\n  golden: {a}\n  actual: {b}", i + 1))
            .collect();
        panic!(
            "{name}: the human output changed ({} golden lines, {} actual):\n{}\n--- actual ---\n{actual}",
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn golden_success() {
    let lab = Lab::start("");
    let out = lab.signin_table(&["--sign-out"], PASSWORD);
    assert!(out.status.success(), "{}", text(&out));
    check("success", &String::from_utf8_lossy(&out.stdout));
}

#[test]
fn golden_wrong_password() {
    let lab = Lab::start("");
    let out = lab.signin_table(&[], "wrong password");
    assert_eq!(out.status.code(), Some(15), "{}", text(&out));
    check("wrong-password", &String::from_utf8_lossy(&out.stdout));
}

#[test]
fn golden_expired_certificate() {
    let lab = Lab::start("[faults]\nhttps_certificate = \"expired\"\n");
    let out = lab.signin_table(&[], PASSWORD);
    assert_eq!(out.status.code(), Some(18), "{}", text(&out));
    check("expired-certificate", &String::from_utf8_lossy(&out.stdout));
}

#[test]
fn normalisation_keeps_words_and_hides_run_values() {
    assert_eq!(
        normalise(
            "[ok]   3. Check (12 ms)\n  lyncfe.contoso.com:5061 serial 0a1b2c valid until \
             2026-11-25T10:00:00Z, TLS 1.2.\n"
        ),
        "[ok]   #. Check (# ms)\n  lyncfe.contoso.com:# serial # valid until #T#Z, TLS 1.2.\n"
    );
}
