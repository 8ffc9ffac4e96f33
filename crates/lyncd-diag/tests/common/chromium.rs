//! Renders an HTML file in headless Chromium (Debian's `chromium` package): a PNG screenshot,
//! the DOM as parsed, and whatever the page wrote to the console — the proof that a report
//! really renders, without script errors.
//!
//! Shared by the report tests. Another crate's tests can use it with
//!
//! ```ignore
//! #[path = "../../lyncd-diag/tests/common/chromium.rs"]
//! mod chromium;
//! ```
//!
//! and `png` as a dev-dependency. Only `std` and `png` are used.
//!
//! Environment:
//! - `LYNCD_CHROMIUM`: the browser binary (default: `chromium` on `PATH`).
//! - `LYNCD_SKIP_CHROMIUM=1`: [`require_chromium`] skips (loudly) instead of failing when no
//!   browser is installed.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Default viewport: wide enough for a seven-lane ladder, tall enough for its diagram.
pub const DEFAULT_WIDTH: u32 = 1400;
pub const DEFAULT_HEIGHT: u32 = 2400;

/// How long one browser run may take before it is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// What a page looked like in the browser.
pub struct Rendered {
    /// The DOM after parsing (`--dump-dom`), serialized as HTML.
    pub dom: String,
    /// Every console message the page produced (either run), e.g. `"an error"`.
    pub console: Vec<String>,
    /// The console messages that are errors: uncaught exceptions, Content-Security-Policy
    /// violations, refused or failed loads.
    pub console_errors: Vec<String>,
    /// Screenshot size in pixels.
    pub width: u32,
    pub height: u32,
    /// The screenshot as RGB pixels, row by row.
    pub pixels: Vec<[u8; 3]>,
    /// The most common colour in the screenshot (the page background).
    pub background: [u8; 3],
    /// How many pixels differ from `background` by more than a little.
    pub non_background: usize,
    /// Wall-clock time of the screenshot run and of the DOM run.
    pub screenshot_time: Duration,
    pub dom_time: Duration,
}

impl Rendered {
    /// Pixels within `tolerance` (per channel) of `rgb`.
    pub fn count_near(&self, rgb: [u8; 3], tolerance: u8) -> usize {
        self.pixels
            .iter()
            .filter(|p| near(**p, rgb, tolerance))
            .count()
    }

    /// Share of pixels that are not background, 0.0 to 1.0.
    pub fn non_background_share(&self) -> f64 {
        if self.pixels.is_empty() {
            0.0
        } else {
            self.non_background as f64 / self.pixels.len() as f64
        }
    }

    /// The pixel at (`x`, `y`), if inside the screenshot.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        self.pixels
            .get(y as usize * self.width as usize + x as usize)
            .copied()
    }
}

fn near(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
}

/// `#rrggbb` → RGB.
pub fn rgb(hex: &str) -> [u8; 3] {
    let hex = hex.trim_start_matches('#');
    let channel = |i: usize| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
    [channel(0), channel(2), channel(4)]
}

/// The browser binary: `$LYNCD_CHROMIUM`, else `chromium` on `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(explicit) = std::env::var_os("LYNCD_CHROMIUM") {
        let path = PathBuf::from(explicit);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
}

/// Whether a browser test can run. Without Chromium this panics with the install command —
/// a browser test must never pass silently — unless `LYNCD_SKIP_CHROMIUM=1`, in which case it
/// says on stderr why `test` is skipped and returns false.
pub fn require_chromium(test: &str) -> bool {
    if find_chromium().is_some() {
        return true;
    }
    if std::env::var("LYNCD_SKIP_CHROMIUM").as_deref() == Ok("1") {
        eprintln!(
            "SKIPPED {test}: chromium is not installed and LYNCD_SKIP_CHROMIUM=1 \
             (apt-get install chromium to run it)"
        );
        return false;
    }
    panic!(
        "{test} needs headless Chromium: apt-get install chromium \
         (or set LYNCD_CHROMIUM=/path/to/chromium; LYNCD_SKIP_CHROMIUM=1 skips this test)"
    );
}

/// Renders `html_path` at the default viewport ([`DEFAULT_WIDTH`] × [`DEFAULT_HEIGHT`]),
/// writing the screenshot to `png_path`.
pub fn render(html_path: &Path, png_path: &Path) -> Result<Rendered, String> {
    render_sized(html_path, png_path, DEFAULT_WIDTH, DEFAULT_HEIGHT)
}

