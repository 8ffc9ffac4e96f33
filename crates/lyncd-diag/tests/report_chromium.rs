//! The HTML report in a real browser: Debian's headless Chromium renders a realistic report
//! (19 steps over 7 lanes, a warning, a failure with a long explanation); the screenshot must
//! show the diagram in its status colours, the DOM must hold every step, and the page must
//! produce no console message at all (it has no script; a CSP violation would show up here).
//!
//! Needs `apt-get install chromium`; without it the test fails unless LYNCD_SKIP_CHROMIUM=1.
//! Set LYNCD_REPORT_OUT=DIR to keep the rendered HTML and PNG for a look.

#[path = "common/chromium.rs"]
mod chromium;
#[path = "common/sample.rs"]
mod sample;

use std::path::Path;

use lyncd_core::escape_xml_text;
use lyncd_diag::report::{Report, Status, render_html};

/// Renders `report` to `name.html` / `name.png` in a temporary directory (copied to
/// `$LYNCD_REPORT_OUT` if set) and returns what the browser made of it.
fn render_in_chromium(report: &Report, name: &str) -> (String, chromium::Rendered) {
    let html = render_html(report);
    let dir = tempfile::tempdir().unwrap();
    let html_path = dir.path().join(format!("{name}.html"));
    let png_path = dir.path().join(format!("{name}.png"));
    std::fs::write(&html_path, &html).unwrap();
    let rendered = chromium::render(&html_path, &png_path).unwrap_or_else(|e| panic!("{e}"));
    if let Some(out) = std::env::var_os("LYNCD_REPORT_OUT") {
        let out = Path::new(&out);
        std::fs::create_dir_all(out).unwrap();
        std::fs::copy(&html_path, out.join(format!("{name}.html"))).unwrap();
        std::fs::copy(&png_path, out.join(format!("{name}.png"))).unwrap();
    }
    eprintln!(
        "{name}: chromium took {:.2} s for the screenshot and {:.2} s for the DOM",
        rendered.screenshot_time.as_secs_f64(),
        rendered.dom_time.as_secs_f64()
    );
    (html, rendered)
}

/// The SVG's height, to check the whole diagram is inside the screenshot.
fn svg_height(html: &str) -> f64 {
    let svg = &html[html.find("<svg").unwrap()..];
    let at = svg.find(" height=\"").unwrap() + " height=\"".len();
    svg[at..at + svg[at..].find('"').unwrap()].parse().unwrap()
}

fn assert_clean_console(rendered: &chromium::Rendered) {
    assert!(
        rendered.console_errors.is_empty(),
        "script errors: {:#?}",
        rendered.console_errors
    );
    assert!(
        rendered.console.is_empty(),
        "the page has no script, yet wrote to the console: {:#?}",
        rendered.console
    );
}

#[test]
fn failed_signin_report_renders_in_chromium() {
    if !chromium::require_chromium("failed_signin_report_renders_in_chromium") {
        return;
    }
    let mut report = sample::failed_signin();
    // A server-controlled string that would run if it were not escaped (and the CSP did not
    // forbid it): the DOM must keep it as text, and the console stay silent.
    report.facts.push((
        "server header".into(),
        "<script>document.title='pwned'</script><img src=x onerror=console.error(1)>".into(),
    ));
    let (html, rendered) = render_in_chromium(&report, "report-failed");

    assert_eq!(
        (rendered.width, rendered.height),
        (chromium::DEFAULT_WIDTH, chromium::DEFAULT_HEIGHT),
        "the screenshot has the requested size"
    );
    assert!(
        svg_height(&html) + 200.0 < f64::from(rendered.height),
        "the whole diagram is in the screenshot"
    );
    assert_clean_console(&rendered);

    // Not blank: the diagram, the headline and the text make a good share of the page.
    let share = rendered.non_background_share();
    assert!(
        share > 0.04,
        "only {:.1}% of the screenshot is drawn",
        share * 100.0
    );
    assert_eq!(rendered.background, [255, 255, 255], "white page");

    // The status colours are there: the failed arrow, its callout and the headline in red,
    // the ok arrows in green, the warning in amber.
    let red = rendered.count_near(chromium::rgb(Status::Failed.color()), 12);
    let green = rendered.count_near(chromium::rgb(Status::Ok.color()), 12);
    let amber = rendered.count_near(chromium::rgb(Status::Warning.color()), 12);
    eprintln!(
        "pixels: red {red}, green {green}, amber {amber}, drawn {:.1}%",
        share * 100.0
    );
    assert!(red > 3000, "failure red: {red} pixels");
    assert!(green > 6000, "ok green: {green} pixels");
    assert!(amber > 800, "warning amber: {amber} pixels");

    // Every step is in the DOM, in the diagram and in the table.
    let dom = &rendered.dom;
    for arrow in &report.arrows {
        assert!(
            dom.contains(&format!("href=\"#step-{}\"", arrow.n)),
            "arrow {} is in the DOM",
            arrow.n
        );
        assert!(
            dom.contains(&format!("<tr id=\"step-{}\"", arrow.n)),
            "step {} has its table row",
            arrow.n
        );
        assert!(
            dom.contains(&format!("<code>{}</code>", escape_xml_text(&arrow.step))),
            "step {} ({}) is named",
            arrow.n,
            arrow.step
        );
        assert!(
            dom.contains(&escape_xml_text(&arrow.title)),
            "{}",
            arrow.title
        );
    }
    assert!(
        dom.contains("FAILED at step 17"),
        "the callout is in the DOM"
    );
    assert!(dom.contains("SIGN-IN FAILED at step 17"));

    // The hostile fact stayed text.
    assert!(dom.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;"));
    assert!(!dom.to_ascii_lowercase().contains("<script"));
    assert!(!dom.to_ascii_lowercase().contains("<img"));
    assert!(dom.contains("<title>lyncd sign-in report: alice@contoso.com</title>"));
}

#[test]
fn successful_signin_report_renders_in_chromium() {
    if !chromium::require_chromium("successful_signin_report_renders_in_chromium") {
        return;
    }
    let report = sample::successful_signin();
    let (_, rendered) = render_in_chromium(&report, "report-ok");
    assert_clean_console(&rendered);
    let green = rendered.count_near(chromium::rgb(Status::Ok.color()), 12);
    let red = rendered.count_near(chromium::rgb(Status::Failed.color()), 12);
    eprintln!("pixels: green {green}, red {red}");
    assert!(green > 10_000, "ok green: {green} pixels");
    // Only the legend's sample of a failed arrow is red.
    assert!(red < 600, "no failure red beyond the legend: {red} pixels");
    assert!(rendered.dom.contains("SIGNED IN in"));
    for arrow in &report.arrows {
        assert!(
            rendered
                .dom
                .contains(&format!("<tr id=\"step-{}\"", arrow.n))
        );
    }
}

/// The console check is not vacuous: a page with a script error is caught.
#[test]
fn the_console_check_catches_script_errors() {
    if !chromium::require_chromium("the_console_check_catches_script_errors") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let html_path = dir.path().join("broken.html");
    let png_path = dir.path().join("broken.png");
    std::fs::write(
        &html_path,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>broken</title></head>\
         <body><p>broken</p><script>noSuchFunction();</script></body></html>",
    )
    .unwrap();
    let rendered =
        chromium::render_sized(&html_path, &png_path, 400, 300).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((rendered.width, rendered.height), (400, 300));
    assert!(
        rendered
            .console_errors
            .iter()
            .any(|m| m.contains("Uncaught ReferenceError") && m.contains("noSuchFunction")),
        "{:#?}",
        rendered.console
    );
}
