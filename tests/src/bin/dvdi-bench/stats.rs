//! Medians, and the one table the benchmark prints.

use std::time::Duration;

pub fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

pub fn median_f64(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or_default()
}

pub fn us(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 100_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.1} µs")
    }
}

pub fn mib(kib: f64) -> String {
    format!("{:.2} MiB", kib / 1024.0)
}

/// How a figure is judged against its target.
pub enum Target {
    /// ours / reference must be at most this.
    RatioAtMost(f64),
    /// ours must be at most the reference (an absolute limit in the reference column).
    AtMost,
    /// ours must equal the reference.
    Exactly,
}

pub struct Row {
    pub name: String,
    pub ours: String,
    pub reference: String,
    /// ours / reference, when both are numbers.
    pub ratio: Option<f64>,
    pub target: String,
    pub pass: Option<bool>,
}

impl Row {
    /// A row judged by `target` from the numeric figures `ours` and `reference`.
    pub fn judged(
        name: impl Into<String>,
        (ours, ours_text): (f64, String),
        (reference, reference_text): (f64, String),
        target: Target,
    ) -> Row {
        let ratio = (reference > 0.0).then(|| ours / reference);
        let (target, pass) = match target {
            Target::RatioAtMost(t) => (format!("≤ {t}×"), ratio.map(|r| r <= t)),
            Target::AtMost => (format!("≤ {reference_text}"), Some(ours <= reference)),
            Target::Exactly => (format!("= {reference_text}"), Some(ours == reference)),
        };
        Row {
            name: name.into(),
            ours: ours_text,
            reference: reference_text,
            ratio,
            target,
            pass,
        }
    }

    /// Judges the row by `ratio` (the median of per-iteration ratios: each iteration measures
    /// ours and its reference back to back, so a load change hits both) against `at_most`.
    pub fn with_paired_ratio(mut self, ratio: f64, at_most: f64) -> Row {
        self.ratio = Some(ratio);
        self.pass = Some(ratio <= at_most);
        self
    }

    /// Informational figures: no ratio, no target.
    pub fn info(name: impl Into<String>, ours: String, reference: String) -> Row {
        Row {
            name: name.into(),
            ours,
            reference,
            ratio: None,
            target: "—".into(),
            pass: None,
        }
    }

    /// Two figures and their (paired) ratio, shown for information: no target.
    pub fn compared(name: impl Into<String>, ours: String, reference: String, ratio: f64) -> Row {
        Row {
            ratio: Some(ratio),
            ..Row::info(name, ours, reference)
        }
    }

    /// A row that could not be measured.
    pub fn failed(name: impl Into<String>, why: String) -> Row {
        Row {
            name: name.into(),
            ours: why,
            reference: String::new(),
            ratio: None,
            target: String::new(),
            pass: Some(false),
        }
    }
}

/// Prints the rows as one Markdown table (readable in a terminal, pasteable into
/// BENCHMARKS.md). Returns whether every judged row passed.
pub fn print_table(rows: &[Row]) -> bool {
    println!("| measurement | ours | reference | ratio | target | result |");
    println!("|---|---:|---:|---:|---|---|");
    for r in rows {
        let ratio = r.ratio.map(|x| format!("{x:.2}")).unwrap_or_default();
        let result = match r.pass {
            Some(true) => "pass",
            Some(false) => "FAIL",
            None => "",
        };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.name, r.ours, r.reference, ratio, r.target, result
        );
    }
    rows.iter().all(|r| r.pass != Some(false))
}
