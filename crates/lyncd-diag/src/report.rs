//! The self-contained HTML sign-in report (`lyncd signin --report FILE.html`).
//!
//! One page an engineer can hand to a colleague: a ladder (sequence) diagram of the whole
//! sign-in — one vertical lifeline per party (client, DNS, Autodiscover, Web Ticket service,
//! identity provider, CertProv, registrar), one horizontal arrow per step, each labelled with
//! its number, request and duration, the reply drawn as a dashed arrow back, and the failing
//! arrow marked and explained in a callout right next to it — followed by the verdict, the
//! facts, the findings, the failure in detail and a per-step table.
//!
//! Design constraints, all enforced by tests:
//! - **Self-contained.** Inline CSS, the diagram is inline SVG computed here; no script, no
//!   fonts, images or links to anything outside the file. A Content-Security-Policy meta tag
//!   forbids loading anything external or running any script, so even a future escaping bug
//!   cannot turn a server-controlled string into active content.
//! - **Every string is escaped.** The report embeds server-controlled text (reply lines, error
//!   explanations, certificate subjects); each piece goes through [`escape_xml`] after
//!   characters XML forbids and bidirectional overrides are replaced by U+FFFD.
//! - **Works without script.** Text is wrapped into `<tspan>` lines here, using the advance
//!   widths of DejaVu Sans (the widest of the usual sans-serif fonts, so estimates err towards
//!   more room), hover details are SVG `<title>` tooltips, arrows link to their table row.
//! - **Deterministic.** The same [`Report`] renders to the same bytes: no clock, no hashing,
//!   fixed float formatting.
//! - **Not only colour.** Each status has a colour, a glyph (✓ ⚠ ✗ ⊘) and a line style.

use std::fmt::Write as _;

use lyncd_core::{UtcTime, escape_xml};
use serde::Serialize;

/// Outcome of one step of the sign-in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The step did what it should.
    Ok,
    /// The step succeeded, but something deserves attention (clock skew, an expiring
    /// certificate, a fallback taken).
    Warning,
    /// The step failed; the sign-in stopped here.
    Failed,
    /// The step was not attempted (an earlier step failed, or it was not needed).
    Skipped,
}

impl Status {
    /// The colour the report uses for this status: strokes, glyphs and badges.
    pub fn color(&self) -> &'static str {
        match self {
            Status::Ok => "#1a7f37",
            Status::Warning => "#b35900",
            Status::Failed => "#cf222e",
            Status::Skipped => "#8c959f",
        }
    }

    /// The glyph that marks this status wherever its colour does (colour is never the only
    /// signal).
    pub fn marker(&self) -> &'static str {
        match self {
            Status::Ok => "✓",
            // U+FE0E asks for the text glyph, not a colour emoji.
            Status::Warning => "⚠\u{fe0e}",
            Status::Failed => "✗",
            Status::Skipped => "⊘",
        }
    }

    /// The word for this status in tables and callouts.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Failed => "FAILED",
            Status::Skipped => "skipped",
        }
    }

    /// Pale background for callouts and table rows.
    fn tint(&self) -> &'static str {
        match self {
            Status::Ok => "#eef8f0",
            Status::Warning => "#fff6e5",
            Status::Failed => "#ffeef0",
            Status::Skipped => "#f6f8fa",
        }
    }

    fn class(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

/// One party of the sign-in: a vertical lifeline in the diagram.
#[derive(Clone, Debug, Serialize)]
pub struct Lane {
    /// What [`Arrow::from`] and [`Arrow::to`] refer to, e.g. `"registrar"`.
    pub id: String,
    /// The header, e.g. `"Registrar"`.
    pub label: String,
    /// Usually `host:port`; may be empty.
    pub detail: String,
}

/// One step: a request from one lane to another (or to itself for local work such as key
/// generation), with its reply.
#[derive(Clone, Debug, Serialize)]
pub struct Arrow {
    /// Step number as shown in the CLI table (1-based).
    pub n: usize,
    /// Machine name, e.g. `"web-ticket"`.
    pub step: String,
    /// What the step does, e.g. `"Exchange the identity token for a web ticket"`.
    pub title: String,
    /// Lane id of the sender.
    pub from: String,
    /// Lane id of the receiver; equal to `from` for a local step (drawn as a small loop).
    pub to: String,
    /// E.g. `"POST /WebTicket/WebTicketService.svc/WsFedBearer"`.
    pub request: String,
    /// E.g. `"200 OK"`, `"NXDOMAIN"`, `"connection refused"`; drawn as a dashed return arrow.
    pub reply: Option<String>,
    /// When the step started, in milliseconds since the sign-in began.
    pub start_ms: f64,
    /// How long the step took, in milliseconds.
    pub ms: f64,
    /// The outcome.
    pub status: Status,
    /// Warnings, or the failure's explanation (shown in a callout for warnings and failures).
    pub note: Option<String>,
}

/// Why the sign-in failed, in the words of the CLI's failure block.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// Machine name of the failing step (matches an [`Arrow::step`]).
    pub step: String,
    /// Title of the failing step.
    pub title: String,
    /// Diagnosis code, e.g. an exit-code class or an `ms-diagnostics` code.
    pub code: String,
    /// What a healthy deployment answers.
    pub expected: String,
    /// What this one answered.
    pub got: String,
    /// Why that happens, in words a user can act on.
    pub explanation: String,
    /// The next thing to check.
    pub next_check: String,
}

/// Everything the HTML report shows.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Page title, e.g. `"lyncd sign-in report: alice@contoso.com"`.
    pub title: String,
    /// When the report was made (shown in UTC).
    #[serde(serialize_with = "serialize_rfc3339")]
    pub generated: UtcTime,
    /// Version of the tool that made the report.
    pub tool_version: String,
    /// Whether the sign-in succeeded.
    pub ok: bool,
    /// E.g. `"SIGNED IN in 512 ms"` or `"SIGN-IN FAILED at step 9 (sip-register)"`.
    pub headline: String,
    /// The lifelines, left to right. Lanes an arrow names but this list lacks are appended.
    pub lanes: Vec<Lane>,
    /// The steps, top to bottom.
    pub arrows: Vec<Arrow>,
    /// The failure, if the sign-in failed.
    pub failure: Option<Failure>,
    /// Key/value summary rows (pool, registrar, certificate serial, TLS versions …).
    pub facts: Vec<(String, String)>,
    /// `(severity, step, message)`; severity is free text (`error`, `warning`, `info` …).
    pub findings: Vec<(String, String, String)>,
    /// Whether secrets were masked; an unmasked report carries a loud warning.
    pub secrets_masked: bool,
}

fn serialize_rfc3339<S: serde::Serializer>(t: &UtcTime, s: S) -> Result<S::Ok, S::Error> {
    let text = t
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(serde::ser::Error::custom)?;
    s.serialize_str(&text)
}

