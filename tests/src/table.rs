//! The matrices' printed tables: one Markdown cell of untrusted text.

/// `text` as one table cell: `|` escaped, line breaks as spaces, cut to at most `max` bytes
/// (on a character boundary) with `…` when longer.
pub fn cell(text: &str, max: usize) -> String {
    let mut cell = text.replace('|', "\\|").replace('\n', " ");
    if cell.len() > max {
        let mut cut = max;
        while !cell.is_char_boundary(cut) {
            cut -= 1;
        }
        cell.truncate(cut);
        cell.push('…');
    }
    cell
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cell_is_one_line_escaped_and_cut_on_a_character() {
        assert_eq!(super::cell("a|b\nc", 10), "a\\|b c");
        assert_eq!(super::cell("ééé", 3), "é…");
    }
}
