//! A line diff of an expected and a got text, unified style: ` ` for a line
//! in both, `-` for a line only expected, `+` for a line only got. Test
//! texts are a few lines, so the whole of both is shown, found by the
//! longest common subsequence of lines.

/// One line of a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DiffLine<'a> {
    /// In both texts.
    Same(&'a str),
    /// Only in the expected text.
    Expected(&'a str),
    /// Only in the got text.
    Got(&'a str),
}

/// The lines of `text`, each with its line ending (a last line without one
/// is marked so by its lack of `\n`).
fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// The diff of `expected` and `got`, line by line.
pub(crate) fn diff<'a>(expected: &'a str, got: &'a str) -> Vec<DiffLine<'a>> {
    let (a, b) = (lines(expected), lines(got));
    // common[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut common = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            common[i][j] = if a[i] == b[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push(DiffLine::Same(a[i]));
            i += 1;
            j += 1;
        } else if j == b.len() || (i < a.len() && common[i + 1][j] >= common[i][j + 1]) {
            out.push(DiffLine::Expected(a[i]));
            i += 1;
        } else {
            out.push(DiffLine::Got(b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::DiffLine::{Expected, Got, Same};
    use super::*;

    #[test]
    fn lines_in_both_are_kept_in_order() {
        assert_eq!(
            diff("a\nb\nc\n", "a\nx\nc\n"),
            vec![Same("a\n"), Expected("b\n"), Got("x\n"), Same("c\n")]
        );
        assert_eq!(diff("a\n", "a\n"), vec![Same("a\n")]);
        assert_eq!(diff("", "a"), vec![Got("a")]);
        assert_eq!(diff("a\n", ""), vec![Expected("a\n")]);
    }

    #[test]
    fn a_missing_final_newline_is_a_difference() {
        assert_eq!(
            diff("a\nb\n", "a\nb"),
            vec![Same("a\n"), Expected("b\n"), Got("b")]
        );
    }
}
