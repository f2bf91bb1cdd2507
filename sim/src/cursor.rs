//! Opaque page cursors: a sort position, sealed with a per-simulator secret.
//!
//! A cursor names a POSITION in the feed's sort order, `(created_at, id)`, not a record, so it
//! stays valid while activities are added or revealed around it. The real API's cursors are
//! opaque and clients must never parse them, so ours are deliberately unreadable:
//! `cur_` + base64url(tag ‖ position XOR keystream), where the 16-byte tag is a truncated
//! SHA-256 of the secret and the plain position (it both authenticates the cursor and seeds
//! the keystream). Invariants: a cursor never contains an activity id in clear; the same
//! position always gives the same cursor for the same secret (so same seed, same cursors);
//! anything not made by [`CursorCodec::encode`] with this secret fails to decode.

use sha2::{Digest, Sha256};

use crate::store::Position;

const PREFIX: &str = "cur_";
const TAG_LEN: usize = 16;
const VERSION: u8 = 1;

/// Why a cursor was refused; the API answers every case with the same 400 "invalid cursor".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CursorError {
    #[error("cursor does not start with {PREFIX}")]
    Prefix,
    #[error("cursor is not base64url")]
    Encoding,
    #[error("cursor is too short")]
    Length,
    #[error("cursor was not issued by this simulator")]
    Forged,
}

/// Seals and opens cursors with one secret.
#[derive(Debug, Clone)]
pub(crate) struct CursorCodec {
    secret: [u8; 32],
}

impl CursorCodec {
    /// The codec of the simulator seeded with `seed`.
    pub(crate) fn from_seed(seed: u64) -> Self {
        let digest = Sha256::new()
            .chain_update(b"compliance-sim cursor secret v1")
            .chain_update(seed.to_le_bytes())
            .finalize();
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&digest);
        Self { secret }
    }

    pub(crate) fn encode(&self, position: &Position) -> String {
        let plain = plaintext(position);
        let tag = self.tag(&plain);
        let mut sealed = Vec::with_capacity(TAG_LEN + plain.len());
        sealed.extend_from_slice(&tag);
        sealed.extend(plain.iter().zip(self.keystream(&tag, plain.len())).map(|(p, k)| p ^ k));
        let mut cursor = String::from(PREFIX);
        cursor.push_str(&base64url_encode(&sealed));
        cursor
    }

    pub(crate) fn decode(&self, cursor: &str) -> Result<Position, CursorError> {
        let body = cursor.strip_prefix(PREFIX).ok_or(CursorError::Prefix)?;
        let sealed = base64url_decode(body).ok_or(CursorError::Encoding)?;
        // Tag, version byte and the 16 bytes of the instant at least.
        if sealed.len() < TAG_LEN + 1 + 16 {
            return Err(CursorError::Length);
        }
        let (tag, cipher) = sealed.split_at(TAG_LEN);
        let plain: Vec<u8> =
            cipher.iter().zip(self.keystream(tag, cipher.len())).map(|(c, k)| c ^ k).collect();
        if !constant_time_eq(&self.tag(&plain), tag) {
            return Err(CursorError::Forged);
        }
        parse_plaintext(&plain).ok_or(CursorError::Forged)
    }

    fn tag(&self, plain: &[u8]) -> [u8; TAG_LEN] {
        let digest = Sha256::new()
            .chain_update(self.secret)
            .chain_update(b"tag")
            .chain_update(plain)
            .finalize();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&digest[..TAG_LEN]);
        tag
    }

    fn keystream(&self, tag: &[u8], len: usize) -> Vec<u8> {
        let mut stream = Vec::with_capacity(len + 32);
        let mut block = 0u32;
        while stream.len() < len {
            let digest = Sha256::new()
                .chain_update(self.secret)
                .chain_update(b"stream")
                .chain_update(tag)
                .chain_update(block.to_le_bytes())
                .finalize();
            stream.extend_from_slice(&digest);
            block = block.wrapping_add(1);
        }
        stream.truncate(len);
        stream
    }
}

fn plaintext(position: &Position) -> Vec<u8> {
    let mut plain = Vec::with_capacity(1 + 16 + position.id.len());
    plain.push(VERSION);
    plain.extend_from_slice(&position.nanos.to_be_bytes());
    plain.extend_from_slice(position.id.as_bytes());
    plain
}

