// SPDX-License-Identifier: GPL-2.0

//! Test patterns: fill memory so that every 8-byte word differs, and check it later.
//!
//! The word at byte offset `o` is `seed ^ o`: pages and words that are swapped, lost or shared
//! show up as a mismatch.

use std::fmt;

/// The first word that does not hold what was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    /// Byte offset of the word.
    pub offset: usize,
    /// The value that was written.
    pub expected: u64,
    /// The value read back.
    pub found: u64,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at byte {:#x}: expected {:#018x}, found {:#018x}",
            self.offset, self.expected, self.found
        )
    }
}

impl std::error::Error for Mismatch {}

fn word(seed: u64, offset: usize) -> u64 {
    seed ^ offset as u64
}

/// Fills `buf` with the pattern of `seed`.
pub fn fill(buf: &mut [u8], seed: u64) {
    let offset = buf.len() - buf.len() % 8;
    let mut chunks = buf.chunks_exact_mut(8);
    for (i, chunk) in chunks.by_ref().enumerate() {
        chunk.copy_from_slice(&word(seed, i * 8).to_ne_bytes());
    }
    let tail = chunks.into_remainder();
    let bytes = word(seed, offset).to_ne_bytes();
    tail.copy_from_slice(&bytes[..tail.len()]);
}

/// Checks that `buf` holds the pattern of `seed`, as written by [`fill`].
pub fn check(buf: &[u8], seed: u64) -> Result<(), Mismatch> {
    let mut chunks = buf.chunks_exact(8);
    for (i, chunk) in chunks.by_ref().enumerate() {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(chunk);
        let found = u64::from_ne_bytes(bytes);
        let expected = word(seed, i * 8);
        if found != expected {
            return Err(Mismatch {
                offset: i * 8,
                expected,
                found,
            });
        }
    }
    let tail = chunks.remainder();
    let offset = buf.len() - tail.len();
    let want = word(seed, offset).to_ne_bytes();
    if tail != &want[..tail.len()] {
        let mut found = [0; 8];
        found[..tail.len()].copy_from_slice(tail);
        let mut expected = [0; 8];
        expected[..tail.len()].copy_from_slice(&want[..tail.len()]);
        return Err(Mismatch {
            offset,
            expected: u64::from_ne_bytes(expected),
            found: u64::from_ne_bytes(found),
        });
    }
    Ok(())
}

/// The offset of the first non-zero byte of `buf`, if any.
pub fn find_nonzero(buf: &[u8]) -> Option<usize> {
    // OR-folding whole pages vectorises; only a dirty page is searched byte by byte.
    const STEP: usize = 4096;
    buf.chunks(STEP)
        .position(|chunk| chunk.iter().fold(0u8, |acc, &b| acc | b) != 0)
        .and_then(|page| {
            let start = page * STEP;
            buf[start..].iter().position(|&b| b != 0).map(|i| start + i)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_then_check_passes() {
        for len in [0, 1, 7, 8, 9, 4096, 4099] {
            let mut buf = vec![0u8; len];
            fill(&mut buf, 0xc0de_0000_0000_0001);
            assert_eq!(check(&buf, 0xc0de_0000_0000_0001), Ok(()), "len {len}");
        }
    }

    #[test]
    fn check_finds_the_first_difference() {
        let mut buf = vec![0u8; 8192];
        fill(&mut buf, 7);
        buf[4100] ^= 1;
        let m = check(&buf, 7).unwrap_err();
        assert_eq!(m.offset, 4096);
        assert_ne!(m.expected, m.found);
        assert!(check(&buf, 8).is_err());
        let mut odd = vec![0u8; 11];
        fill(&mut odd, 7);
        odd[10] ^= 0xff;
        assert_eq!(check(&odd, 7).unwrap_err().offset, 8);
    }

    #[test]
    fn swapped_pages_do_not_match() {
        let mut buf = vec![0u8; 8192];
        fill(&mut buf, 1);
        let (a, b) = buf.split_at_mut(4096);
        a.swap_with_slice(b);
        assert!(check(&buf, 1).is_err());
    }

    #[test]
    fn finds_non_zero_bytes() {
        let mut buf = vec![0u8; 3 * 4096 + 5];
        assert_eq!(find_nonzero(&buf), None);
        buf[2 * 4096 + 17] = 1;
        assert_eq!(find_nonzero(&buf), Some(2 * 4096 + 17));
        buf[3 * 4096 + 4] = 1;
        assert_eq!(find_nonzero(&buf), Some(2 * 4096 + 17));
    }
}