/// Renders the report as one self-contained HTML page (UTF-8, no external resources, no
/// script). The same report always renders to the same bytes.
pub fn render_html(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = esc(&report.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"lyncd {version}\">\n\
         <title>{title}</title>\n<style>\n{PAGE_CSS}</style>\n</head>\n<body>\n",
        version = esc(&report.tool_version),
    );

    // Title, provenance and the verdict.
    let _ = write!(
        out,
        "<header class=\"top\">\n<h1>{title}</h1>\n<p class=\"meta\">Generated {generated} \
         by lyncd {version} · {steps} steps · {secrets}</p>\n</header>\n",
        generated = esc(&format_generated(report.generated)),
        version = esc(&report.tool_version),
        steps = report.arrows.len(),
        secrets = if report.secrets_masked {
            "secrets masked"
        } else {
            "<strong class=\"unmasked\">contains unmasked secrets</strong>"
        },
    );
    if !report.secrets_masked {
        out.push_str(
            "<p class=\"secrets-warning\" role=\"alert\">⚠\u{fe0e} This report was made with \
             <code>--show-secrets</code>: it contains passwords, tickets or keys in clear. Do not \
             share it.</p>\n",
        );
    }
    let verdict = if report.ok {
        Status::Ok
    } else {
        Status::Failed
    };
    let _ = writeln!(
        out,
        "<p class=\"headline {class}\" role=\"status\"><span class=\"glyph\">{marker}</span> \
         {headline}</p>",
        class = verdict.class(),
        marker = verdict.marker(),
        headline = esc(&report.headline),
    );

    // The ladder diagram.
    out.push_str("<figure class=\"ladder\">\n");
    out.push_str(&render_svg(report));
    out.push_str(
        "<figcaption>Sign-in ladder: one lifeline per party, one arrow per step (number, \
         request, duration), replies dashed. Hover an arrow for its details; click it for its \
         row in the step table.</figcaption>\n</figure>\n",
    );

    render_failure(&mut out, report);

    out.push_str("<div class=\"columns\">\n");
    render_facts(&mut out, &report.facts);
    render_findings(&mut out, &report.findings);
    out.push_str("</div>\n");

    render_step_table(&mut out, &report.arrows);

    let _ = write!(
        out,
        "<footer>lyncd {version} · {generated}</footer>\n</body>\n</html>\n",
        version = esc(&report.tool_version),
        generated = esc(&format_generated(report.generated)),
    );
    out
}

/// `2026-11-25 07:00:14 UTC`.
fn format_generated(t: UtcTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.format(&format).unwrap_or_else(|_| t.to_string())
}

// ---------------------------------------------------------------------------------------------
// HTML sections below the diagram
// ---------------------------------------------------------------------------------------------

fn render_failure(out: &mut String, report: &Report) {
    let Some(failure) = &report.failure else {
        return;
    };
    let number = report
        .arrows
        .iter()
        .find(|a| a.step == failure.step)
        .map(|a| a.n);
    let step_link = match number {
        Some(n) => format!("<a href=\"#step-{n}\">step {n}</a> · "),
        None => String::new(),
    };
    let _ = write!(
        out,
        "<section class=\"failure\" id=\"failure\">\n<h2><span class=\"glyph\">✗</span> Why the \
         sign-in failed</h2>\n<p class=\"where\">{step_link}<code>{step}</code> · {title}{code}</p>\n\
         <dl>\n",
        step = esc(&failure.step),
        title = esc(&failure.title),
        code = if failure.code.is_empty() {
            String::new()
        } else {
            format!(" · code <code>{}</code>", esc(&failure.code))
        },
    );
    for (term, value) in [
        ("Expected", &failure.expected),
        ("Got", &failure.got),
        ("Why", &failure.explanation),
        ("Next check", &failure.next_check),
    ] {
        if !value.is_empty() {
            let _ = writeln!(out, "<dt>{term}</dt><dd>{}</dd>", esc(value));
        }
    }
    out.push_str("</dl>\n</section>\n");
}

