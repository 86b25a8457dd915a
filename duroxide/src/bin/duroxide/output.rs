//! What commands print: aligned tables for people, JSON for scripts, and the one place
//! that writes to stdout (a closed pipe, as in `duroxide list | head`, ends quietly).

use crate::error::CliError;
use serde::Serialize;
use std::io::Write;

/// Writes `text` to stdout.
pub fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::refused(format!("cannot write the output: {e}"), "")),
    }
}

/// Prints `value` as pretty JSON (one document, newline-terminated).
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::refused(format!("cannot encode the output as JSON: {e}"), ""))?;
    print(&format!("{text}\n"))
}

/// A table with a header row; columns are padded to their widest cell.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Self { headers: headers.to_vec(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.headers.len());
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, each line ending in a newline; the last column is not padded.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `text` cut to `max` characters (with `…`), on one line.
pub fn clip(text: &str, max: usize) -> String {
    let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A "key: value" block, keys aligned.
pub struct Fields {
    pairs: Vec<(&'static str, String)>,
}

impl Fields {
    pub fn new() -> Self {
        Self { pairs: Vec::new() }
    }

    pub fn add(&mut self, key: &'static str, value: impl Into<String>) {
        self.pairs.push((key, value.into()));
    }

    pub fn add_opt(&mut self, key: &'static str, value: Option<impl Into<String>>) {
        if let Some(v) = value {
            self.add(key, v);
        }
    }

    pub fn render(&self) -> String {
        let width = self.pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
        let mut out = String::new();
        for (k, v) in &self.pairs {
            out.push_str(&format!("{:<width$} {v}\n", format!("{k}:")));
        }
        out
    }
}

/// `n` and the noun, plural unless `n` is 1 (`1 instance`, `3 instances`).
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["ID", "STATE"]);
        t.row(vec!["order-1".into(), "Completed".into()]);
        t.row(vec!["o".into(), "Running".into()]);
        assert_eq!(t.render(), "ID       STATE\norder-1  Completed\no        Running\n");
    }

    #[test]
    fn counts_read_as_words() {
        assert_eq!(count(1u64, "instance"), "1 instance");
        assert_eq!(count(0u64, "instance"), "0 instances");
    }

    #[test]
    fn clip_cuts_long_text_to_one_line() {
        assert_eq!(clip("a\nb", 10), "a b");
        assert_eq!(clip("abcdefghij", 5), "abcd…");
    }
}
