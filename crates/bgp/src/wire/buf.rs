//! Checked reading over `Bytes`: every accessor returns `None` instead of panicking when the
//! input is short, so decoders can use `?` and never index out of bounds.

use bytes::{Buf, Bytes};

/// A forward-only reader over a `Bytes` buffer. Sub-slices share the buffer (no copy).
#[derive(Debug, Clone)]
pub(crate) struct Cursor {
    buf: Bytes,
}

impl Cursor {
    pub(crate) fn new(buf: Bytes) -> Self {
        Self { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The unread bytes, without consuming them.
    pub(crate) fn peek(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        let v = *self.buf.first()?;
        self.buf.advance(1);
        Some(v)
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        let b: [u8; 2] = self.buf.get(..2)?.try_into().ok()?;
        self.buf.advance(2);
        Some(u16::from_be_bytes(b))
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        let b: [u8; 4] = self.buf.get(..4)?.try_into().ok()?;
        self.buf.advance(4);
        Some(u32::from_be_bytes(b))
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let b: [u8; N] = self.buf.get(..N)?.try_into().ok()?;
        self.buf.advance(N);
        Some(b)
    }

    /// Takes the next `n` bytes as a shared sub-buffer.
    pub(crate) fn take(&mut self, n: usize) -> Option<Bytes> {
        (n <= self.buf.len()).then(|| self.buf.split_to(n))
    }

    /// Takes everything that is left.
    pub(crate) fn rest(self) -> Bytes {
        self.buf
    }
}

/// Reads a big-endian `u16` at `at` from a slice, or `None` if short.
pub(crate) fn be_u16(buf: &[u8], at: usize) -> Option<u16> {
    let b: [u8; 2] = buf.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_be_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_reads_return_none() {
        let mut c = Cursor::new(Bytes::from_static(&[1, 2, 3]));
        assert_eq!(c.u16(), Some(0x0102));
        assert_eq!(c.u16(), None);
        assert_eq!(c.u32(), None);
        assert_eq!(c.take(2), None);
        assert_eq!(c.u8(), Some(3));
        assert_eq!(c.u8(), None);
        assert!(c.is_empty());
        assert_eq!(be_u16(&[1], 0), None);
        assert_eq!(be_u16(&[1, 2], usize::MAX), None);
    }
}
