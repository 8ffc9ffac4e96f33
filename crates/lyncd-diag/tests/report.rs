//! The HTML report: structure, escaping, self-containment, determinism and a well-formed SVG
//! ladder. (`report_chromium.rs` renders it in a real browser.)

#[path = "common/sample.rs"]
mod sample;

use lyncd_core::escape_xml;
use lyncd_diag::report::{Failure, Report, Status, render_html};

/// The `<svg>…</svg>` part of a page.
fn svg_part(html: &str) -> &str {
    let start = html.find("<svg").expect("the page has an <svg>");
    let end = html.rfind("</svg>").expect("the <svg> is closed") + "</svg>".len();
    &html[start..end]
}

fn parse_svg(svg: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("SVG is not well-formed XML: {e}"))
}

/// The `<a class="row …">` groups of the diagram, one per arrow.
fn rows<'a>(doc: &'a roxmltree::Document<'a>) -> Vec<roxmltree::Node<'a, 'a>> {
    doc.descendants()
        .filter(|n| {
            n.has_tag_name("a")
                && n.attribute("class")
                    .is_some_and(|c| c.split(' ').any(|w| w == "row"))
        })
        .collect()
}

/// All text under a node, tspans joined without separators.
fn text_of(node: roxmltree::Node) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter(|n| !n.ancestors().any(|a| a.has_tag_name("title")))
        .filter_map(|n| n.text())
        .collect()
}

/// The label of a row: marker, number, request, duration.
fn label_of(row: roxmltree::Node) -> String {
    let label = row
        .descendants()
        .find(|n| {
            n.has_tag_name("text")
                && n.attribute("class")
                    .is_some_and(|c| c.split(' ').any(|w| w == "label"))
        })
        .expect("a row has a label");
    text_of(label)
}

/// Every tag of a page: since text is escaped, each `<` starts one.
fn tags(html: &str) -> Vec<&str> {
    html.split('<')
        .skip(1)
        .filter_map(|rest| rest.split_once('>').map(|(tag, _)| tag))
        .collect()
}

/// `(name, value)` of a tag's attributes (lowercase names; values as written).
fn attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = tag.trim_start_matches(|c: char| !c.is_whitespace());
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        if rest.is_empty() {
            return out;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        let name = rest[..end].to_ascii_lowercase();
        rest = &rest[end..];
        let value = if let Some(after) = rest.strip_prefix('=') {
            let quote = after.chars().next().unwrap_or(' ');
            if quote == '"' || quote == '\'' {
                let body = &after[1..];
                let close = body.find(quote).unwrap_or(body.len());
                rest = body.get(close + 1..).unwrap_or("");
                body[..close].to_string()
            } else {
                let close = after.find(char::is_whitespace).unwrap_or(after.len());
                rest = &after[close..];
                after[..close].to_string()
            }
        } else {
            String::new()
        };
        out.push((name, value));
    }
}

