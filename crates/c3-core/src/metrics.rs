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
            row[j + 1] = if ca == cb { diag } else { 1 + diag.min(up).min(row[j]) };
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
