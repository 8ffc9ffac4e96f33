//! The in-memory transport OpenSSL talks to (sip.md §13.2: no BIO pair needed, a `Read + Write`
//! over two buffers is enough).
//!
//! The TLS-DSK "network" is a SIP header: each leg's records are pushed in whole, OpenSSL runs
//! until it wants more, and everything it wrote meanwhile is the next leg. Reading from an empty
//! buffer returns `WouldBlock`, which OpenSSL reports as `WANT_READ`: that is how a leg ends.

use std::io::{self, Read, Write};

/// Bytes from the peer waiting to be read, and bytes OpenSSL wrote for the peer.
#[derive(Debug, Default)]
pub(crate) struct MemoryStream {
    incoming: Vec<u8>,
    read_pos: usize,
    outgoing: Vec<u8>,
}

impl MemoryStream {
    /// Queues one leg from the peer. Any unread rest of an earlier leg was already refused by the
    /// engine, so the buffer is simply replaced.
    pub(crate) fn push_incoming(&mut self, leg: &[u8]) {
        self.incoming.clear();
        self.incoming.extend_from_slice(leg);
        self.read_pos = 0;
    }

    /// Bytes of the current leg OpenSSL has not read.
    pub(crate) fn unread(&self) -> usize {
        self.incoming.len() - self.read_pos
    }

    /// Everything OpenSSL wrote since the last call.
    pub(crate) fn take_outgoing(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.outgoing)
    }
}

impl Read for MemoryStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = &self.incoming[self.read_pos..];
        if available.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.read_pos += n;
        Ok(n)
    }
}

impl Write for MemoryStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_would_block_when_drained() {
        let mut s = MemoryStream::default();
        let mut buf = [0u8; 4];
        assert_eq!(
            s.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        s.push_incoming(b"abcdef");
        assert_eq!(s.read(&mut buf).unwrap(), 4);
        assert_eq!(s.unread(), 2);
        assert_eq!(s.read(&mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"ef");
        assert_eq!(
            s.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        s.write_all(b"xy").unwrap();
        assert_eq!(s.take_outgoing(), b"xy");
        assert!(s.take_outgoing().is_empty());
    }
}
