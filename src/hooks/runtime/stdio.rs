//! A hook's stdout and stderr: captured per invocation into a bounded buffer, then sent to the
//! server log. Writes past the cap are dropped (and counted) rather than failing, because Rust's
//! `println!` panics when stdout errors, and a chatty hook should not be turned into a broken one.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Bytes of stdout (and, separately, of stderr) kept per invocation. Without a cap, a hook
/// printing in a loop would grow host memory until its fuel ran out.
pub const STDIO_CAP: usize = 16 * 1024;

#[derive(Default)]
struct Captured {
    bytes: BytesMut,
    dropped: usize,
}

/// A cloneable handle on one capture buffer.
#[derive(Clone, Default)]
pub struct CappedPipe {
    inner: Arc<Mutex<Captured>>,
}

impl CappedPipe {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&self, bytes: &[u8]) {
        let mut c = self.inner.lock().expect("stdio buffer poisoned");
        let room = STDIO_CAP.saturating_sub(c.bytes.len());
        let keep = bytes.len().min(room);
        c.bytes.extend_from_slice(&bytes[..keep]);
        c.dropped += bytes.len() - keep;
    }

    /// What was written (lossy UTF-8) and how many bytes were dropped past the cap.
    pub fn take(&self) -> (String, usize) {
        let mut c = self.inner.lock().expect("stdio buffer poisoned");
        let text = String::from_utf8_lossy(&c.bytes).into_owned();
        let dropped = c.dropped;
        *c = Captured::default();
        (text, dropped)
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always writable: bytes past the cap are dropped, never refused.
        Ok(STDIO_CAP)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_and_counts_bytes_past_the_cap() {
        let mut pipe = CappedPipe::new();
        pipe.write(Bytes::from(vec![b'a'; STDIO_CAP - 1])).unwrap();
        pipe.write(Bytes::from_static(b"bcd")).unwrap();
        let (text, dropped) = pipe.take();
        assert_eq!(text.len(), STDIO_CAP);
        assert!(text.ends_with('b'));
        assert_eq!(dropped, 2);
        assert_eq!(pipe.check_write().unwrap(), STDIO_CAP);
    }
}
