//! The figures: one printed line each, and BENCHMARKS.md.

use std::fmt::Write as _;

use crate::procfs::Machine;

/// Whether a figure meets its target; `Info` for figures without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Miss,
    Info,
}

impl Verdict {
    pub fn of(pass: bool) -> Verdict {
        if pass { Verdict::Pass } else { Verdict::Miss }
    }

    fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Miss => "MISS",
            Verdict::Info => "info",
        }
    }
}

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Figure {
    pub name: String,
    pub value: String,
    pub target: String,
    pub verdict: Verdict,
}

impl Figure {
    pub fn new(
        name: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        verdict: Verdict,
    ) -> Figure {
        Figure { name: name.into(), value: value.into(), target: target.into(), verdict }
    }

    /// The line `make bench` prints.
    pub fn line(&self) -> String {
        if self.target.is_empty() {
            format!("{}: {}", self.name, self.value)
        } else {
            format!(
                "{}: {} (target {}) {}",
                self.name,
                self.value,
                self.target,
                self.verdict.word()
            )
        }
    }
}

/// Everything BENCHMARKS.md says.
#[derive(Debug, Clone)]
pub struct Report {
    pub date: String,
    pub machine: Machine,
    pub quick: bool,
    pub commands: Vec<String>,
    pub figures: Vec<Figure>,
    /// `(title, markdown)` sections after the figures.
    pub sections: Vec<(String, String)>,
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "Written by `make bench` (bench/src/main.rs) on {}{}. Every figure is measured on this \
             machine against the compliance simulator and moto on 127.0.0.1, with the release \
             binary run through the Lambda Runtime API; nothing here is estimated unless it says so.\n",
            self.date,
            if self.quick {
                ", **quick mode** (`BENCH_QUICK=1`: every backlog 10× smaller)"
            } else {
                ""
            }
        );
        let _ = writeln!(md, "## Machine\n");
        let _ = writeln!(md, "- CPU: {} × {} (`nproc` {})", m.cpus, m.model, m.cpus);
        let _ = writeln!(md, "- Memory: {:.1} GiB", m.memory_gib);
        let _ = writeln!(md, "- Kernel: Linux {}", m.kernel);
        let _ = writeln!(md, "- Toolchain: {}\n", m.rustc);
        let _ = writeln!(md, "## Figures\n");
        let _ = writeln!(md, "| figure | value | target | |");
        let _ = writeln!(md, "|---|---|---|---|");
        for f in &self.figures {
            let verdict = match f.verdict {
                Verdict::Pass => "**PASS**",
                Verdict::Miss => "**MISS**",
                Verdict::Info => "",
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                escape(&f.name),
                escape(&f.value),
                escape(&f.target),
                verdict
            );
        }
        md.push('\n');
        for (title, body) in &self.sections {
            let _ = writeln!(md, "## {title}\n\n{}\n", body.trim_end());
        }
        let _ = writeln!(md, "## Commands\n");
        md.push_str("```sh\n");
        for c in &self.commands {
            let _ = writeln!(md, "{c}");
        }
        md.push_str("```\n");
        md
    }
}

fn escape(cell: &str) -> String {
    cell.replace('|', "\\|")
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn a_line_names_the_target_and_the_verdict() {
        let f = Figure::new("peak RSS", "31.0 MiB", "≤ 48 MiB", Verdict::Pass);
        assert_eq!(f.line(), "peak RSS: 31.0 MiB (target ≤ 48 MiB) PASS");
        let info = Figure::new("ratio", "8.1:1", "", Verdict::Info);
        assert_eq!(info.line(), "ratio: 8.1:1");
    }
}
