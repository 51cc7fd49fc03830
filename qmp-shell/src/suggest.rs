//! "Did you mean ...?": the closest name by edit distance.

/// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions).
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for (i, row) in d.chunks_mut(w).enumerate() {
        row[0] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a likely typo
/// (distance at most a third of the word's length, at least 1 and at most 3); a word
/// that begins some candidates suggests the shortest of them unless a candidate is
/// one edit away.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    let mut sorted_word: Vec<char> = word.chars().collect();
    sorted_word.sort_unstable();
    // Ties: a permutation of the same letters (a transposition typo) first, then the
    // closest length.
    let rank = |c: &str, d: usize| {
        let mut sc: Vec<char> = c.chars().collect();
        sc.sort_unstable();
        (d, sc != sorted_word, c.len().abs_diff(word.len()))
    };
    let mut best: Option<((usize, bool, usize), &str)> = None;
    let mut prefixed: Vec<&str> = Vec::new();
    for c in candidates {
        if c.starts_with(word) && !word.is_empty() {
            prefixed.push(c);
        }
        let d = distance(word, c);
        if d <= limit {
            let r = rank(c, d);
            if best.is_none_or(|(br, _)| r < br) {
                best = Some((r, c));
            }
        }
    }
    // A word that starts some names was probably cut short: the shortest of those,
    // unless a one-letter typo explains it.
    prefixed.sort_by_key(|c| (c.len(), *c));
    match best {
        Some(((d, _, _), c)) if d <= 1 || prefixed.is_empty() => Some(c),
        _ => prefixed.first().copied().or(best.map(|(_, c)| c)),
    }
}
