//! Objects → NDJSON: a gzip object decompressed whole with libdeflate into a buffer kept from
//! object to object, every member of it, or streamed when it is larger than that buffer may be.
//!
//! The collector writes objects of at most [`super::encode::MAX_OBJECT_RAW_BYTES`] of NDJSON, one
//! gzip member each; libdeflate decompresses such a buffer about twice as fast as a streaming
//! inflater, and reading lines from one contiguous buffer copies nothing. Anything else a bucket
//! may hold is still read exactly: several members one after another (`cat a.gz b.gz`), and an
//! object whose NDJSON is larger than [`MAX_WHOLE_BYTES`] (an older collector's busy hour, another
//! producer), which is streamed line by line instead.

use std::io::{self, BufRead, BufReader};
use std::ptr::NonNull;

use flate2::read::MultiGzDecoder;
use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_free_decompressor,
    libdeflate_gzip_decompress_ex, libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE,
    libdeflate_result_LIBDEFLATE_SUCCESS,
};

/// The most NDJSON an object is decompressed into at once; larger is streamed.
pub const MAX_WHOLE_BYTES: usize = 16 << 20;

/// The buffer is given back after an object that needed more than this.
const KEEP_BYTES: usize = 4 << 20;

/// A libdeflate decompressor and the buffer it writes into.
pub struct Inflater {
    decompressor: NonNull<libdeflate_decompressor>,
    out: Vec<u8>,
}

// SAFETY: a libdeflate decompressor holds no thread-local or shared state; it is only used
// through `&mut self`, so one thread at a time.
unsafe impl Send for Inflater {}

impl Default for Inflater {
    fn default() -> Self {
        Inflater::new()
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: allocated by `libdeflate_alloc_decompressor` in `new`, freed once, here.
        unsafe { libdeflate_free_decompressor(self.decompressor.as_ptr()) }
    }
}

impl Inflater {
    /// A decompressor (about 10 KiB) with an empty buffer. Out of memory aborts, as any Rust
    /// allocation does.
    pub fn new() -> Inflater {
        // SAFETY: no preconditions; a null result means out of memory.
        let p = unsafe { libdeflate_alloc_decompressor() };
        let decompressor = NonNull::new(p).unwrap_or_else(|| {
            std::alloc::handle_alloc_error(std::alloc::Layout::new::<[u8; 10 << 10]>())
        });
        Inflater { decompressor, out: Vec::new() }
    }

    /// The NDJSON of `body`: decompressed whole when its key ends in `.gz` (or streamed when
    /// larger than [`MAX_WHOLE_BYTES`]), as is otherwise.
    pub fn lines<'a>(&'a mut self, key: &str, body: &'a [u8]) -> io::Result<Box<dyn BufRead + 'a>> {
        if !key.ends_with(".gz") {
            return Ok(Box::new(body));
        }
        match self.whole(body)? {
            Some(n) => Ok(Box::new(&self.out[..n])),
            None => Ok(Box::new(BufReader::with_capacity(64 << 10, MultiGzDecoder::new(body)))),
        }
    }

