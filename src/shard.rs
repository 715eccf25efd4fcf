//! Shards: `read … --shard I/N` reads only the connected accounts that a stable hash of
//! the account id assigns to shard `I` (from 0) of `N`, so `N` processes, on as many
//! machines, read every account exactly once between them.
//!
//! The hash is 64-bit FNV-1a of the id's bytes, modulo `N`: it depends on nothing but the
//! id (not on the order Stripe lists accounts, nor on how many there are), so an account
//! linked later lands in exactly one shard, and every other account stays where it was.
//!
//! Shards share one output location: records of an account go to its own Hive partition
//! (`<stream>/stripe_account=acct_…/`), which only its shard writes; the state, status
//! and lock of shard `I` of `N` are files of their own ([`Shard::state_file`] …). The
//! state of an account is kept per account inside its shard's state file. Changing `N`
//! moves accounts to other shards, which read them again in full: the latest-version
//! views settle the repeated rows.

use std::fmt;
use std::str::FromStr;

/// Shard `index` of `count` (`0 <= index < count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("--shard takes I/N with 0 <= I < N (e.g. 0/4); got `{text}`");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = index.trim().parse().map_err(|_| bad())?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// 64-bit FNV-1a: tiny, stable across versions and platforms (unlike std's hasher).
pub fn stable_hash(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl Shard {
    /// Whether this shard reads `account`.
    pub fn includes(&self, account: &str) -> bool {
        stable_hash(account) % u64::from(self.count) == u64::from(self.index)
    }

    /// `state.shard-I-of-N.json`: this shard's state, beside the data.
    pub fn state_file(&self) -> String {
        format!("state.shard-{}-of-{}.json", self.index, self.count)
    }

    /// `status.shard-I-of-N.json`.
    pub fn status_file(&self) -> String {
        format!("status.shard-{}-of-{}.json", self.index, self.count)
    }

    /// `lock.shard-I-of-N.json`.
    pub fn lock_file(&self) -> String {
        format!("lock.shard-{}-of-{}.json", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "1", "a/4", "0/0", "-1/3"] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.contains("--shard") && err.contains(bad), "{err}");
        }
    }

    /// Every account is in exactly one shard, the split is even enough, and the hash is
    /// the documented one (a fixed value: it must never change between versions).
    #[test]
    fn every_account_in_exactly_one_shard() {
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        let shards: Vec<Shard> = (0..4).map(|index| Shard { index, count: 4 }).collect();
        let mut sizes = [0usize; 4];
        for n in 0..1000 {
            let id = format!("acct_{n:016}");
            let owners: Vec<&Shard> = shards.iter().filter(|s| s.includes(&id)).collect();
            assert_eq!(owners.len(), 1, "{id}");
            sizes[owners[0].index as usize] += 1;
        }
        assert!(sizes.iter().all(|&n| n > 150), "{sizes:?}");
    }
}