/// Renders `html_path` in a `width` × `height` viewport: one run for the screenshot
/// (written to `png_path`), one for the DOM, console messages collected from both.
pub fn render_sized(
    html_path: &Path,
    png_path: &Path,
    width: u32,
    height: u32,
) -> Result<Rendered, String> {
    let browser = find_chromium().ok_or("chromium not found: apt-get install chromium")?;
    let html = fs::canonicalize(html_path).map_err(|e| format!("{}: {e}", html_path.display()))?;
    let url = file_url(&html);
    let png = if png_path.is_absolute() {
        png_path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| e.to_string())?
            .join(png_path)
    };
    let _ = fs::remove_file(&png);
    let work = png
        .parent()
        .ok_or("the screenshot path has no directory")?
        .to_path_buf();

    let window = format!("--window-size={width},{height}");
    let screenshot_arg = format!("--screenshot={}", png.display());
    let shot = run(&browser, &work, &[&window, &screenshot_arg, &url])?;
    let dom_run = run(&browser, &work, &[&window, "--dump-dom", &url])?;

    if !png.is_file() {
        return Err(format!(
            "chromium wrote no screenshot to {}; its stderr:\n{}",
            png.display(),
            tail(&shot.stderr)
        ));
    }
    if dom_run.stdout.trim().is_empty() {
        return Err(format!(
            "chromium dumped no DOM; its stderr:\n{}",
            tail(&dom_run.stderr)
        ));
    }
    let (width, height, pixels) = decode_png(&png)?;
    let background = most_common(&pixels);
    let non_background = pixels.iter().filter(|p| !near(**p, background, 8)).count();
    let console: Vec<String> = console_messages(&shot.stderr)
        .into_iter()
        .chain(console_messages(&dom_run.stderr))
        .collect();
    let console_errors = console
        .iter()
        .filter(|m| is_error_message(m))
        .cloned()
        .collect();
    Ok(Rendered {
        dom: dom_run.stdout,
        console,
        console_errors,
        width,
        height,
        pixels,
        background,
        non_background,
        screenshot_time: shot.elapsed,
        dom_time: dom_run.elapsed,
    })
}

struct Run {
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// One headless browser run with a fresh profile; output goes through files so neither pipe
/// can fill up and stall the browser.
fn run(browser: &Path, work: &Path, args: &[&str]) -> Result<Run, String> {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let id = format!(
        "chromium-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    );
    let profile = work.join(format!("{id}-profile"));
    let stdout_path = work.join(format!("{id}.stdout"));
    let stderr_path = work.join(format!("{id}.stderr"));
    let stdout_file = File::create(&stdout_path).map_err(|e| e.to_string())?;
    let stderr_file = File::create(&stderr_path).map_err(|e| e.to_string())?;

    let mut command = Command::new(browser);
    command.args([
        "--headless=new",
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--mute-audio",
        "--enable-logging=stderr",
        "--v=0",
    ]);
    // Chromium refuses to run as root with its sandbox on.
    if is_root() {
        command.arg("--no-sandbox");
    }
    command
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout_file)
        .stderr(stderr_file);

    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", browser.display()))?;
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if started.elapsed() > RUN_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = fs::remove_dir_all(&profile);
                return Err(format!(
                    "chromium did not finish within {} s",
                    RUN_TIMEOUT.as_secs()
                ));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let elapsed = started.elapsed();
    let stdout = fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
    let _ = fs::remove_dir_all(&profile);
    let _ = fs::remove_file(&stdout_path);
    let _ = fs::remove_file(&stderr_path);
    if !status.success() {
        return Err(format!(
            "chromium exited with {status}; its stderr:\n{}",
            tail(&stderr)
        ));
    }
    Ok(Run {
        stdout,
        stderr,
        elapsed,
    })
}

/// The console messages in Chromium's log, e.g. from
/// `[..:INFO:CONSOLE:1] "Uncaught ReferenceError: x is not defined", source: file:///…`
/// (older builds write `CONSOLE(1)]`).
fn console_messages(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|line| {
            let at = line.find(":CONSOLE")?;
            let rest = &line[at..];
            let message = &rest[rest.find(']')? + 1..];
            Some(message.trim().to_string())
        })
        .collect()
}

fn is_error_message(message: &str) -> bool {
    [
        "Uncaught",
        "Content Security Policy",
        "Refused to",
        "Failed to load",
        "Not allowed to load",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

fn decode_png(path: &Path) -> Result<(u32, u32, Vec<[u8; 3]>), String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut decoder = png::Decoder::new(BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("{}: not a PNG: {e}", path.display()))?;
    let size = reader
        .output_buffer_size()
        .ok_or("the PNG is too large to decode")?;
    let mut buffer = vec![0; size];
    let info = reader
        .next_frame(&mut buffer)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Indexed => return Err("indexed PNG was not expanded".into()),
    };
    let pixels = buffer[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| match channels {
            1 | 2 => [p[0], p[0], p[0]],
            _ => [p[0], p[1], p[2]],
        })
        .collect();
    Ok((info.width, info.height, pixels))
}

fn most_common(pixels: &[[u8; 3]]) -> [u8; 3] {
    let mut counts = std::collections::BTreeMap::new();
    for p in pixels {
        *counts.entry(*p).or_insert(0usize) += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(_, count)| *count)
        .map_or([255, 255, 255], |(p, _)| p)
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            Some(line.split_whitespace().nth(2)? == "0")
        })
        .unwrap_or(false)
}

/// `file://` URL of an absolute path, percent-encoding what a URL path cannot hold.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for byte in path.to_string_lossy().bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            url.push(byte as char);
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}

/// The last lines of a log, for error messages.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