fn render_facts(out: &mut String, facts: &[(String, String)]) {
    out.push_str("<section class=\"facts\">\n<h2>Facts</h2>\n");
    if facts.is_empty() {
        out.push_str("<p class=\"none\">No facts recorded.</p>\n");
    } else {
        out.push_str("<table>\n<tbody>\n");
        for (key, value) in facts {
            let _ = writeln!(
                out,
                "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                esc(key),
                esc(value)
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</section>\n");
}

fn render_findings(out: &mut String, findings: &[(String, String, String)]) {
    out.push_str("<section class=\"findings\">\n<h2>Findings</h2>\n");
    if findings.is_empty() {
        out.push_str("<p class=\"none\">No findings.</p>\n");
    } else {
        out.push_str("<ul>\n");
        for (severity, step, message) in findings {
            let (class, marker) = severity_style(severity);
            let _ = write!(
                out,
                "<li class=\"{class}\"><span class=\"sev\">{marker} {severity}</span>",
                severity = esc(severity),
            );
            if !step.is_empty() {
                let _ = write!(out, " <code>{}</code>", esc(step));
            }
            let _ = writeln!(out, " {}</li>", esc(message));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
}

/// CSS class and marker of a free-text finding severity: the status colours for errors,
/// warnings and passes, a neutral blue "ℹ" for anything else.
fn severity_style(severity: &str) -> (&'static str, &'static str) {
    let s = severity.to_ascii_lowercase();
    let status = if s.starts_with("err") || s.starts_with("fail") || s.starts_with("crit") {
        Status::Failed
    } else if s.starts_with("warn") {
        Status::Warning
    } else if s == "ok" || s == "pass" || s == "passed" {
        Status::Ok
    } else {
        return ("info", "ℹ\u{fe0e}");
    };
    (status.class(), status.marker())
}

fn render_step_table(out: &mut String, arrows: &[Arrow]) {
    out.push_str(
        "<section class=\"steps\">\n<h2>Steps</h2>\n<table>\n<thead><tr><th>#</th>\
         <th>status</th><th>step</th><th>what</th><th class=\"num\">start</th>\
         <th class=\"num\">time</th><th>note</th></tr></thead>\n<tbody>\n",
    );
    for a in arrows {
        let reply = match &a.reply {
            Some(r) => format!(" → {}", esc(r)),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "<tr id=\"step-{n}\" class=\"{class}\"><td class=\"num\">{n}</td>\
             <td class=\"status\"><span class=\"glyph\">{marker}</span> {word}</td>\
             <td><code>{step}</code></td><td>{title}<div class=\"wire\">{request}{reply}</div></td>\
             <td class=\"num\">{start}</td><td class=\"num\">{ms}</td><td class=\"note\">{note}</td></tr>",
            n = a.n,
            class = a.status.class(),
            marker = a.status.marker(),
            word = a.status.word(),
            step = esc(&a.step),
            title = esc(&a.title),
            request = esc(&a.request),
            start = format_offset(a.start_ms),
            ms = if a.status == Status::Skipped {
                "–".to_string()
            } else {
                format_ms(a.ms)
            },
            note = esc(a.note.as_deref().unwrap_or("")),
        );
    }
    if arrows.is_empty() {
        out.push_str("<tr><td colspan=\"7\" class=\"none\">No steps recorded.</td></tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

// ---------------------------------------------------------------------------------------------
// The ladder diagram (SVG)
// ---------------------------------------------------------------------------------------------

/// Outer margin of the diagram.
const MARGIN: f64 = 10.0;
/// Width of the start-time column left of the first lifeline.
const GUTTER: f64 = 56.0;
/// Height of the lane header boxes.
const HEADER_H: f64 = 50.0;
/// Height of the lane boxes repeated at the bottom.
const FOOTER_H: f64 = 26.0;
/// Width of the timeline (waterfall) column right of the last lifeline.
const TIMELINE_W: f64 = 110.0;
/// Gap between the last lifeline's column and the timeline.
const TIMELINE_GAP: f64 = 16.0;
/// Bounds of a lane's column width; within them a column is as wide as its header needs.
const LANE_MIN: f64 = 120.0;
const LANE_MAX: f64 = 200.0;
/// Font size of a lane's `host:port`.
const LANE_DETAIL_PX: f64 = 10.0;
/// Widest callout.
const CALLOUT_MAX_W: f64 = 600.0;
/// Most lines a callout shows; the full text is in the failure block and the table.
const CALLOUT_MAX_LINES: usize = 16;
/// Size of an arrowhead along the line.
const HEAD: f64 = 9.0;

const MUTED: &str = "#59636e";
const RULE: &str = "#d0d7de";
const LANE_FILL: &str = "#f6f8fa";
const CLIENT_FILL: &str = "#ddf4ff";

/// Font sizes in px.
const LABEL_PX: f64 = 12.5;
const REQUEST_PX: f64 = 11.5;
const SMALL_PX: f64 = 11.0;

/// Where things go: computed once from the lanes and arrows.
struct Geometry {
    lanes: Vec<Lane>,
    /// Width of each lane's column, in the order of `lanes`.
    columns: Vec<f64>,
    /// x of each lane's lifeline, in the order of `lanes`.
    centres: Vec<f64>,
    /// Left edge of the first lane's column.
    lanes_left: f64,
    /// Right edge of the last lane's column.
    lanes_right: f64,
    /// Left edge of the timeline column.
    timeline_left: f64,
    /// Total width.
    width: f64,
    /// End of the last step, for the timeline scale (at least 1 ms).
    total_ms: f64,
}

impl Geometry {
    fn new(report: &Report) -> Geometry {
        // Lanes an arrow names but the caller did not list get a plain lane of their own, so
        // no arrow silently disappears.
        let mut lanes = report.lanes.clone();
        for a in &report.arrows {
            for id in [&a.from, &a.to] {
                if !lanes.iter().any(|l| &l.id == id) {
                    lanes.push(Lane {
                        id: id.clone(),
                        label: id.clone(),
                        detail: String::new(),
                    });
                }
            }
        }
        // Each column is as wide as its header (label, and `host:port` on one line if it can
        // be), so a seven-lane sign-in fits a 1280-1400 px window.
        let columns: Vec<f64> = lanes
            .iter()
            .map(|l| {
                let label = text_width(&l.label, Font::Bold(13.0));
                let detail = text_width(&l.detail, Font::Mono(LANE_DETAIL_PX));
                (label.max(detail) + 24.0).clamp(LANE_MIN, LANE_MAX).ceil()
            })
            .collect();
        let lanes_left = MARGIN + GUTTER;
        let mut centres = Vec::with_capacity(columns.len());
        let mut x = lanes_left;
        for width in &columns {
            centres.push((x + width / 2.0).round());
            x += width;
        }
        let lanes_right = if columns.is_empty() {
            lanes_left + LANE_MIN
        } else {
            x
        };
        let timeline_left = lanes_right + TIMELINE_GAP;
        let width = timeline_left + TIMELINE_W + MARGIN;
        let total_ms = report
            .arrows
            .iter()
            .map(|a| finite(a.start_ms) + finite(a.ms))
            .fold(1.0, f64::max);
        Geometry {
            lanes,
            columns,
            centres,
            lanes_left,
            lanes_right,
            timeline_left,
            width,
            total_ms,
        }
    }

    /// The x of a lane's lifeline.
    fn lane_x(&self, id: &str) -> f64 {
        self.lanes
            .iter()
            .position(|l| l.id == id)
            .and_then(|index| self.centres.get(index).copied())
            .unwrap_or(self.lanes_left)
    }

    /// Left x for a text of width `w` that would like to start at `x`, kept inside the lanes.
    fn clamp_text(&self, x: f64, w: f64) -> f64 {
        let right = self.lanes_right - 4.0;
        let left = self.lanes_left + 4.0;
        if x + w > right {
            (right - w).max(left)
        } else {
            x.max(left)
        }
    }

    /// Usable text width inside the lanes.
    fn inner_width(&self) -> f64 {
        self.lanes_right - self.lanes_left - 8.0
    }

    /// x in the timeline column for a time in ms.
    fn timeline_x(&self, ms: f64) -> f64 {
        self.timeline_left + (finite(ms) / self.total_ms).clamp(0.0, 1.0) * TIMELINE_W
    }
}

/// Renders the ladder diagram as a standalone SVG element (valid XML).
fn render_svg(report: &Report) -> String {
    let g = Geometry::new(report);
    // Rows are drawn first into `body` so the height is known for the root element.
    let mut body = String::with_capacity(32 * 1024);
    let rows_top = MARGIN + HEADER_H + 22.0;
    let mut y = rows_top;
    let mut row_spans: Vec<(f64, f64)> = Vec::new();
    for arrow in &report.arrows {
        let top = y;
        y = render_row(&mut body, &g, arrow, y);
        if matches!(arrow.status, Status::Failed | Status::Warning) {
            let lines = callout_lines(report, arrow, &g);
            if !lines.is_empty() {
                y = render_callout(&mut body, &g, arrow, &lines, y);
            }
        }
        row_spans.push((top, y));
    }
    if report.arrows.is_empty() {
        let _ = writeln!(
            body,
            "<text x=\"{x}\" y=\"{y}\" fill=\"{MUTED}\">No steps recorded.</text>",
            x = num(g.lanes_left + 8.0),
            y = num(y + 14.0),
        );
        y += 30.0;
    }
    let rows_bottom = y + 6.0;
    let footer_top = rows_bottom + 8.0;
    let legend_y = footer_top + FOOTER_H + 26.0;
    let height = legend_y + 12.0 + MARGIN;

    let mut svg = String::with_capacity(body.len() + 16 * 1024);
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"ladder\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" aria-labelledby=\"ladder-title\" \
         style=\"min-width:{minw}px\">\n<title id=\"ladder-title\">{title}</title>\n\
         <style>{SVG_CSS}</style>\n\
         <rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>\n",
        w = num(g.width),
        h = num(height),
        minw = num((g.width * 0.7).round()),
        title = esc(&format!("Sign-in ladder: {}", report.headline)),
    );

    // Zebra bands make a row easy to follow across a wide diagram.
    for (i, (top, bottom)) in row_spans.iter().enumerate() {
        if i % 2 == 1 {
            let _ = writeln!(
                svg,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" fill=\"#f8fafc\"/>",
                x = num(MARGIN),
                y = num(top - 6.0),
                w = num(g.width - 2.0 * MARGIN),
                h = num(bottom - top),
            );
        }
    }

    render_timeline_axis(&mut svg, &g, rows_top, rows_bottom);

    // Column headings over the gutter.
    let _ = writeln!(
        svg,
        "<text x=\"{x}\" y=\"{y}\" text-anchor=\"end\" class=\"small\" fill=\"{MUTED}\">start</text>",
        x = num(g.lanes_left - 8.0),
        y = num(MARGIN + HEADER_H - 12.0),
    );

    // Lifelines, then the headers over their tops and the repeated labels at the bottom.
    for x in &g.centres {
        let _ = writeln!(
            svg,
            "<line x1=\"{x}\" y1=\"{y1}\" x2=\"{x}\" y2=\"{y2}\" stroke=\"#afb8c1\" \
             stroke-width=\"1\" stroke-dasharray=\"5 4\"/>",
            x = num(x + 0.5),
            y1 = num(MARGIN + HEADER_H),
            y2 = num(footer_top),
        );
    }
    for (i, lane) in g.lanes.iter().enumerate() {
        render_lane_header(
            &mut svg,
            lane,
            g.centres[i],
            g.columns[i],
            i == 0,
            footer_top,
        );
    }

    svg.push_str(&body);
    render_legend(&mut svg, &g, legend_y);
    svg.push_str("</svg>\n");
    svg
}

/// A lane's header box (label over `host:port`) at the top, and its label again at the bottom.
fn render_lane_header(
    out: &mut String,
    lane: &Lane,
    x: f64,
    column: f64,
    first: bool,
    footer_top: f64,
) {
    let box_w = column - 12.0;
    let left = x - box_w / 2.0;
    let fill = if first { CLIENT_FILL } else { LANE_FILL };
    let label = fit(&lane.label, box_w - 12.0, Font::Bold(13.0));
    let detail_lines = wrap(
        &lane.detail,
        box_w - 10.0,
        Font::Mono(LANE_DETAIL_PX),
        2,
        &['.', ':', '/', '-', '@'],
    );
    let tooltip = if lane.detail.is_empty() {
        lane.label.clone()
    } else {
        format!("{} — {}", lane.label, lane.detail)
    };
    let _ = write!(
        out,
        "<g class=\"lane\"><title>{tooltip}</title>\
         <rect x=\"{left}\" y=\"{top}\" width=\"{box_w}\" height=\"{HEADER_H}\" rx=\"6\" \
         fill=\"{fill}\" stroke=\"{RULE}\"/>",
        tooltip = esc(&tooltip),
        left = num(left),
        top = num(MARGIN),
        box_w = num(box_w),
    );
    // Vertically centre one label line plus up to two detail lines.
    let label_y = match detail_lines.len() {
        0 => MARGIN + 30.0,
        1 => MARGIN + 22.0,
        _ => MARGIN + 17.0,
    };
    let _ = write!(
        out,
        "<text x=\"{x}\" y=\"{y}\" text-anchor=\"middle\" class=\"lane-label\">{label}</text>",
        x = num(x),
        y = num(label_y),
        label = esc(&label),
    );
    for (i, line) in detail_lines.iter().enumerate() {
        let _ = write!(
            out,
            "<text x=\"{x}\" y=\"{y}\" text-anchor=\"middle\" class=\"mono lane-detail\" \
             fill=\"{MUTED}\">{line}</text>",
            x = num(x),
            y = num(label_y + 15.0 + 12.0 * i as f64),
            line = esc(line),
        );
    }
    // The same lane, small, at the bottom: a tall diagram stays readable without scrolling up.
    let _ = writeln!(
        out,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{box_w}\" height=\"{FOOTER_H}\" rx=\"6\" \
         fill=\"{fill}\" stroke=\"{RULE}\"/><text x=\"{x}\" y=\"{ty}\" text-anchor=\"middle\" \
         class=\"lane-label\">{label}</text></g>",
        left = num(left),
        top = num(footer_top),
        box_w = num(box_w),
        x = num(x),
        ty = num(footer_top + 17.5),
        label = esc(&label),
    );
}

/// The timeline column: a time axis with gridlines; each row draws its own bar.
fn render_timeline_axis(out: &mut String, g: &Geometry, rows_top: f64, rows_bottom: f64) {
    let axis_y = MARGIN + HEADER_H - 4.0;
    let left = g.timeline_left;
    let right = g.timeline_left + TIMELINE_W;
    let _ = writeln!(
        out,
        "<text x=\"{x}\" y=\"{y}\" class=\"small b\" fill=\"{MUTED}\">timeline</text>",
        x = num(left),
        y = num(MARGIN + 12.0),
    );
    let _ = writeln!(
        out,
        "<line x1=\"{l}\" y1=\"{y}\" x2=\"{r}\" y2=\"{y}\" stroke=\"{MUTED}\" stroke-width=\"1\"/>",
        l = num(left),
        r = num(right),
        y = num(axis_y + 0.5),
    );
    let step = tick_step(g.total_ms);
    let mut tick = 0.0;
    let mut i = 0;
    while tick <= g.total_ms + 1e-9 && i < 20 {
        let x = g.timeline_x(tick).round() + 0.5;
        let _ = writeln!(
            out,
            "<line x1=\"{x}\" y1=\"{y1}\" x2=\"{x}\" y2=\"{y2}\" stroke=\"#e6eaef\" \
             stroke-width=\"1\"/><line x1=\"{x}\" y1=\"{t1}\" x2=\"{x}\" y2=\"{t2}\" \
             stroke=\"{MUTED}\" stroke-width=\"1\"/>",
            x = num(x),
            y1 = num(rows_top - 8.0),
            y2 = num(rows_bottom),
            t1 = num(axis_y - 3.0),
            t2 = num(axis_y + 3.0),
        );
        // Label the first tick and the last that fits; the rest are gridlines only.
        let next = tick + step;
        if i == 0 || next > g.total_ms + 1e-9 {
            let anchor = if i == 0 { "start" } else { "middle" };
            let _ = writeln!(
                out,
                "<text x=\"{x}\" y=\"{y}\" text-anchor=\"{anchor}\" class=\"small\" \
                 fill=\"{MUTED}\">{label}</text>",
                x = num(x - 0.5),
                y = num(axis_y - 8.0),
                label = if i == 0 {
                    "0".to_string()
                } else {
                    format_ms(tick)
                },
            );
        }
        tick = next;
        i += 1;
    }
    let _ = writeln!(
        out,
        "<text x=\"{x}\" y=\"{y}\" class=\"small\" fill=\"{MUTED}\">{total} in all</text>",
        x = num(left),
        y = num(MARGIN + 25.0),
        total = format_ms(g.total_ms),
    );
}

/// A round step for the time axis that gives two to five ticks.
fn tick_step(total_ms: f64) -> f64 {
    let raw = (total_ms / 4.0).max(0.001);
    let magnitude = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * magnitude >= raw {
            return m * magnitude;
        }
    }
    10.0 * magnitude
}

/// Draws one step; returns the y where the next row starts.
fn render_row(out: &mut String, g: &Geometry, a: &Arrow, top: f64) -> f64 {
    let color = a.status.color();
    let x1 = g.lane_x(&a.from);
    let x2 = g.lane_x(&a.to);
    let self_arrow = a.from == a.to;
    let label_y = top + 13.0;
    let arrow_y = top + 22.0;
    let (stroke_w, dash) = match a.status {
        Status::Failed => (3.5, ""),
        Status::Skipped => (1.5, " stroke-dasharray=\"2 4\""),
        Status::Ok | Status::Warning => (2.0, ""),
    };

    let _ = write!(
        out,
        "<a href=\"#step-{n}\" class=\"row {class}\"><g><title>{tooltip}</title>",
        n = a.n,
        class = a.status.class(),
        tooltip = esc(&arrow_tooltip(a)),
    );

    // Start time in the gutter, bar in the timeline.
    let _ = write!(
        out,
        "<text x=\"{x}\" y=\"{y}\" text-anchor=\"end\" class=\"mono small\" \
         fill=\"{MUTED}\">{start}</text>",
        x = num(g.lanes_left - 8.0),
        y = num(label_y),
        start = format_offset(a.start_ms),
    );
    render_timeline_bar(out, g, a, arrow_y);

    // The label: marker, number, request, duration.
    let duration = if a.status == Status::Skipped {
        "skipped".to_string()
    } else {
        format_ms(a.ms)
    };
    let prefix = format!("{} {}.", a.status.marker(), a.n);
    let fixed_w = text_width(&prefix, Font::Bold(LABEL_PX))
        + text_width(&duration, Font::Bold(LABEL_PX))
        + 18.0; // the tspans' dx gaps
    let label_left = if self_arrow {
        x1 + 8.0
    } else {
        x1.min(x2) + 8.0
    };
    let request = fit(
        &a.request,
        (g.inner_width() - fixed_w).max(40.0),
        Font::Mono(REQUEST_PX),
    );
    let label_w = fixed_w + text_width(&request, Font::Mono(REQUEST_PX));
    let label_x = g.clamp_text(label_left, label_w);
    let duration_fill = match a.status {
        Status::Ok | Status::Skipped => MUTED,
        Status::Warning | Status::Failed => color,
    };
    let _ = write!(
        out,
        "<text x=\"{x}\" y=\"{y}\" class=\"halo label\"><tspan class=\"b\" fill=\"{color}\">{marker}\
         </tspan><tspan class=\"b\" dx=\"4\">{n}.</tspan><tspan class=\"mono request\" \
         dx=\"6\">{request}</tspan><tspan class=\"b\" dx=\"8\" fill=\"{duration_fill}\">{duration}\
         </tspan></text>",
        x = num(label_x),
        y = num(label_y),
        marker = a.status.marker(),
        n = a.n,
        request = esc(&request),
    );

    let bottom;
    if self_arrow {
        // A small loop to the right of the lifeline for local work.
        let loop_w = 34.0;
        let loop_h = 16.0;
        let _ = write!(
            out,
            "<path d=\"M{x0} {y0} H{xr} V{yb} H{xe}\" fill=\"none\" stroke=\"{color}\" \
             stroke-width=\"{stroke_w}\" stroke-linejoin=\"round\"{dash}/>",
            x0 = num(x1 + 1.0),
            y0 = num(arrow_y),
            xr = num(x1 + loop_w),
            yb = num(arrow_y + loop_h),
            xe = num(x1 + HEAD),
        );
        arrowhead(out, x1 + 1.0, arrow_y + loop_h, -1.0, color, true);
        let title_x = x1 + loop_w + 10.0;
        let mut title_text = a.title.clone();
        if let Some(reply) = &a.reply {
            title_text = format!("{title_text} → {reply}");
        }
        let title = fit(
            &title_text,
            (g.lanes_right - 4.0 - title_x).max(60.0),
            Font::Sans(SMALL_PX),
        );
        let _ = write!(
            out,
            "<text x=\"{x}\" y=\"{y}\" class=\"halo small title\" fill=\"{MUTED}\">{title}</text>",
            x = num(g.clamp_text(title_x, text_width(&title, Font::Sans(SMALL_PX)))),
            y = num(arrow_y + 12.0),
            title = esc(&title),
        );
        bottom = arrow_y + loop_h + 16.0;
    } else {
        let dir = if x2 >= x1 { 1.0 } else { -1.0 };
        // The request.
        let _ = write!(
            out,
            "<line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"{color}\" \
             stroke-width=\"{stroke_w}\"{dash}/>",
            x1 = num(x1 + dir),
            x2 = num(x2 - dir * (HEAD - 1.0)),
            y = num(arrow_y),
        );
        arrowhead(
            out,
            x2 - dir,
            arrow_y,
            dir,
            color,
            a.status != Status::Skipped,
        );

        // What the step is for, in words, under the arrow.
        let title = fit(&a.title, g.inner_width(), Font::Sans(SMALL_PX));
        let title_w = text_width(&title, Font::Sans(SMALL_PX));
        let _ = write!(
            out,
            "<text x=\"{x}\" y=\"{y}\" class=\"halo small title\" fill=\"{MUTED}\">{title}</text>",
            x = num(g.clamp_text(x1.min(x2) + 8.0, title_w)),
            y = num(arrow_y + 15.0),
            title = esc(&title),
        );

        match &a.reply {
            Some(reply) => {
                let reply_y = arrow_y + 35.0;
                let reply_color = if a.status == Status::Failed {
                    color
                } else {
                    "#57606a"
                };
                let reply_text = fit(reply, g.inner_width(), Font::Mono(SMALL_PX));
                let reply_w = text_width(&reply_text, Font::Mono(SMALL_PX));
                // Right-aligned near the replying lane: it reads as "this is what came back".
                let reply_x = if dir > 0.0 {
                    x2 - 10.0 - reply_w
                } else {
                    x2 + 10.0
                };
                let _ = write!(
                    out,
                    "<line x1=\"{xa}\" y1=\"{y}\" x2=\"{xb}\" y2=\"{y}\" stroke=\"{reply_color}\" \
                     stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>",
                    xa = num(x2 - dir),
                    xb = num(x1 + dir * 2.0),
                    y = num(reply_y),
                );
                arrowhead(out, x1 + dir, reply_y, -dir, reply_color, false);
                let weight = if a.status == Status::Failed { " b" } else { "" };
                let _ = write!(
                    out,
                    "<text x=\"{x}\" y=\"{y}\" class=\"halo mono small reply{weight}\" \
                     fill=\"{reply_color}\">{reply}</text>",
                    x = num(g.clamp_text(reply_x, reply_w)),
                    y = num(reply_y - 5.0),
                    reply = esc(&reply_text),
                );
                bottom = reply_y + 14.0;
            }
            None => bottom = arrow_y + 28.0,
        }
    }
    out.push_str("</g></a>\n");
    bottom
}

/// The step's bar in the timeline column (none for a skipped step: it took no time).
fn render_timeline_bar(out: &mut String, g: &Geometry, a: &Arrow, y: f64) {
    if a.status == Status::Skipped {
        return;
    }
    let x = g.timeline_x(a.start_ms);
    let w = (g.timeline_x(finite(a.start_ms) + finite(a.ms)) - x).max(2.0);
    let _ = write!(
        out,
        "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"9\" rx=\"2\" fill=\"{color}\"/>",
        x = num(x),
        y = num(y - 4.5),
        w = num(w),
        color = a.status.color(),
    );
}

/// A filled (request) or open (reply) arrowhead with its tip at (`x`, `y`), pointing right
/// when `dir` is positive.
fn arrowhead(out: &mut String, x: f64, y: f64, dir: f64, color: &str, filled: bool) {
    let back = x - dir * HEAD;
    if filled {
        let _ = write!(
            out,
            "<path d=\"M{x} {y} L{back} {up} L{back} {down} Z\" fill=\"{color}\"/>",
            x = num(x),
            y = num(y),
            back = num(back),
            up = num(y - 5.0),
            down = num(y + 5.0),
        );
    } else {
        let _ = write!(
            out,
            "<path d=\"M{back} {up} L{x} {y} L{back} {down}\" fill=\"none\" stroke=\"{color}\" \
             stroke-width=\"1.5\" stroke-linejoin=\"round\" stroke-linecap=\"round\"/>",
            x = num(x),
            y = num(y),
            back = num(back),
            up = num(y - 5.0),
            down = num(y + 5.0),
        );
    }
}

fn arrow_tooltip(a: &Arrow) -> String {
    let mut t = format!("{}. {} — {}\n{}", a.n, a.step, a.title, a.request);
    if let Some(reply) = &a.reply {
        let _ = write!(t, " → {reply}");
    }
    let _ = write!(
        t,
        "\n{} · started {} · took {}",
        a.status.word(),
        format_offset(a.start_ms),
        format_ms(a.ms)
    );
    if let Some(note) = &a.note {
        let _ = write!(t, "\n{note}");
    }
    t
}

/// One line of a callout: an optional bold lead-in, then plain text.
struct CalloutLine {
    lead: String,
    text: String,
    heading: bool,
    /// First line of a paragraph: a little space above it.
    paragraph: bool,
}

/// Font size of a callout's text; its heading uses [`LABEL_PX`].
const CALLOUT_PX: f64 = 11.5;
/// Line height in a callout, and the extra space between its paragraphs.
const CALLOUT_LINE_H: f64 = 16.0;
const CALLOUT_PARAGRAPH_GAP: f64 = 4.0;

/// The lines of the callout next to a failed or warning arrow: a heading, the note (or the
/// failure's explanation), and for the failing step expected / got / next check.
fn callout_lines(report: &Report, a: &Arrow, g: &Geometry) -> Vec<CalloutLine> {
    let width = callout_width(g) - 24.0;
    let failure = report
        .failure
        .as_ref()
        .filter(|f| f.step == a.step && a.status == Status::Failed);
    let explanation = a
        .note
        .clone()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| failure.map(|f| f.explanation.clone()))
        .unwrap_or_default();
    let mut paragraphs: Vec<(&str, String)> = Vec::new();
    if let Some(f) = failure {
        if !f.expected.is_empty() {
            paragraphs.push(("Expected: ", f.expected.clone()));
        }
        if !f.got.is_empty() {
            paragraphs.push(("Got: ", f.got.clone()));
        }
    }
    if !explanation.is_empty() {
        paragraphs.push(("", explanation));
    }
    if let Some(f) = failure
        && !f.next_check.is_empty()
    {
        paragraphs.push(("Next check: ", f.next_check.clone()));
    }
    if paragraphs.is_empty() {
        return Vec::new();
    }

    let mut heading = format!(
        "{} {} at step {}: {}",
        a.status.marker(),
        a.status.word().to_uppercase(),
        a.n,
        a.title
    );
    if let Some(f) = failure
        && !f.code.is_empty()
    {
        let _ = write!(heading, " [{}]", f.code);
    }
    let mut lines = vec![CalloutLine {
        lead: String::new(),
        text: fit(&heading, width, Font::Bold(LABEL_PX)),
        heading: true,
        paragraph: false,
    }];
    let mut budget = CALLOUT_MAX_LINES;
    for (lead, text) in paragraphs {
        if budget == 0 {
            break;
        }
        // The bold lead-in is wider than the regular metrics say; take that off every line
        // (a few px) rather than special-casing the first.
        let bold_excess =
            text_width(lead, Font::Bold(CALLOUT_PX)) - text_width(lead, Font::Sans(CALLOUT_PX));
        let wrapped = wrap(
            &format!("{lead}{text}"),
            width - bold_excess,
            Font::Sans(CALLOUT_PX),
            budget,
            &[],
        );
        budget -= wrapped.len().min(budget);
        for (i, line) in wrapped.into_iter().enumerate() {
            let (lead, text) = match line.strip_prefix(lead) {
                Some(rest) if i == 0 && !lead.is_empty() => (lead.to_string(), rest.to_string()),
                _ => (String::new(), line),
            };
            lines.push(CalloutLine {
                lead,
                text,
                heading: false,
                paragraph: i == 0,
            });
        }
    }
    lines
}

fn callout_width(g: &Geometry) -> f64 {
    g.inner_width().min(CALLOUT_MAX_W)
}

/// Draws the callout box under a row; returns the y where the next row starts.
fn render_callout(
    out: &mut String,
    g: &Geometry,
    a: &Arrow,
    lines: &[CalloutLine],
    top: f64,
) -> f64 {
    let color = a.status.color();
    let x1 = g.lane_x(&a.from);
    let x2 = g.lane_x(&a.to);
    let width = callout_width(g);
    let left = g.clamp_text(x1.min(x2) + 8.0, width);
    let box_top = top + 8.0;
    let paragraphs = lines.iter().filter(|l| l.paragraph).count();
    let height = 14.0
        + CALLOUT_LINE_H * lines.len() as f64
        + CALLOUT_PARAGRAPH_GAP * paragraphs as f64
        + 4.0;
    // The pointer ties the box to the row above it, under the start of the row's label.
    let pointer_x = (x1.min(x2) + 34.0).clamp(left + 16.0, left + width - 16.0);
    let stroke_w = if a.status == Status::Failed { 1.5 } else { 1.0 };
    let _ = write!(
        out,
        "<g class=\"callout {class}\"><path d=\"M{l} {t} H{p1} L{px} {pt} L{p2} {t} H{r} V{b} \
         H{l} Z\" fill=\"{tint}\" stroke=\"{color}\" stroke-width=\"{stroke_w}\" \
         stroke-linejoin=\"round\"/><rect x=\"{l}\" y=\"{t}\" width=\"4\" height=\"{h}\" \
         fill=\"{color}\"/>",
        class = a.status.class(),
        l = num(left),
        t = num(box_top),
        r = num(left + width),
        b = num(box_top + height),
        h = num(height),
        p1 = num(pointer_x - 7.0),
        p2 = num(pointer_x + 7.0),
        px = num(pointer_x),
        pt = num(box_top - 8.0),
        tint = a.status.tint(),
    );
    let text_x = left + 14.0;
    let _ = write!(out, "<text class=\"callout-text\">");
    let mut y = box_top + 18.0;
    for line in lines {
        if line.paragraph {
            y += CALLOUT_PARAGRAPH_GAP;
        }
        if line.heading {
            let _ = write!(
                out,
                "<tspan x=\"{x}\" y=\"{y}\" class=\"heading\" fill=\"{color}\">{text}</tspan>",
                x = num(text_x),
                y = num(y),
                text = esc(&line.text),
            );
        } else if line.lead.is_empty() {
            let _ = write!(
                out,
                "<tspan x=\"{x}\" y=\"{y}\">{text}</tspan>",
                x = num(text_x),
                y = num(y),
                text = esc(&line.text),
            );
        } else {
            let _ = write!(
                out,
                "<tspan x=\"{x}\" y=\"{y}\" class=\"b\">{lead}</tspan><tspan>{text}</tspan>",
                x = num(text_x),
                y = num(y),
                lead = esc(&line.lead),
                text = esc(&line.text),
            );
        }
        y += CALLOUT_LINE_H;
    }
    out.push_str("</text></g>\n");
    box_top + height + 10.0
}

/// The key to the line styles, under the diagram.
fn render_legend(out: &mut String, g: &Geometry, y: f64) {
    let mut x = g.lanes_left;
    let _ = write!(out, "<g class=\"legend\">");
    for status in [Status::Ok, Status::Warning, Status::Failed, Status::Skipped] {
        let (stroke_w, dash) = match status {
            Status::Failed => (3.5, ""),
            Status::Skipped => (1.5, " stroke-dasharray=\"2 4\""),
            _ => (2.0, ""),
        };
        let _ = write!(
            out,
            "<line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"{c}\" \
             stroke-width=\"{stroke_w}\"{dash}/>",
            x1 = num(x),
            x2 = num(x + 30.0),
            y = num(y),
            c = status.color(),
        );
        arrowhead(
            out,
            x + 38.0,
            y,
            1.0,
            status.color(),
            status != Status::Skipped,
        );
        let label = format!("{} {}", status.marker(), status.word());
        let _ = write!(
            out,
            "<text x=\"{tx}\" y=\"{ty}\" class=\"small\" fill=\"{c}\">{label}</text>",
            tx = num(x + 46.0),
            ty = num(y + 4.0),
            c = status.color(),
        );
        x += 46.0 + text_width(&label, Font::Sans(SMALL_PX)) + 26.0;
    }
    let _ = write!(
        out,
        "<line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"#57606a\" \
         stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>",
        x1 = num(x),
        x2 = num(x + 38.0),
        y = num(y),
    );
    arrowhead(out, x, y, -1.0, "#57606a", false);
    let _ = writeln!(
        out,
        "<text x=\"{tx}\" y=\"{ty}\" class=\"small\" fill=\"#57606a\">reply</text>\
         <text x=\"{sx}\" y=\"{ty}\" class=\"small\" fill=\"{MUTED}\">left: start time · right: \
         timeline</text></g>",
        tx = num(x + 46.0),
        sx = num(x + 100.0),
        ty = num(y + 4.0),
    );
}

// ---------------------------------------------------------------------------------------------
// Text: escaping, measuring, wrapping, numbers
// ---------------------------------------------------------------------------------------------

/// Escapes text for HTML and XML alike (element text and quoted attributes). Characters XML
/// 1.0 forbids (most C0 controls) and bidirectional overrides, which could make text read
/// differently from what it is, become U+FFFD first.
fn esc(s: &str) -> String {
    if s.chars().all(|c| !is_unsafe_char(c)) {
        return escape_xml(s);
    }
    let cleaned: String = s
        .chars()
        .map(|c| if is_unsafe_char(c) { '\u{fffd}' } else { c })
        .collect();
    escape_xml(&cleaned)
}

fn is_unsafe_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}'
        | '\u{fffe}' | '\u{ffff}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A font for width estimates.
#[derive(Clone, Copy)]
enum Font {
    Sans(f64),
    Bold(f64),
    Mono(f64),
}

/// Advance widths of DejaVu Sans for U+0020..U+007E, in 1/1000 em.
const SANS_WIDTHS: [u16; 95] = [
    318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636,
    636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632,
    575, 775, 752, 295, 295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685,
    611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579,
    278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838,
];

/// Advance widths of DejaVu Sans Bold for U+0020..U+007E, in 1/1000 em.
const BOLD_WIDTHS: [u16; 95] = [
    348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696, 696,
    696, 696, 696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 580, 1000, 774, 762, 734, 830, 683,
    683, 821, 837, 372, 372, 775, 637, 995, 837, 850, 733, 850, 770, 720, 682, 812, 774, 1103, 771,
    724, 725, 457, 365, 457, 838, 500, 500, 675, 716, 593, 716, 678, 435, 716, 712, 343, 343, 665,
    343, 1042, 712, 687, 716, 716, 493, 595, 478, 712, 652, 924, 645, 652, 582, 712, 365, 712, 838,
];

/// Estimated rendered width of `s` in px. Uses DejaVu Sans metrics, the widest of the common
/// sans-serif fonts, so text laid out with it fits in Arial, Helvetica or Segoe UI too.
fn text_width(s: &str, font: Font) -> f64 {
    let (size, table) = match font {
        Font::Sans(size) => (size, Some(&SANS_WIDTHS)),
        Font::Bold(size) => (size, Some(&BOLD_WIDTHS)),
        Font::Mono(size) => (size, None),
    };
    let em: f64 = s
        .chars()
        .map(|c| {
            let code = c as u32;
            if is_zero_width(c) {
                0.0
            } else if is_wide(c) {
                1.0
            } else if let (Some(table), 0x20..=0x7e) = (table, code) {
                f64::from(table[(code - 0x20) as usize]) / 1000.0
            } else if table.is_none() {
                0.602
            } else if code < 0x2000 {
                0.75
            } else {
                0.9
            }
        })
        .sum();
    em * size
}

fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{300}'..='\u{36f}' | '\u{200b}'..='\u{200f}' | '\u{fe00}'..='\u{fe0f}')
}

/// East Asian wide characters and emoji: about one em in any font.
fn is_wide(c: char) -> bool {
    matches!(c,
        '\u{1100}'..='\u{115f}' | '\u{2e80}'..='\u{a4cf}' | '\u{ac00}'..='\u{d7a3}'
        | '\u{f900}'..='\u{faff}' | '\u{fe30}'..='\u{fe4f}' | '\u{ff00}'..='\u{ff60}'
        | '\u{ffe0}'..='\u{ffe6}' | '\u{1f300}'..='\u{1faff}' | '\u{20000}'..='\u{3fffd}')
}

/// `s` if it fits in `max_w`, else its longest prefix that fits followed by "…".
fn fit(s: &str, max_w: f64, font: Font) -> String {
    if text_width(s, font) <= max_w {
        return s.to_string();
    }
    let budget = max_w - text_width("…", font);
    let mut used = 0.0;
    let mut out = String::new();
    for c in s.chars() {
        let w = text_width(c.encode_utf8(&mut [0; 4]), font);
        if used + w > budget {
            break;
        }
        used += w;
        out.push(c);
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push('…');
    out
}

/// Greedy word wrap to `max_w`; `\n` starts a new line. A word too long for a line is broken
/// after one of `breaks` (e.g. `.` in a host name) if possible, else anywhere. At most
/// `max_lines` lines; a cut-off text ends in "…".
fn wrap(text: &str, max_w: f64, font: Font, max_lines: usize, breaks: &[char]) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut truncated = false;
    'paragraphs: for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if text_width(&candidate, font) <= max_w {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let mut rest = word;
            while text_width(rest, font) > max_w {
                let cut = break_point(rest, max_w, font, breaks);
                lines.push(rest[..cut].to_string());
                rest = &rest[cut..];
                if lines.len() > max_lines {
                    truncated = true;
                    break 'paragraphs;
                }
            }
            line = rest.to_string();
            if lines.len() > max_lines {
                truncated = true;
                break 'paragraphs;
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    if lines.len() > max_lines {
        truncated = true;
        lines.truncate(max_lines);
    }
    if truncated && let Some(last) = lines.last_mut() {
        *last = fit(&format!("{last}…"), max_w, font);
        if !last.ends_with('…') {
            last.push('…');
        }
    }
    lines
}

/// Byte index to break an over-long word at: after the last `breaks` character that keeps the
/// head within `max_w`, else after the last character that does (at least one character).
fn break_point(word: &str, max_w: f64, font: Font, breaks: &[char]) -> usize {
    let mut used = 0.0;
    let mut last_fit = 0;
    let mut last_break = 0;
    for (i, c) in word.char_indices() {
        used += text_width(c.encode_utf8(&mut [0; 4]), font);
        if used > max_w {
            break;
        }
        last_fit = i + c.len_utf8();
        if breaks.contains(&c) {
            last_break = last_fit;
        }
    }
    if last_break > 0 {
        last_break
    } else if last_fit > 0 {
        last_fit
    } else {
        word.chars().next().map_or(word.len(), char::len_utf8)
    }
}

/// A finite, non-negative number of milliseconds (garbage in becomes 0).
fn finite(ms: f64) -> f64 {
    if ms.is_finite() && ms > 0.0 { ms } else { 0.0 }
}

/// `0.4 ms`, `38 ms`, `1,234 ms`, `12.3 s`.
fn format_ms(ms: f64) -> String {
    let ms = finite(ms);
    if ms < 10.0 {
        let text = format!("{ms:.1}");
        format!("{} ms", text.strip_suffix(".0").unwrap_or(&text))
    } else if ms < 10_000.0 {
        let whole = ms.round() as u64;
        if whole >= 1000 {
            format!("{},{:03} ms", whole / 1000, whole % 1000)
        } else {
            format!("{whole} ms")
        }
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

/// A start time relative to the beginning of the sign-in: `+0 ms`, `+1,234 ms`.
fn format_offset(ms: f64) -> String {
    format!("+{}", format_ms(ms))
}

/// A coordinate with at most one decimal, without a trailing `.0`.
fn num(v: f64) -> String {
    let v = if v.is_finite() { v } else { 0.0 };
    let text = format!("{:.1}", (v * 10.0).round() / 10.0);
    match text.strip_suffix(".0") {
        Some("-0") => "0".to_string(),
        Some(whole) => whole.to_string(),
        None => text,
    }
}

// ---------------------------------------------------------------------------------------------
// Style sheets
// ---------------------------------------------------------------------------------------------

/// Styles of the diagram itself; scoped to `svg.ladder` so they cannot touch the page.
const SVG_CSS: &str = "svg.ladder text{font-family:\"Segoe UI\",\"Helvetica Neue\",Arial,\
\"Liberation Sans\",\"DejaVu Sans\",sans-serif;font-size:12.5px;fill:#1f2328}\
svg.ladder .mono{font-family:\"DejaVu Sans Mono\",Menlo,Consolas,\"Liberation Mono\",monospace}\
svg.ladder .request{font-size:11.5px}\
svg.ladder .small,svg.ladder .small tspan{font-size:11px}\
svg.ladder .b{font-weight:700}\
svg.ladder .lane-label{font-weight:700;font-size:13px}\
svg.ladder .lane-detail{font-size:10px}\
svg.ladder .callout-text{font-size:11.5px}\
svg.ladder .callout-text .heading{font-size:12.5px;font-weight:700}\
svg.ladder .halo{paint-order:stroke;stroke:#ffffff;stroke-width:4px;stroke-linejoin:round}\
svg.ladder a.row:hover .label,svg.ladder a.row:focus .label{text-decoration:underline}\
svg.ladder a.row{cursor:pointer}";

/// Styles of the page around the diagram; print-friendly.
const PAGE_CSS: &str = r#":root{color-scheme:light;--ink:#1f2328;--muted:#59636e;--rule:#d0d7de;--ok:#1a7f37;--warning:#b35900;--failed:#cf222e;--skipped:#8c959f}
*{box-sizing:border-box}
body{margin:0 auto;padding:20px 24px 40px;max-width:1560px;font:14px/1.45 "Segoe UI","Helvetica Neue",Arial,"Liberation Sans","DejaVu Sans",sans-serif;color:var(--ink);background:#fff}
code,.wire{font-family:"DejaVu Sans Mono",Menlo,Consolas,"Liberation Mono",monospace;font-size:.88em}
h1{font-size:20px;margin:0 0 2px}
h2{font-size:16px;margin:0 0 8px}
.meta{margin:0;color:var(--muted);font-size:13px}
.unmasked{color:var(--failed)}
.secrets-warning{margin:12px 0 0;padding:8px 12px;border:2px solid var(--failed);border-radius:6px;background:#ffeef0;color:#82071e;font-weight:600}
.headline{margin:14px 0 16px;padding:10px 14px;border-radius:6px;font-size:18px;font-weight:700;border-left:6px solid}
.headline.ok{background:#eef8f0;border-color:var(--ok);color:#116329}
.headline.failed{background:#ffeef0;border-color:var(--failed);color:#a40e26}
.glyph{font-weight:700}
figure.ladder{margin:0 0 20px;overflow-x:auto;border:1px solid var(--rule);border-radius:8px;padding:6px;background:#fff}
figure.ladder svg{display:block;max-width:100%;height:auto}
figcaption{color:var(--muted);font-size:12px;margin:6px 4px 0}
section{margin:0 0 20px}
.failure{border:1px solid var(--failed);border-left:6px solid var(--failed);border-radius:6px;padding:12px 16px;background:#fff8f8}
.failure h2{color:#a40e26}
.failure .where{margin:0 0 8px;color:var(--muted)}
.failure dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}
.failure dt{font-weight:700}
.failure dd{margin:0;white-space:pre-line}
.columns{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:20px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:5px 8px;border-bottom:1px solid var(--rule)}
thead th{font-size:12px;color:var(--muted);border-bottom:2px solid var(--rule)}
.facts th{width:1%;white-space:nowrap;padding-right:24px;font-weight:600;color:var(--muted)}
.facts td{overflow-wrap:anywhere}
.findings ul{list-style:none;margin:0;padding:0}
.findings li{padding:5px 8px;border-left:4px solid var(--skipped);margin:0 0 4px;background:#f6f8fa;overflow-wrap:anywhere}
.findings li.failed{border-color:var(--failed);background:#ffeef0}
.findings li.warning{border-color:var(--warning);background:#fff6e5}
.findings li.ok{border-color:var(--ok);background:#eef8f0}
.findings li.info{border-color:#0969da;background:#f1f8ff}
.sev{font-weight:700;text-transform:uppercase;font-size:11px;letter-spacing:.03em}
.none{color:var(--muted)}
.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.steps td{font-size:13px}
.steps td>code{white-space:nowrap}
.steps .wire{color:var(--muted);overflow-wrap:anywhere}
.steps .note{white-space:pre-line;overflow-wrap:anywhere;max-width:40em}
.steps tr>td:first-child{border-left:4px solid transparent}
.steps tr.ok>td:first-child{border-left-color:var(--ok)}
.steps tr.warning>td:first-child{border-left-color:var(--warning)}
.steps tr.failed>td:first-child{border-left-color:var(--failed)}
.steps tr.skipped>td:first-child{border-left-color:var(--skipped)}
.steps tr.failed{background:#ffeef0}
.steps tr.warning{background:#fff6e5}
.steps tr.skipped{color:var(--muted)}
.status{white-space:nowrap;font-weight:600}
tr.ok .status{color:var(--ok)}
tr.warning .status{color:var(--warning)}
tr.failed .status{color:var(--failed)}
tr:target{outline:2px solid #0969da;outline-offset:-2px}
a{color:#0969da}
footer{color:var(--muted);font-size:12px;border-top:1px solid var(--rule);padding-top:8px}
@media (max-width:900px){.columns{grid-template-columns:1fr}}
@media print{
@page{size:A4 landscape;margin:10mm}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{padding:0;max-width:none;font-size:10.5pt}
figure.ladder{border:none;padding:0;overflow:visible}
figure.ladder svg{min-width:0!important;width:100%}
figcaption{display:none}
.columns{grid-template-columns:1fr 1fr}
section,tr,.headline{break-inside:avoid}
a{color:inherit;text-decoration:none}
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_cli_table() {
        assert_eq!(format_ms(0.0), "0 ms");
        assert_eq!(format_ms(0.44), "0.4 ms");
        assert_eq!(format_ms(4.0), "4 ms");
        assert_eq!(format_ms(4.25), "4.2 ms");
        assert_eq!(format_ms(38.4), "38 ms");
        assert_eq!(format_ms(1234.0), "1,234 ms");
        assert_eq!(format_ms(12_345.0), "12.3 s");
        assert_eq!(format_ms(f64::NAN), "0 ms");
        assert_eq!(format_ms(-3.0), "0 ms");
        assert_eq!(format_offset(5.7), "+5.7 ms");
    }

    #[test]
    fn coordinates_have_one_decimal_at_most() {
        assert_eq!(num(12.0), "12");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(-0.01), "0");
        assert_eq!(num(f64::INFINITY), "0");
    }

    #[test]
    fn wrapping_keeps_every_word_within_the_width() {
        let text = "The registrar could not verify the signature on the REGISTER: a proxy \
                    rewrote a signed header.\nSecond paragraph.";
        let font = Font::Sans(11.5);
        let lines = wrap(text, 200.0, font, 20, &[]);
        assert!(lines.len() >= 4, "{lines:?}");
        assert!(
            lines.iter().all(|l| text_width(l, font) <= 200.0),
            "{lines:?}"
        );
        assert_eq!(lines.last().map(String::as_str), Some("Second paragraph."));
        let rejoined = lines.join(" ");
        assert_eq!(
            rejoined.split_whitespace().collect::<Vec<_>>(),
            text.split_whitespace().collect::<Vec<_>>()
        );

        // An over-long word breaks after a separator; too many lines end in an ellipsis.
        let host = wrap(
            "login.microsoftonline.com:443",
            100.0,
            Font::Mono(10.0),
            2,
            &['.'],
        );
        assert_eq!(host[0], "login.");
        let cut = wrap(&"word ".repeat(100), 100.0, font, 3, &[]);
        assert_eq!(cut.len(), 3);
        assert!(cut[2].ends_with('…'));
        assert!(cut.iter().all(|l| text_width(l, font) <= 100.0), "{cut:?}");
    }

    #[test]
    fn fitting_shortens_with_an_ellipsis() {
        let font = Font::Mono(11.5);
        assert_eq!(fit("GET /mex", 200.0, font), "GET /mex");
        let long = fit(&"x".repeat(100), 100.0, font);
        assert!(long.ends_with('…') && text_width(&long, font) <= 100.0);
    }

    #[test]
    fn time_axis_steps_are_round() {
        assert_eq!(tick_step(535.0), 200.0);
        assert_eq!(tick_step(40.0), 10.0);
        assert_eq!(tick_step(9000.0), 2500.0);
    }

    #[test]
    fn escaping_covers_markup_quotes_controls_and_bidi() {
        assert_eq!(
            esc("<b a=\"1\" c='2'>&</b>"),
            "&lt;b a=&quot;1&quot; c=&apos;2&apos;&gt;&amp;&lt;/b&gt;"
        );
        assert_eq!(
            esc("a\u{0}b\u{1b}c\u{202e}d"),
            "a\u{fffd}b\u{fffd}c\u{fffd}d"
        );
        assert_eq!(esc("tab\tnewline\n"), "tab\tnewline\n");
    }
}
