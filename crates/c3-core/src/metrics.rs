//! Reconstruction metrics of spec §6. The paper's "precision" is undefined, so
//! both definitions in use are provided, under their own names.

/// Levenshtein distance over Unicode scalar values, O(n·m) time, O(m) memory.
pub fn edit_distance(a: &[char], b: &[char]) -> usize {
    if a.is_empty() {
        return b.len();
    }
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = if ca == cb {
                diag
            } else {
                1 + diag.min(up).min(row[j])
            };
            diag = up;
        }
    }
    row[b.len()]
}

/// Character precision = 1 - edit distance / max(len(reference), len(output)),
/// over Unicode scalar values. 1.0 for two empty strings.
pub fn char_precision(reference: &str, output: &str) -> f64 {
    let r: Vec<char> = reference.chars().collect();
    let o: Vec<char> = output.chars().collect();
    let denom = r.len().max(o.len());
    if denom == 0 {
        return 1.0;
    }
    1.0 - edit_distance(&r, &o) as f64 / denom as f64
}

/// Fox-style word precision: the share of distinct whitespace-separated words of
/// the output that occur in the reference (bag of words, order ignored).
/// 1.0 when the output has no words and the reference has none either, else 0.0
/// for an empty output.
pub fn word_precision(reference: &str, output: &str) -> f64 {
    use std::collections::HashSet;
    let r: HashSet<&str> = reference.split_whitespace().collect();
    let o: HashSet<&str> = output.split_whitespace().collect();
    if o.is_empty() {
        return if r.is_empty() { 1.0 } else { 0.0 };
    }
    o.iter().filter(|w| r.contains(*w)).count() as f64 / o.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_hand_cases() {
        let c = |s: &str| s.chars().collect::<Vec<_>>();
        assert_eq!(edit_distance(&c("kitten"), &c("sitting")), 3);
        assert_eq!(edit_distance(&c(""), &c("abc")), 3);
        assert_eq!(edit_distance(&c("abc"), &c("")), 3);
        assert_eq!(edit_distance(&c("你好世界"), &c("你好地球")), 2);
    }

    #[test]
    fn char_precision_hand_cases() {
        assert_eq!(char_precision("abcd", "abcd"), 1.0);
        assert_eq!(char_precision("abcd", "abce"), 0.75);
        assert_eq!(char_precision("abcd", ""), 0.0);
        assert_eq!(char_precision("ab", "abcd"), 0.5);
        assert_eq!(char_precision("", ""), 1.0);
    }

    #[test]
    fn word_precision_hand_cases() {
        assert_eq!(word_precision("the cat sat", "the cat sat"), 1.0);
        assert_eq!(word_precision("the cat sat", "the dog sat"), 2.0 / 3.0);
        assert_eq!(word_precision("a b", ""), 0.0);
    }
}

/// For each character of `reference`, whether an optimal alignment with `output`
/// gets it wrong (substituted or deleted); inserted output characters are charged
/// to the reference character they precede (or the last one). This locates
/// errors in the reference, for the paper's "sequential loss" analysis.
pub fn reference_errors(reference: &str, output: &str) -> Vec<bool> {
    let r: Vec<char> = reference.chars().collect();
    let o: Vec<char> = output.chars().collect();
    let (n, m) = (r.len(), o.len());
    let mut errs = vec![false; n];
    if n == 0 {
        return errs;
    }
    // Full DP table (u32): passages are short enough; the backtrace needs it.
    let w = m + 1;
    let mut d = vec![0u32; (n + 1) * w];
    for i in 0..=n {
        d[i * w] = i as u32;
    }
    for j in 0..=m {
        d[j] = j as u32;
    }
    for i in 1..=n {
        for j in 1..=m {
            let sub = d[(i - 1) * w + j - 1] + u32::from(r[i - 1] != o[j - 1]);
            d[i * w + j] = sub.min(d[(i - 1) * w + j] + 1).min(d[i * w + j - 1] + 1);
        }
    }
    let (mut i, mut j) = (n, m);
    while i > 0 || j > 0 {
        if i > 0
            && j > 0
            && d[i * w + j] == d[(i - 1) * w + j - 1] + u32::from(r[i - 1] != o[j - 1])
        {
            errs[i - 1] |= r[i - 1] != o[j - 1];
            (i, j) = (i - 1, j - 1);
        } else if i > 0 && d[i * w + j] == d[(i - 1) * w + j] + 1 {
            errs[i - 1] = true;
            i -= 1;
        } else {
            errs[i.min(n - 1)] = true;
            j -= 1;
        }
    }
    errs
}

/// Error rate per decile of position in the reference (10 values; a decile with
/// no characters reports 0).
pub fn decile_error_rates(errors: &[bool]) -> [f64; 10] {
    let mut hit = [0usize; 10];
    let mut tot = [0usize; 10];
    let n = errors.len().max(1);
    for (i, &e) in errors.iter().enumerate() {
        let k = (i * 10 / n).min(9);
        tot[k] += 1;
        hit[k] += usize::from(e);
    }
    std::array::from_fn(|k| {
        if tot[k] == 0 {
            0.0
        } else {
            hit[k] as f64 / tot[k] as f64
        }
    })
}

#[cfg(test)]
mod position_tests {
    use super::*;

    #[test]
    fn errors_are_located_in_the_reference() {
        assert_eq!(reference_errors("abcd", "abcd"), vec![false; 4]);
        assert_eq!(
            reference_errors("abcd", "abxd"),
            vec![false, false, true, false]
        );
        // Output stops early: the tail is lost.
        assert_eq!(
            reference_errors("abcdef", "abc"),
            vec![false, false, false, true, true, true]
        );
        // An insertion is charged to the character it precedes.
        assert_eq!(reference_errors("abc", "aXbc"), vec![false, true, false]);
    }

    #[test]
    fn deciles_attribute_by_relative_position() {
        let mut e = vec![false; 20];
        e[19] = true;
        e[18] = true;
        e[0] = true;
        let r = decile_error_rates(&e);
        assert_eq!(r[0], 0.5);
        assert_eq!(r[9], 1.0);
        assert_eq!(r[5], 0.0);
    }
}
