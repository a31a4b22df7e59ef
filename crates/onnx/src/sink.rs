//! Streaming protobuf encoding: a `BufMut` that flushes to a writer, so a model is encoded
//! straight into its file without first building the whole encoding in memory.

use bytes::BufMut;
use bytes::buf::UninitSlice;
use std::io::Write;

const CHUNK: usize = 1 << 20;

/// A `BufMut` over a `Write`: prost encodes into a 1 MiB buffer that is written out when
/// full; large slices (tensor payloads) go straight to the writer. The first write error
/// is kept and reported by [`WriteSink::finish`]; after it, output is discarded.
pub struct WriteSink<W: Write> {
    out: W,
    buf: Vec<u8>,
    written: u64,
    error: Option<std::io::Error>,
}

impl<W: Write> WriteSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        WriteSink {
            out,
            buf: Vec::with_capacity(CHUNK),
            written: 0,
            error: None,
        }
    }

    fn flush_buf(&mut self) {
        if self.error.is_none()
            && !self.buf.is_empty()
            && let Err(e) = self.out.write_all(&self.buf)
        {
            self.error = Some(e);
        }
        self.buf.clear();
    }

    /// Flushes everything and returns the writer and the byte count, or the first error.
    pub fn finish(mut self) -> std::io::Result<(W, u64)> {
        self.flush_buf();
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok((self.out, self.written))
    }
}

// SAFETY: `chunk_mut` hands out the spare capacity of `buf`, and `advance_mut` only
// extends `buf`'s length over bytes the caller has initialised, as the trait requires.
unsafe impl<W: Write> BufMut for WriteSink<W> {
    fn remaining_mut(&self) -> usize {
        isize::MAX as usize - self.written as usize
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        let len = self.buf.len() + cnt;
        assert!(len <= self.buf.capacity(), "advance_mut past the chunk");
        // SAFETY: the caller initialised `cnt` bytes of the chunk we returned.
        unsafe { self.buf.set_len(len) };
        self.written += cnt as u64;
        if self.buf.len() == self.buf.capacity() {
            self.flush_buf();
        }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        if self.buf.len() == self.buf.capacity() {
            self.flush_buf();
        }
        self.buf.spare_capacity_mut().into()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if src.len() >= CHUNK / 4 {
            self.flush_buf();
            if self.error.is_none()
                && let Err(e) = self.out.write_all(src)
            {
                self.error = Some(e);
            }
        } else {
            if self.buf.len() + src.len() > self.buf.capacity() {
                self.flush_buf();
            }
            self.buf.extend_from_slice(src);
        }
        self.written += src.len() as u64;
    }
}

/// A file writer that starts the kernel's writeback of every 8 MiB as soon as it is
/// written (Linux `sync_file_range`), so the final `fsync` of a large model overlaps with
/// encoding instead of starting only at the end. Elsewhere it is a plain file writer.
pub struct EagerWriteback<'a> {
    file: &'a mut std::fs::File,
    written: u64,
    flushed: u64,
}

impl<'a> EagerWriteback<'a> {
    /// Wraps `file`, positioned at its start.
    pub fn new(file: &'a mut std::fs::File) -> Self {
        EagerWriteback {
            file,
            written: 0,
            flushed: 0,
        }
    }

    const STEP: u64 = 8 << 20;

    #[cfg(target_os = "linux")]
    fn kick(&mut self) {
        use std::os::fd::AsRawFd;
        if self.written - self.flushed >= Self::STEP {
            // SAFETY: a plain syscall on a file descriptor we own; failure only means the
            // final fsync does all the work, so the result is ignored.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.flushed as i64,
                    (self.written - self.flushed) as i64,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            self.flushed = self.written;
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn kick(&mut self) {}
}

impl Write for EagerWriteback<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        self.kick();
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn streamed_encoding_equals_vec_encoding() {
        let t = crate::proto::TensorProto {
            name: Some("w".into()),
            raw_data: Some(bytes::Bytes::from(vec![7u8; 3 * CHUNK + 5])),
            dims: vec![1, 2, 3],
            ..Default::default()
        };
        let mut sink = WriteSink::new(Vec::new());
        t.encode(&mut sink).unwrap();
        let (out, n) = sink.finish().unwrap();
        assert_eq!(out, t.encode_to_vec());
        assert_eq!(n as usize, out.len());
    }
}
