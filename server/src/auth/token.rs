//! Token format: `strata_`, then 43 base62 characters carrying 256 random
//! bits, then a 6-character base62 CRC-32 checksum, so leaked tokens are
//! recognisable and typos are caught before any lookup. Only the SHA-256
//! of a token is ever kept in memory or on disk (besides `admin.token`).

use sha2::{Digest, Sha256};

pub const PREFIX: &str = "strata_";
const BODY_LEN: usize = 43;
const CHECK_LEN: usize = 6;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Base62 of a big-endian byte string, left-padded to `width`.
fn base62(bytes: &[u8], width: usize) -> String {
    let mut digits = bytes.to_vec();
    let mut out = Vec::new();
    while digits.iter().any(|&d| d != 0) {
        let mut rem = 0u32;
        for d in digits.iter_mut() {
            let acc = (rem << 8) | u32::from(*d);
            *d = (acc / 62) as u8;
            rem = acc % 62;
        }
        out.push(ALPHABET[rem as usize]);
    }
    while out.len() < width {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// CRC-32 (IEEE); tiny and only used on short strings.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn checksum(body: &str) -> String {
    base62(&crc32(body.as_bytes()).to_be_bytes(), CHECK_LEN)
}

/// A new token from 32 bytes of OS randomness.
pub fn generate() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let body = base62(&bytes, BODY_LEN);
    Ok(format!("{PREFIX}{body}{}", checksum(&body)))
}

/// Is `token` shaped like ours with a matching checksum?
pub fn well_formed(token: &str) -> bool {
    let Some(rest) = token.strip_prefix(PREFIX) else { return false };
    if rest.len() != BODY_LEN + CHECK_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (body, check) = rest.split_at(BODY_LEN);
    checksum(body) == check
}

/// A recognisable but useless prefix for listings: `strata_ab12…`.
pub fn masked(token: &str) -> String {
    let head: String = token.chars().take(PREFIX.len() + 4).collect();
    format!("{head}…")
}

/// SHA-256 of a token, the only form ever stored.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Comparison whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_well_formed_and_distinct() {
        let a = generate().expect("rng");
        let b = generate().expect("rng");
        assert_ne!(a, b);
        assert_eq!(a.len(), PREFIX.len() + BODY_LEN + CHECK_LEN);
        assert!(well_formed(&a) && well_formed(&b));
    }

    #[test]
    fn typos_fail_the_checksum() {
        let t = generate().expect("rng");
        let mut chars: Vec<char> = t.chars().collect();
        let i = PREFIX.len() + 5;
        chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert!(!well_formed(&typo));
        assert!(!well_formed("strata_short"));
        assert!(!well_formed("ghp_xxxxxxxx"));
    }

    #[test]
    fn hashing_and_comparison() {
        assert!(constant_time_eq(&hash("a"), &hash("a")));
        assert!(!constant_time_eq(&hash("a"), &hash("b")));
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