#[test]
fn every_arrow_is_drawn_with_its_number_request_and_duration() {
    let report = sample::failed_signin();
    let html = render_html(&report);
    let svg = svg_part(&html);
    let doc = parse_svg(svg);
    let rows = rows(&doc);
    assert_eq!(rows.len(), report.arrows.len(), "one row per arrow");
    for (row, arrow) in rows.iter().zip(&report.arrows) {
        let href = format!("#step-{}", arrow.n);
        assert_eq!(row.attribute("href"), Some(href.as_str()));
        let text = text_of(*row);
        assert!(
            text.contains(&format!("{}.", arrow.n)),
            "row {} lacks its number: {text}",
            arrow.n
        );
        // Long requests are shortened in the diagram (the table has them whole).
        let head: String = arrow.request.chars().take(30).collect();
        assert!(
            text.contains(&head),
            "row {} lacks its request: {text}",
            arrow.n
        );
        assert!(
            text.contains(&arrow.title),
            "row {} lacks its title: {text}",
            arrow.n
        );
        if let Some(reply) = &arrow.reply {
            assert!(
                text.contains(reply.as_str()),
                "row {} lacks its reply",
                arrow.n
            );
        }
        let class = row.attribute("class").unwrap_or_default();
        let word = match arrow.status {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        };
        assert_eq!(class, format!("row {word}"));
        assert!(
            label_of(*row).starts_with(arrow.status.marker()),
            "row {} starts with its status marker",
            arrow.n
        );
    }
    // The durations, formatted like the CLI table.
    assert!(
        svg.contains(">131 ms</tspan>"),
        "the slow IdP step shows 131 ms"
    );
    assert!(
        svg.contains(">4.2 ms</tspan>"),
        "sub-10 ms steps keep a decimal"
    );
    assert!(svg.contains(">skipped</tspan>"), "skipped steps say so");
    // Every step also has its row in the step table, with the full request.
    for arrow in &report.arrows {
        assert!(html.contains(&format!("<tr id=\"step-{}\"", arrow.n)));
        assert!(html.contains(&format!("<code>{}</code>", escape_xml(&arrow.step))));
        assert!(html.contains(&escape_xml(&arrow.request)));
    }
    // Every lane has a header (and a footer) with its label.
    for lane in &report.lanes {
        let labels = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("lane-label"))
            .filter(|n| n.text() == Some(lane.label.as_str()))
            .count();
        assert_eq!(labels, 2, "lane {} has a header and a footer", lane.id);
    }
}

#[test]
fn the_failing_arrow_is_marked_and_explained_next_to_it() {
    let report = sample::failed_signin();
    let html = render_html(&report);
    let doc = parse_svg(svg_part(&html));
    let failed: Vec<_> = rows(&doc)
        .into_iter()
        .filter(|r| r.attribute("class") == Some("row failed"))
        .collect();
    assert_eq!(failed.len(), 1, "exactly one failed arrow");
    let row = failed[0];
    assert_eq!(row.attribute("href"), Some("#step-17"));
    assert!(label_of(row).starts_with("✗"), "marked with ✗");
    // Thick red stroke (not only colour: the ✗ above, the width here).
    let red = Status::Failed.color();
    assert!(
        row.descendants().any(|n| n.has_tag_name("line")
            && n.attribute("stroke") == Some(red)
            && n.attribute("stroke-width") == Some("3.5")),
        "the failed request is a thick red line"
    );

    // The callout follows the failing row in the drawing order and carries the explanation.
    let callout = row
        .next_sibling_element()
        .expect("something follows the failed row");
    assert_eq!(callout.attribute("class"), Some("callout failed"));
    let text: String = callout
        .descendants()
        .filter(|n| n.has_tag_name("tspan"))
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(text.contains("FAILED at step 17"), "{text}");
    assert!(text.contains("[ms-diagnostics 1000]"), "{text}");
    assert!(text.contains("Expected:") && text.contains("Got:") && text.contains("Next check:"));
    // The whole explanation is there, wrapped over several lines.
    let words: Vec<&str> = sample::FAILURE_EXPLANATION.split_whitespace().collect();
    let callout_words: Vec<&str> = text.split_whitespace().collect();
    for window in words.windows(3) {
        assert!(
            callout_words.windows(3).any(|w| w == window),
            "the callout lost {window:?}: {text}"
        );
    }
    let lines = callout
        .descendants()
        .filter(|n| n.has_tag_name("tspan") && n.attribute("y").is_some())
        .count();
    assert!(lines >= 5, "the long explanation is wrapped: {lines} lines");

    // The warning gets a callout of its own.
    let warning = rows(&doc)
        .into_iter()
        .find(|r| r.attribute("class") == Some("row warning"))
        .expect("a warning row");
    assert!(label_of(warning).starts_with(Status::Warning.marker()));
    let warning_callout = warning.next_sibling_element().unwrap();
    assert_eq!(warning_callout.attribute("class"), Some("callout warning"));

    // Below the diagram: the verdict and the failure block.
    assert!(html.contains("<p class=\"headline failed\""));
    assert!(html.contains("SIGN-IN FAILED at step 17 (sip-register-signed)"));
    assert!(html.contains("<section class=\"failure\" id=\"failure\">"));
    assert!(html.contains("<a href=\"#step-17\">step 17</a>"));
    for term in ["Expected", "Got", "Why", "Next check"] {
        assert!(
            html.contains(&format!("<dt>{term}</dt>")),
            "failure block has {term}"
        );
    }
}