    /// Decompresses every member of `gz` into `self.out`; the bytes written, or `None` when they
    /// would be more than [`MAX_WHOLE_BYTES`].
    fn whole(&mut self, gz: &[u8]) -> io::Result<Option<usize>> {
        if self.out.capacity() > KEEP_BYTES {
            self.out = Vec::new();
        }
        // The last member's size, from its trailer: the whole output for a single member.
        let last_size = gz
            .len()
            .checked_sub(4)
            .and_then(|at| gz.get(at..))
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, |b| u32::from_le_bytes(b) as usize);
        if last_size > MAX_WHOLE_BYTES {
            return Ok(None);
        }
        let mut want = last_size.max(4096);
        let (mut read, mut written) = (0, 0);
        while read < gz.len() {
            if self.out.len() < written + want.min(MAX_WHOLE_BYTES - written) {
                self.out.resize(written + want.min(MAX_WHOLE_BYTES - written), 0);
            }
            let (mut used, mut made) = (0usize, 0usize);
            let rest = &gz[read..];
            let room = &mut self.out[written..];
            // SAFETY: the pointers and lengths are those of live slices (`rest` read-only, `room`
            // writable); libdeflate writes at most `room.len()` bytes and only through `room`.
            let result = unsafe {
                libdeflate_gzip_decompress_ex(
                    self.decompressor.as_ptr(),
                    rest.as_ptr().cast(),
                    rest.len(),
                    room.as_mut_ptr().cast(),
                    room.len(),
                    &mut used,
                    &mut made,
                )
            };
            if result == libdeflate_result_LIBDEFLATE_SUCCESS {
                read += used;
                written += made;
                // The next member is of unknown size: start from what is left of the buffer.
                want = 4096;
            } else if result == libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE {
                if written + room.len() >= MAX_WHOLE_BYTES {
                    return Ok(None);
                }
                want = (room.len() * 2).max(4096);
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("not gzip, or corrupt, at byte {read} of {}", gz.len()),
                ));
            }
        }
        Ok(Some(written))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    fn read_all(inflater: &mut Inflater, key: &str, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        inflater.lines(key, body).unwrap().read_to_end(&mut out).unwrap();
        out
    }

    fn ndjson(lines: usize, seed: usize) -> Vec<u8> {
        (0..lines)
            .flat_map(|i| format!("{{\"id\":\"a{i}\",\"n\":{}}}\n", i * 7919 + seed).into_bytes())
            .collect()
    }

    #[test]
    fn one_member_is_read_whole_with_the_buffer_kept() {
        let text = ndjson(20_000, 1);
        let mut inflater = Inflater::new();
        assert_eq!(read_all(&mut inflater, "k.json.gz", &gzip(&text)), text);
        assert!(inflater.out.capacity() >= text.len());
        // a second, smaller object reuses it
        let small = ndjson(10, 2);
        assert_eq!(read_all(&mut inflater, "k.json.gz", &gzip(&small)), small);
    }

    #[test]
    fn every_member_is_read_even_when_the_last_is_small() {
        // GIVEN three members, the last one much smaller than the first
        let (a, b, c) = (ndjson(30_000, 1), ndjson(5, 2), ndjson(1, 3));
        let body = [gzip(&a), gzip(&b), gzip(&c)].concat();
        // THEN all of them, in order
        let mut inflater = Inflater::new();
        assert_eq!(read_all(&mut inflater, "k.json.gz", &body), [a, b, c].concat());
        // AND two identical members are both read
        let twice = [gzip(&ndjson(3, 4)), gzip(&ndjson(3, 4))].concat();
        assert_eq!(read_all(&mut inflater, "k.json.gz", &twice), ndjson(3, 4).repeat(2));
    }

    #[test]
    fn an_object_larger_than_the_whole_limit_is_streamed() {
        // GIVEN 20 MiB of NDJSON in one member, and the same in two members and a small third
        let text: Vec<u8> = b"{\"id\":\"x\"}\n".repeat((20 << 20) / 11);
        let (half, rest) = text.split_at(text.len() / 2);
        let members = [gzip(half), gzip(rest), gzip(b"{}\n")].concat();
        let mut inflater = Inflater::new();
        // THEN each is read in full (streamed: its trailer says so, or the buffer filled up)
        assert_eq!(read_all(&mut inflater, "k.json.gz", &gzip(&text)), text);
        assert!(inflater.out.is_empty(), "refused by its trailer before any decompression");
        assert_eq!(read_all(&mut inflater, "k.json.gz", &members), [&text[..], b"{}\n"].concat());
        // AND the buffer it filled is not kept for the next object
        assert_eq!(read_all(&mut inflater, "k.json.gz", &gzip(b"{}\n")), b"{}\n");
        assert!(inflater.out.capacity() <= KEEP_BYTES);
    }

    #[test]
    fn plain_objects_are_read_as_they_are_and_corrupt_gzip_is_an_error() {
        let mut inflater = Inflater::new();
        assert_eq!(read_all(&mut inflater, "k.ndjson", b"{}\n"), b"{}\n");
        let mut body = gzip(&ndjson(100, 1));
        let at = body.len() / 2;
        body[at] ^= 0xff;
        // (found before any line is read, or at the latest while reading: never silently short)
        let mut fails = |body: &[u8]| {
            inflater
                .lines("k.json.gz", body)
                .and_then(|mut r| r.read_to_end(&mut Vec::new()))
                .is_err()
        };
        assert!(fails(&body));
        assert!(fails(b"not gzip"));
        assert!(fails(&gzip(&ndjson(100, 1))[..40]), "truncated");
        // an empty gzip body is no lines
        assert_eq!(read_all(&mut inflater, "k.json.gz", b""), b"");
    }
}
