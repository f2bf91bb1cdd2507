//! `anthropic-compliance-detector evaluate [--packs P,Q] [--rules DIR]... FILE...`: the detector's
//! engine over local NDJSON files (plain or `.gz`, `-` for stdin), each alert printed as one JSON
//! object a line on stdout, exactly as the function would publish and record it. How a user tries
//! a rule before deploying it, and how outside tests judge the packs.
//!
//! Files are evaluated in the order given with correlation windows held across them (one
//! session). Exit status: 0 done; 1 an input file could not be read or holds a line that is not
//! an activity; 2 a usage error or a rule that does not load (named on stderr).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::archive::inflate::Inflater;
use crate::detect::packs::{self, PackSelection};
use crate::detect::rules::{CUSTOM_PACK, RuleSet, RuleSource};
use crate::detect::session::Session;
use crate::error::error_chain;

pub const USAGE: &str =
    "usage: anthropic-compliance-detector evaluate [--packs all|none|P,Q] [--rules DIR]... FILE...
  Evaluates the shipped Sigma packs (and the rules under each DIR) over activity NDJSON files
  (plain or .gz; - for stdin) and prints each alert as one JSON line.
  Without arguments the binary serves Lambda invocations.";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluateArgs {
    pub packs: PackSelection,
    pub rule_dirs: Vec<PathBuf>,
    pub files: Vec<PathBuf>,
}

impl EvaluateArgs {
    /// Parses the arguments after `evaluate`.
    pub fn parse(args: &[String]) -> Result<EvaluateArgs, String> {
        let mut packs = PackSelection::All;
        let mut rule_dirs = Vec::new();
        let mut files = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--packs" => {
                    let value = args.next().ok_or("--packs needs a value")?;
                    packs = PackSelection::parse(value).map_err(|e| e.to_string())?;
                }
                "--rules" => {
                    rule_dirs.push(PathBuf::from(args.next().ok_or("--rules needs a directory")?))
                }
                "-" => files.push(PathBuf::from("-")),
                flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
                file => files.push(PathBuf::from(file)),
            }
        }
        if files.is_empty() {
            return Err("no input file".to_owned());
        }
        Ok(EvaluateArgs { packs, rule_dirs, files })
    }
}

/// Every `.yml`/`.yaml` file under `dir`, recursively, sorted.
fn rule_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            rule_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Runs `evaluate`; the process's exit status.
pub fn evaluate(args: &[String], stdout: &mut impl Write, stderr: &mut impl Write) -> i32 {
    let args = match EvaluateArgs::parse(args) {
        Ok(args) => args,
        Err(e) => {
            let _ = writeln!(stderr, "{e}\n{USAGE}");
            return 2;
        }
    };
    let mut custom = Vec::new();
    for dir in &args.rule_dirs {
        let mut paths = Vec::new();
        if let Err(e) = rule_files(dir, &mut paths) {
            let _ = writeln!(stderr, "{}: {e}", dir.display());
            return 2;
        }
        for path in paths {
            match std::fs::read_to_string(&path) {
                Ok(text) => custom.push((path.display().to_string(), text)),
                Err(e) => {
                    let _ = writeln!(stderr, "{}: {e}", path.display());
                    return 2;
                }
            }
        }
    }
    let shipped = packs::shipped(&args.packs);
    let sources = packs::sources(&shipped)
        .into_iter()
        .chain(custom.iter().map(|(file, yaml)| RuleSource { pack: CUSTOM_PACK, file, yaml }));
    let (rules, errors) = RuleSet::load(sources);
    if !errors.is_empty() {
        for e in &errors {
            let _ = writeln!(stderr, "{}", error_chain(e));
        }
        return 2;
    }
    run(&rules, &args.files, stdout, stderr)
}

/// Alert lines are written to stdout in chunks of this size.
const OUT_BUFFER_BYTES: usize = 64 * 1024;

/// Gzip files up to this size are read whole (the archive's objects are far smaller).
const WHOLE_FILE_BYTES: u64 = 16 << 20;