#[test]
fn facts_findings_and_the_verdict_are_shown() {
    let report = sample::failed_signin();
    let html = render_html(&report);
    for (key, value) in &report.facts {
        assert!(html.contains(&format!(
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            escape_xml(key),
            escape_xml(value)
        )));
    }
    for (severity, step, message) in &report.findings {
        assert!(html.contains(&escape_xml(severity)));
        assert!(html.contains(&format!("<code>{}</code>", escape_xml(step))));
        assert!(html.contains(&escape_xml(message)));
    }
    assert!(html.contains("<li class=\"failed\">"));
    assert!(html.contains("<li class=\"warning\">"));
    assert!(html.contains("Generated 2026-11-25 07:00:14 UTC by lyncd 0.1.0"));
    assert!(html.contains("secrets masked"));
    assert!(!html.contains("class=\"secrets-warning\""));

    let ok = render_html(&sample::successful_signin());
    assert!(ok.contains("<p class=\"headline ok\""));
    assert!(ok.contains("SIGNED IN in"));
    assert!(!ok.contains("class=\"row failed\""));
    assert!(!ok.contains("class=\"callout"));
    assert!(!ok.contains("<section class=\"failure\""));
    assert!(ok.contains("No findings."));
}

#[test]
fn an_unmasked_report_says_so_loudly() {
    let mut report = sample::successful_signin();
    report.secrets_masked = false;
    let html = render_html(&report);
    assert!(html.contains("contains unmasked secrets"));
    assert!(html.contains("class=\"secrets-warning\""));
    assert!(html.contains("Do not share it."));
}

/// Server-controlled text everywhere a string goes.
fn hostile_report() -> Report {
    const EVIL: &str =
        "<script>alert('x')</script><img src=x onerror=alert(1)>\" onmouseover=\"alert(2)";
    let mut report = sample::failed_signin();
    report.title = format!("report {EVIL}");
    report.headline = format!("FAILED {EVIL}");
    report.tool_version = EVIL.into();
    report.lanes[6].label = EVIL.into();
    report.lanes[6].detail = EVIL.into();
    let failed = report
        .arrows
        .iter_mut()
        .find(|a| a.status == Status::Failed)
        .unwrap();
    failed.note = Some(format!("The server said: {EVIL}"));
    failed.reply = Some(EVIL.into());
    failed.request = EVIL.into();
    failed.title = EVIL.into();
    failed.step = EVIL.into();
    report.arrows[0].note = Some(EVIL.into());
    report.failure = Some(Failure {
        step: EVIL.into(),
        title: EVIL.into(),
        code: EVIL.into(),
        expected: EVIL.into(),
        got: EVIL.into(),
        explanation: EVIL.into(),
        next_check: EVIL.into(),
    });
    report.facts.push((EVIL.into(), EVIL.into()));
    report
        .findings
        .push((EVIL.into(), EVIL.into(), EVIL.into()));
    // Characters XML forbids and a bidirectional override.
    report.arrows[1].note = Some("bell \u{7} escape \u{1b}[31m nul \u{0} rlo \u{202e}txt".into());
    report
}

