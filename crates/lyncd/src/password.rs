//! Where a password comes from: a terminal prompt, the first line of stdin, or LYNCD_PASSWORD.
//! Never from argv, where other users of the machine could read it.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};
use lyncd_core::Secret;

pub fn read(from_stdin: bool, prompt: &str, confirm: bool) -> anyhow::Result<Secret<String>> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        let pw = line.trim_end_matches(['\r', '\n']).to_string();
        if pw.is_empty() {
            bail!("--password-stdin: standard input had no password on its first line");
        }
        return Ok(Secret::new(pw));
    }
    if let Ok(pw) = std::env::var("LYNCD_PASSWORD")
        && !pw.is_empty()
    {
        return Ok(Secret::new(pw));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no password: use --password-stdin, set LYNCD_PASSWORD, or run on a terminal to be prompted"
        );
    }
    let pw =
        rpassword::prompt_password(prompt).context("reading the password from the terminal")?;
    if pw.is_empty() {
        bail!("the password is empty");
    }
    if confirm && rpassword::prompt_password("Repeat password: ")? != pw {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(Secret::new(pw))
}
