//! Mutations of valid inputs: byte-level (flips, interesting bytes, deletions,
//! duplications, insertions, splices with another seed) and, for text formats, a
//! structural one: a number replaced by a boundary value (0, -1, 2^31, 2^63, 2^64,
//! 1e308, NaN spellings), which is where length and offset checks live. Seeded, so a
//! run is reproducible from its seed.

use c3_core::presets::SplitMix64;

/// Values that sit on the edges of integer and float types.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "255",
    "65536",
    "2147483647",
    "2147483648",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "-0",
    "1.5",
    "123456789012345678901234567890",
];

const BYTES: &[u8] = &[
    0, 0xff, 0x7f, 0x80, b'"', b'{', b'}', b'[', b']', b',', b':', b'\\', b'9', b'\n',
];

pub struct Mutator {
    rng: SplitMix64,
}

impl Mutator {
    pub fn new(seed: u64) -> Self {
        Mutator {
            rng: SplitMix64::new(seed),
        }
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.rng.next_u64() % n.max(1) as u64) as usize
    }

    /// A mutant of `input`: 1 to 4 mutations, `other` for splices.
    pub fn mutate(&mut self, input: &[u8], other: &[u8]) -> Vec<u8> {
        let mut v = input.to_vec();
        for _ in 0..1 + self.below(4) {
            self.once(&mut v, other);
        }
        v
    }

    fn once(&mut self, v: &mut Vec<u8>, other: &[u8]) {
        let len = v.len();
        match self.below(9) {
            0 if len > 0 => {
                let i = self.below(len);
                v[i] ^= 1 << self.below(8);
            }
            1 if len > 0 => {
                let i = self.below(len);
                v[i] = BYTES[self.below(BYTES.len())];
            }
            2 if len > 0 => {
                let i = self.below(len);
                let n = 1 + self.below((len - i).min(64));
                v.drain(i..i + n);
            }
            3 if len > 0 => {
                let i = self.below(len);
                let n = 1 + self.below((len - i).min(64));
                let piece = v[i..i + n].to_vec();
                let at = self.below(len + 1);
                v.splice(at..at, piece);
            }
            4 => {
                let at = self.below(len + 1);
                let n = 1 + self.below(16);
                let piece: Vec<u8> = (0..n).map(|_| self.rng.next_u64() as u8).collect();
                v.splice(at..at, piece);
            }
            5 if !other.is_empty() && len > 0 => {
                // Head of one input, tail of the other.
                let (a, b) = (self.below(len), self.below(other.len()));
                v.truncate(a);
                v.extend_from_slice(&other[b..]);
            }
            6 | 7 => self.number(v),
            8 if len > 0 => {
                // A truncation: what a half-written file looks like.
                v.truncate(self.below(len));
            }
            _ => {}
        }
    }

    /// Replaces one run of ASCII digits (with its sign) by a boundary value.
    fn number(&mut self, v: &mut Vec<u8>) {
        let runs: Vec<(usize, usize)> = {
            let mut out = Vec::new();
            let mut i = 0;
            while i < v.len() {
                if v[i].is_ascii_digit() {
                    let start = if i > 0 && v[i - 1] == b'-' { i - 1 } else { i };
                    let mut j = i;
                    while j < v.len() && (v[j].is_ascii_digit() || v[j] == b'.') {
                        j += 1;
                    }
                    out.push((start, j));
                    i = j;
                } else {
                    i += 1;
                }
            }
            out
        };
        if runs.is_empty() {
            return;
        }
        let (a, b) = runs[self.below(runs.len())];
        let n = NUMBERS[self.below(NUMBERS.len())];
        v.splice(a..b, n.bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_differ_and_runs_repeat() {
        let seed = br#"{"a": [1, 2, 3], "b": "text"}"#;
        let mut m = Mutator::new(7);
        let xs: Vec<Vec<u8>> = (0..200).map(|_| m.mutate(seed, b"other")).collect();
        assert!(xs.iter().filter(|x| x.as_slice() != seed).count() > 150);
        let mut again = Mutator::new(7);
        let ys: Vec<Vec<u8>> = (0..200).map(|_| again.mutate(seed, b"other")).collect();
        assert_eq!(xs, ys);
        let nums = xs
            .iter()
            .filter(|x| x.windows(10).any(|w| w == b"2147483648"))
            .count();
        assert!(nums > 0, "boundary numbers are substituted");
    }
}
