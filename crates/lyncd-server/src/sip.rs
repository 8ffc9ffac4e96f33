//! The SIP-over-TLS listener on the pool address.
//!
//! This milestone has no registrar yet (it is the next one): every request is read in full,
//! logged, and refused with `403 Forbidden` plus a `Warning` that says why, so a client and its
//! user see a clear answer instead of a dead connection. CRLF keep-alives are ignored.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const MAX_HEAD: usize = 64 * 1024;

pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    server_name: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => { tracing::warn!(error = %e, "sip: accept failed"); continue; }
            },
            _ = stop.changed() => return,
        };
        let acceptor = acceptor.clone();
        let name = server_name.clone();
        tokio::spawn(async move {
            match acceptor.accept(tcp).await {
                Ok(tls) => {
                    if let Err(e) = connection(tls, &name).await {
                        tracing::info!(%peer, error = %e, "sip: connection closed");
                    }
                }
                Err(e) => tracing::info!(%peer, error = %e, "sip: TLS handshake failed"),
            }
        });
    }
}

async fn connection<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut io: S,
    server: &str,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        // skip CRLF keep-alives between messages
        while buf.starts_with(b"\r\n") {
            buf.drain(..2);
        }
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = header_values(&head, "content-length", "l")
                .first()
                .map(|v| v.trim().parse::<usize>())
                .transpose()
                .map_err(|_| std::io::Error::other("bad Content-Length"))?
                .unwrap_or(0);
            let total = end + 4 + len;
            if buf.len() < total {
                read_more(&mut io, &mut buf).await?;
                continue;
            }
            buf.drain(..total);
            if let Some(response) = refuse(&head, server) {
                io.write_all(response.as_bytes()).await?;
            }
            continue;
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::other("SIP message head over 64 KiB"));
        }
        read_more(&mut io, &mut buf).await?;
    }
}

async fn read_more<S: tokio::io::AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    let mut chunk = [0u8; 8192];
    let n = io.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "peer closed",
        ));
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn header_values<'a>(head: &'a str, name: &str, compact: &str) -> Vec<&'a str> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| {
            n.trim().eq_ignore_ascii_case(name) || n.trim().eq_ignore_ascii_case(compact)
        })
        .map(|(_, v)| v.trim())
        .collect()
}

/// The 403 for a request; `None` for a response (nothing to answer).
fn refuse(head: &str, server: &str) -> Option<String> {
    let request_line = head.split("\r\n").next()?;
    if request_line.starts_with("SIP/2.0") {
        return None;
    }
    tracing::info!(request = %request_line, "sip: request received; registration is not available in this version");
    let mut out = String::from("SIP/2.0 403 Forbidden\r\n");
    for (name, compact) in [
        ("Via", "v"),
        ("From", "f"),
        ("To", "t"),
        ("Call-ID", "i"),
        ("CSeq", ""),
    ] {
        for v in header_values(head, name, if compact.is_empty() { name } else { compact }) {
            out.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    out.push_str(&format!(
        "Warning: 399 {server} \"SIP registration is not available on this lyncd version yet\"\r\n\
         Server: lyncd/{}\r\nContent-Length: 0\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    ));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_echoes_the_transaction_headers() {
        let head = "REGISTER sip:contoso.com SIP/2.0\r\nVia: SIP/2.0/tls 127.0.0.1:1;branch=z9hG4bKx\r\n\
                    From: <sip:alice@contoso.com>;tag=1\r\nTo: <sip:alice@contoso.com>\r\ni: abc\r\nCSeq: 1 REGISTER";
        let r = refuse(head, "pool.contoso.com").unwrap();
        assert!(r.starts_with("SIP/2.0 403 Forbidden\r\n"));
        assert!(r.contains("Via: SIP/2.0/tls 127.0.0.1:1;branch=z9hG4bKx\r\n"));
        assert!(r.contains("Call-ID: abc\r\n"));
        assert!(r.contains("CSeq: 1 REGISTER\r\n"));
        assert!(r.ends_with("Content-Length: 0\r\n\r\n"));
        assert_eq!(refuse("SIP/2.0 200 OK\r\nCSeq: 1 X", "p"), None);
    }

    #[tokio::test]
    async fn reads_pipelined_messages_and_keepalives() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let task = tokio::spawn(async move { connection(server, "p").await });
        let msg = "OPTIONS sip:x SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 3\r\n\r\nabc";
        client
            .write_all(format!("\r\n\r\n{msg}{msg}").as_bytes())
            .await
            .unwrap();
        let mut got = Vec::new();
        while got.windows(13).filter(|w| w == b"403 Forbidden").count() < 2 {
            let mut b = [0u8; 1024];
            let n = client.read(&mut b).await.unwrap();
            got.extend_from_slice(&b[..n]);
        }
        drop(client);
        assert!(task.await.unwrap().is_err());
    }
}