fn parse_plaintext(plain: &[u8]) -> Option<Position> {
    let (&version, rest) = plain.split_first()?;
    if version != VERSION || rest.len() < 16 {
        return None;
    }
    let (nanos, id) = rest.split_at(16);
    let nanos = i128::from_be_bytes(nanos.try_into().ok()?);
    let id = String::from_utf8(id.to_vec()).ok()?;
    Some(Position { nanos, id })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (RFC 4648 §5).
fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let sextet = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(B64URL[sextet as usize]));
        }
    }
    out
}

/// Decodes unpadded base64url; `None` on any other character, a dangling sextet or non-zero
/// trailing bits (so each byte string has exactly one accepted encoding).
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let sextets: Vec<u32> = text
        .bytes()
        .map(|c| B64URL.iter().position(|&b| b == c).map(|p| p as u32))
        .collect::<Option<_>>()?;
    let mut out = Vec::with_capacity(sextets.len() * 3 / 4);
    for chunk in sextets.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, s) in chunk.iter().enumerate() {
            n |= s << (18 - 6 * i);
        }
        let bytes = chunk.len() - 1;
        let unused_bits = n & ((1u32 << (24 - 8 * bytes)) - 1);
        if unused_bits != 0 {
            return None;
        }
        for i in 0..bytes {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(nanos: i128, id: &str) -> Position {
        Position { nanos, id: id.to_owned() }
    }

    #[test]
    fn a_cursor_decodes_to_the_position_it_encodes() {
        // GIVEN a codec and a position
        let codec = CursorCodec::from_seed(1);
        let pos = position(1_775_808_550_123_456_000, "activity_01XyDMpzjS89pFZXqSFUBDr6");
        // WHEN encoding then decoding
        let cursor = codec.encode(&pos);
        // THEN the position comes back
        assert_eq!(codec.decode(&cursor), Ok(pos));
    }

    #[test]
    fn a_cursor_never_contains_the_activity_id() {
        // GIVEN a position with a recognisable id
        let codec = CursorCodec::from_seed(1);
        let id = "activity_01XyDMpzjS89pFZXqSFUBDr6";
        // WHEN encoding it
        let cursor = codec.encode(&position(0, id));
        // THEN neither the id nor its base64url form appears
        assert!(cursor.starts_with("cur_"));
        assert!(!cursor.contains(id));
        assert!(!cursor.contains(&base64url_encode(id.as_bytes())[..20]));
        assert!(!cursor.contains("activity_"));
    }

    #[test]
    fn the_same_position_gives_the_same_cursor() {
        // GIVEN two codecs of the same seed
        let (a, b) = (CursorCodec::from_seed(9), CursorCodec::from_seed(9));
        // THEN they agree on a cursor
        let pos = position(5, "activity_x");
        assert_eq!(a.encode(&pos), b.encode(&pos));
    }

    #[test]
    fn a_cursor_of_another_seed_is_refused() {
        // GIVEN a cursor made with seed 1
        let cursor = CursorCodec::from_seed(1).encode(&position(5, "activity_x"));
        // WHEN a simulator with seed 2 decodes it
        // THEN it is refused as forged
        assert_eq!(CursorCodec::from_seed(2).decode(&cursor), Err(CursorError::Forged));
    }

    #[test]
    fn a_tampered_cursor_is_refused() {
        // GIVEN a valid cursor with one character changed
        let codec = CursorCodec::from_seed(1);
        let cursor = codec.encode(&position(5, "activity_x"));
        let mut bytes = cursor.into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        // WHEN decoding
        // THEN it is refused
        assert!(codec.decode(&tampered).is_err());
    }

    #[test]
    fn garbage_is_refused() {
        let codec = CursorCodec::from_seed(1);
        assert_eq!(codec.decode("activity_01XyDMpzjS89pFZXqSFUBDr6"), Err(CursorError::Prefix));
        assert_eq!(codec.decode("cur_!!!"), Err(CursorError::Encoding));
        assert_eq!(codec.decode("cur_AAAA"), Err(CursorError::Length));
        assert_eq!(codec.decode(""), Err(CursorError::Prefix));
    }

    #[test]
    fn base64url_round_trips_every_length() {
        for len in 0..40u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37) ^ 0xA5).collect();
            let text = base64url_encode(&bytes);
            assert!(!text.contains('=') && !text.contains('+') && !text.contains('/'));
            assert_eq!(base64url_decode(&text), Some(bytes));
        }
    }

    #[test]
    fn base64url_refuses_non_canonical_trailing_bits() {
        // "AB" encodes one byte with non-zero unused bits.
        assert_eq!(base64url_decode("AB"), None);
        assert_eq!(base64url_decode("AA"), Some(vec![0]));
    }
}