#[test]
fn server_controlled_text_is_inert() {
    let html = render_html(&hostile_report());
    let lower = html.to_ascii_lowercase();
    assert!(
        !lower.contains("<script"),
        "a <script> in a note must be rendered as text"
    );
    assert!(!lower.contains("<img"));
    for tag in tags(&html) {
        for (name, _) in attributes(tag) {
            assert!(
                !name.starts_with("on"),
                "an event handler was injected: <{tag}>"
            );
        }
    }
    assert!(html.contains("The server said: &lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt;"));
    assert!(html.contains("&quot; onmouseover=&quot;alert(2)"));
    // Control characters and the bidi override are replaced, so the SVG is still XML.
    for bad in ['\u{0}', '\u{7}', '\u{1b}', '\u{202e}'] {
        assert!(!html.contains(bad), "{:?} reached the page", bad);
    }
    assert!(html.contains("bell \u{fffd} escape \u{fffd}[31m"));
    let doc = parse_svg(svg_part(&html));
    assert!(doc.descendants().all(|n| !n.has_tag_name("script")));
    assert!(doc.descendants().all(|n| !n.has_tag_name("img")));
}

#[test]
fn nothing_is_loaded_from_outside_the_file() {
    for html in [
        render_html(&sample::failed_signin()),
        render_html(&hostile_report()),
    ] {
        for tag in tags(&html) {
            let name = tag
                .split(|c: char| c.is_whitespace() || c == '/')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            assert!(
                ![
                    "link", "script", "iframe", "object", "embed", "img", "image", "use", "base"
                ]
                .contains(&name.as_str()),
                "the page has a <{name}> tag"
            );
            for (attribute, value) in attributes(tag) {
                assert_ne!(attribute, "src", "<{tag}>");
                assert!(!attribute.starts_with("on"), "<{tag}>");
                if attribute == "href" || attribute == "xlink:href" {
                    assert!(value.starts_with('#'), "only in-page links: <{tag}>");
                }
                if attribute == "xmlns" {
                    assert_eq!(value, "http://www.w3.org/2000/svg");
                }
            }
        }
        // Inside the style sheets: nothing to fetch.
        for sheet in html.split("<style>").skip(1) {
            let sheet = sheet.split("</style>").next().unwrap_or_default();
            assert!(
                !sheet.contains("@import") && !sheet.contains("url("),
                "{sheet}"
            );
        }
        assert!(html.contains(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             style-src 'unsafe-inline'"
        ));
    }
}

#[test]
fn rendering_is_deterministic() {
    let report = sample::failed_signin();
    let first = render_html(&report);
    let second = render_html(&report.clone());
    assert_eq!(first, second);
    assert_eq!(
        render_html(&sample::successful_signin()),
        render_html(&sample::successful_signin())
    );
}

fn svg_size(report: &Report) -> (f64, f64) {
    let html = render_html(report);
    let doc = parse_svg(svg_part(&html));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let width: f64 = root.attribute("width").unwrap().parse().unwrap();
    let height: f64 = root.attribute("height").unwrap().parse().unwrap();
    assert_eq!(
        root.attribute("viewBox"),
        Some(
            format!(
                "0 0 {} {}",
                root.attribute("width").unwrap(),
                root.attribute("height").unwrap()
            )
            .as_str()
        )
    );
    (width, height)
}

#[test]
fn the_diagram_grows_with_lanes_and_arrows_and_fits_1400_px_for_seven_lanes() {
    let full = sample::failed_signin();
    let (width, height) = svg_size(&full);
    // A 1400 px window leaves 1338 px inside the page's padding and the figure's frame;
    // narrower windows scale the diagram down.
    assert!(
        width <= 1338.0,
        "seven lanes fit a 1400 px window unscaled: {width}"
    );

    let mut fewer_lanes = full.clone();
    fewer_lanes.lanes.truncate(3);
    fewer_lanes
        .arrows
        .retain(|a| fewer_lanes.lanes.iter().any(|l| l.id == a.to));
    let (narrow, _) = svg_size(&fewer_lanes);
    assert!(narrow < width, "{narrow} < {width}");

    let mut fewer_arrows = full.clone();
    fewer_arrows.arrows.truncate(5);
    let (_, short) = svg_size(&fewer_arrows);
    assert!(short < height, "{short} < {height}");
}

