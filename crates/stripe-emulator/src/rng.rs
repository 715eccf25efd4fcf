//! The emulator's small deterministic pseudo-random generator (splitmix64) and the helpers
//! that draw Stripe-looking ids, names and amounts from it.

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// One splitmix64 step: a well-mixed 64-bit value from a counter.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// splitmix64: tiny, fast and fully determined by its seed.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for one purpose, derived from a seed and a path of numbers.
    pub(crate) fn derive(seed: u64, parts: &[u64]) -> Rng {
        let mut s = mix(seed);
        for p in parts {
            s = mix(s ^ mix(*p));
        }
        Rng(s)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (0 when n is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Uniform index into a collection of `len` items (0 when empty).
    pub(crate) fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// Uniform in lo..=hi (lo when hi < lo).
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo) as u64 + 1;
        lo + self.below(span) as i64
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One of `items`; `items` must not be empty (all callers pass constant lists).
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())]
    }

    /// `n` characters of [0-9A-Za-z].
    pub(crate) fn alnum(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| ALNUM[self.index(ALNUM.len())] as char)
            .collect()
    }

    /// `n` upper-case hex digits.
    pub(crate) fn hex_upper(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| b"0123456789ABCDEF"[self.index(16)] as char)
            .collect()
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        let mut a = Rng::derive(42, &[1, 2]);
        let mut b = Rng::derive(42, &[1, 2]);
        let mut c = Rng::derive(42, &[1, 3]);
        let x: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let y: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let z: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(x, y);
        assert_ne!(x, z);
        for _ in 0..1000 {
            let v = a.range(-3, 5);
            assert!((-3..=5).contains(&v));
            let u = a.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert_eq!(a.alnum(14).len(), 14);
    }
}
