//! A small seeded PRNG (xoshiro256**, seeded through splitmix64) and the base62 alphabet.
//!
//! Why not a crate: the simulator only needs reproducible, well-spread numbers, not
//! cryptographic ones, and a dependency would tie its output to someone else's versioning.
//! Invariant: the same seed and label give the same sequence forever (tests and demo data
//! depend on it), so the algorithms below must never change.

use sha2::{Digest, Sha256};

/// The digits of base62 ids, in the order used by every id the simulator makes.
pub(crate) const BASE62: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// xoshiro256** (Blackman and Vigna), a fast generator with a 256-bit state.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    state: [u64; 4],
}

impl Rng {
    /// An independent stream for one purpose (`label`) of one simulator (`seed`): data
    /// generation and request handling draw from different streams, so serving a request never
    /// changes the data a later `generate` call makes.
    pub(crate) fn stream(seed: u64, label: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(seed.to_le_bytes())
            .chain_update(label.as_bytes())
            .finalize();
        let mut mix = 0u64;
        for chunk in digest.chunks_exact(8) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            mix ^= u64::from_le_bytes(bytes);
        }
        let mut splitmix = mix;
        let state = [
            splitmix64(&mut splitmix),
            splitmix64(&mut splitmix),
            splitmix64(&mut splitmix),
            splitmix64(&mut splitmix),
        ];
        Self { state }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = &mut self.state;
        let result = s1.wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = *s1 << 17;
        *s2 ^= *s0;
        *s3 ^= *s1;
        *s1 ^= *s2;
        *s0 ^= *s3;
        *s2 ^= t;
        *s3 = s3.rotate_left(45);
        result
    }

    /// A number in `0..bound` (0 when `bound` is 0), by multiply-shift: unbiased enough for
    /// test data.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A number in `0..bound` for spans wider than 64 bits (timestamps in nanoseconds).
    pub(crate) fn below_u128(&mut self, bound: u128) -> u128 {
        if bound == 0 {
            return 0;
        }
        let wide = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        wide % bound
    }

    /// An index into a non-empty slice of `len` elements.
    pub(crate) fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// One element of a non-empty slice.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// One string of a non-empty slice of strings.
    pub(crate) fn pick_str<'a, S: AsRef<str>>(&mut self, items: &'a [S]) -> &'a str {
        self.pick(items).as_ref()
    }

    /// True with probability `numerator / denominator`.
    pub(crate) fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }

    /// `len` random base62 characters.
    pub(crate) fn base62(&mut self, len: usize) -> String {
        (0..len).map(|_| char::from(BASE62[self.index(BASE62.len())])).collect()
    }

    /// `prefix` followed by 24 random base62 characters, the shape of every Anthropic id.
    pub(crate) fn prefixed_id(&mut self, prefix: &str) -> String {
        let mut id = String::with_capacity(prefix.len() + 24);
        id.push_str(prefix);
        id.push_str(&self.base62(24));
        id
    }

    /// `len` random lowercase hex digits.
    pub(crate) fn hex(&mut self, len: usize) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        (0..len).map(|_| char::from(HEX[self.index(HEX.len())])).collect()
    }

    /// A random version 4 UUID in its canonical text form.
    pub(crate) fn uuid(&mut self) -> String {
        let variant = char::from(b"89ab"[self.index(4)]);
        format!(
            "{}-{}-4{}-{}{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            variant,
            self.hex(3),
            self.hex(12)
        )
    }
}

/// splitmix64, used to spread a seed over the xoshiro state and to scramble counters.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `value` in base62, left-padded with `0` to `width` digits (more if it does not fit).
pub(crate) fn base62_fixed(mut value: u64, width: usize) -> String {
    let mut digits = Vec::with_capacity(width);
    while value > 0 {
        digits.push(BASE62[(value % 62) as usize]);
        value /= 62;
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.iter().rev().map(|&d| char::from(d)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_and_label_give_the_same_sequence() {
        // GIVEN two streams with the same seed and label
        let mut a = Rng::stream(42, "data");
        let mut b = Rng::stream(42, "data");
        // WHEN both draw
        // THEN they agree
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn different_labels_give_independent_streams() {
        // GIVEN two streams of one seed with different labels
        let mut a = Rng::stream(42, "data");
        let mut b = Rng::stream(42, "requests");
        // WHEN both draw
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        // THEN the sequences differ
        assert_ne!(xs, ys);
    }

    #[test]
    fn below_stays_in_range() {
        // GIVEN a stream
        let mut rng = Rng::stream(7, "t");
        // WHEN drawing bounded numbers
        // THEN every one is below the bound
        for bound in [1u64, 2, 3, 62, 1000] {
            for _ in 0..1000 {
                assert!(rng.below(bound) < bound);
            }
        }
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn prefixed_ids_have_24_base62_characters() {
        // GIVEN a stream
        let mut rng = Rng::stream(7, "t");
        // WHEN making an id
        let id = rng.prefixed_id("activity_");
        // THEN it is the prefix and 24 base62 characters
        let tail = id.strip_prefix("activity_").unwrap_or_default();
        assert_eq!(tail.len(), 24);
        assert!(tail.bytes().all(|b| BASE62.contains(&b)));
    }

    #[test]
    fn uuids_have_the_canonical_shape() {
        // GIVEN a stream
        let mut rng = Rng::stream(7, "t");
        // WHEN making a UUID
        let uuid = rng.uuid();
        // THEN it has 8-4-4-4-12 hex groups and version 4
        let groups: Vec<&str> = uuid.split('-').collect();
        assert_eq!(groups.iter().map(|g| g.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(groups[2].starts_with('4'));
    }

    #[test]
    fn base62_fixed_pads_and_encodes() {
        assert_eq!(base62_fixed(0, 3), "000");
        assert_eq!(base62_fixed(61, 2), "0z");
        assert_eq!(base62_fixed(62, 2), "10");
        assert_eq!(base62_fixed(u64::MAX, 11).len(), 11);
    }
}