#[test]
fn a_local_step_is_a_loop_on_its_own_lifeline() {
    let report = sample::failed_signin();
    let html = render_html(&report);
    let doc = parse_svg(svg_part(&html));
    let keygen = rows(&doc)
        .into_iter()
        .find(|r| r.attribute("href") == Some("#step-13"))
        .unwrap();
    let path = keygen
        .descendants()
        .find(|n| n.has_tag_name("path") && n.attribute("fill") == Some("none"))
        .expect("the loop is a path");
    let d = path.attribute("d").unwrap();
    assert!(d.contains('H') && d.contains('V'), "a loop: {d}");
}

#[test]
fn lanes_missing_from_the_list_are_added_and_degenerate_input_renders() {
    let mut report = sample::successful_signin();
    report.arrows[0].to = "edge-proxy".into();
    report.arrows[1].ms = f64::NAN;
    report.arrows[2].start_ms = f64::INFINITY;
    report.arrows[3].ms = -5.0;
    let html = render_html(&report);
    let doc = parse_svg(svg_part(&html));
    assert!(
        doc.descendants()
            .any(|n| n.attribute("class") == Some("lane-label") && n.text() == Some("edge-proxy"))
    );
    for garbage in ["NaN", "=\"inf", "=\"-inf", "inf ms", "+inf"] {
        assert!(!html.contains(garbage), "{garbage}");
    }

    let empty = Report {
        title: "empty".into(),
        generated: time::macros::datetime!(2026-01-01 00:00 UTC),
        tool_version: "0".into(),
        ok: false,
        headline: "nothing ran".into(),
        lanes: Vec::new(),
        arrows: Vec::new(),
        failure: None,
        facts: Vec::new(),
        findings: Vec::new(),
        secrets_masked: true,
    };
    let html = render_html(&empty);
    parse_svg(svg_part(&html));
    assert!(html.contains("No steps recorded."));
    assert!(html.contains("No facts recorded."));
}

#[test]
fn long_text_is_shortened_or_wrapped_never_unbounded() {
    let mut report = sample::failed_signin();
    let long = "x".repeat(500);
    report.arrows[0].request = format!("GET /{long}");
    report.arrows[0].title = long.clone();
    report.lanes[2].detail = format!("{long}.contoso.com:443");
    let failed = report
        .arrows
        .iter_mut()
        .find(|a| a.status == Status::Failed)
        .unwrap();
    failed.note = Some(format!("{long} {}", "word ".repeat(400)));
    let html = render_html(&report);
    let doc = parse_svg(svg_part(&html));
    for node in doc.descendants().filter(|n| n.is_text()) {
        let text = node.text().unwrap_or_default();
        if node
            .ancestors()
            .any(|a| a.has_tag_name("title") || a.has_tag_name("style"))
        {
            continue;
        }
        assert!(
            text.chars().count() <= 180,
            "an SVG text run of {} characters",
            text.chars().count()
        );
    }
    // The table keeps the full text.
    assert!(html.contains(&format!("GET /{long}")));
}

#[test]
fn the_report_serializes_for_json_output() {
    let report = sample::failed_signin();
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["generated"], "2026-11-25T07:00:14Z");
    assert_eq!(json["arrows"][16]["status"], "failed");
    assert_eq!(json["arrows"][6]["status"], "warning");
    assert_eq!(json["lanes"][0]["id"], "client");
    assert_eq!(json["facts"][0][0], "user");
}

#[test]
fn status_markers_and_colours_are_distinct() {
    let all = [Status::Ok, Status::Warning, Status::Failed, Status::Skipped];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a.color(), b.color());
            assert_ne!(a.marker(), b.marker());
            assert_ne!(a.word(), b.word());
        }
    }
}