fn run(
    rules: &RuleSet,
    files: &[PathBuf],
    stdout: &mut impl Write,
    stderr: &mut impl Write,
) -> i32 {
    let mut session = Session::new(rules);
    let mut inflater = Inflater::new();
    let mut body = Vec::new();
    let mut alerts = 0usize;
    for path in files {
        let name = path.display().to_string();
        let input: Box<dyn Read> = if name == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            match std::fs::File::open(path) {
                Ok(file) => Box::new(file),
                Err(e) => {
                    let _ = writeln!(stderr, "{name}: {e}");
                    return 1;
                }
            }
        };
        // A gzip object of the archive's size is read whole and decompressed whole, as the
        // function reads one; anything else is streamed, whatever its size.
        let small_gzip = name.ends_with(".gz")
            && std::fs::metadata(path).is_ok_and(|m| m.len() <= WHOLE_FILE_BYTES);
        let reader: Box<dyn BufRead> = if small_gzip {
            body.clear();
            if let Err(e) = input.take(WHOLE_FILE_BYTES + 1).read_to_end(&mut body) {
                let _ = writeln!(stderr, "{name}: {e}");
                return 1;
            }
            match inflater.lines(&name, &body) {
                Ok(reader) => reader,
                Err(e) => {
                    let _ = writeln!(stderr, "{name}: {e}");
                    return 1;
                }
            }
        } else if name.ends_with(".gz") {
            Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(input)))
        } else {
            Box::new(BufReader::new(input))
        };
        match session.evaluate(&name, reader) {
            // A file's alerts go out together, a few writes rather than one a line (stdout is
            // line-buffered, and an archive's worth of files finds tens of thousands).
            Ok(found) => {
                let mut out = std::io::BufWriter::with_capacity(OUT_BUFFER_BYTES, &mut *stdout);
                for alert in found {
                    alerts += 1;
                    match alert.to_json() {
                        Ok(line) => {
                            if writeln!(out, "{line}").is_err() {
                                return 1;
                            }
                        }
                        Err(e) => {
                            let _ = writeln!(stderr, "alert {}: {e}", alert.alert_id);
                            return 1;
                        }
                    }
                }
                if out.flush().is_err() {
                    return 1;
                }
            }
            Err(e) => {
                let _ = writeln!(stderr, "{}", error_chain(&e));
                return 1;
            }
        }
    }
    let _ = writeln!(
        stderr,
        "{} rules, {} activities in {} file(s), {alerts} alert(s)",
        rules.len(),
        session.activities,
        files.len()
    );
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn arguments_choose_packs_rule_dirs_and_files() {
        // GIVEN every option WHEN parsed THEN each lands where it belongs
        let parsed =
            EvaluateArgs::parse(&args(&["--packs", "identity", "--rules", "mine", "a.json", "-"]))
                .unwrap();
        assert_eq!(parsed.rule_dirs, [PathBuf::from("mine")]);
        assert_eq!(parsed.files, [PathBuf::from("a.json"), PathBuf::from("-")]);
        assert!(parsed.packs.includes("identity") && !parsed.packs.includes("posture"));
        // AND mistakes are refused
        assert!(EvaluateArgs::parse(&args(&["--packs"])).is_err());
        assert!(EvaluateArgs::parse(&args(&["--verbose", "a"])).is_err());
        assert!(EvaluateArgs::parse(&args(&[])).is_err());
    }

    #[test]
    fn a_rule_that_does_not_load_exits_2_naming_its_file() {
        // GIVEN a rules directory with a broken rule
        let dir = std::env::temp_dir().join(format!("detector-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("broken.yml"), "title: [unclosed").unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        // WHEN evaluate runs
        let code =
            evaluate(&args(&["--rules", dir.to_str().unwrap(), "x.json"]), &mut out, &mut err);
        std::fs::remove_dir_all(&dir).unwrap();
        // THEN it exits 2 and names the file
        assert_eq!(code, 2);
        assert!(
            String::from_utf8_lossy(&err).contains("broken.yml"),
            "{}",
            String::from_utf8_lossy(&err)
        );
    }
}
