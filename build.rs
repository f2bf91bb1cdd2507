//! Embeds the shipped detection packs: every `detections/<pack>/*.yml` (not `pipelines/` nor `dist/`) becomes one entry of
//! `SHIPPED_RULES` (pack, file name, YAML text) in `$OUT_DIR/shipped_rules.rs`, sorted by pack
//! and file so the binary is reproducible. `*.tests.ndjson` and other files are not rules.

use std::fmt::Write as _;
use std::path::Path;

fn main() -> std::io::Result<()> {
    println!("cargo::rerun-if-changed=detections");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("detections");
    let mut entries = Vec::new();
    if root.is_dir() {
        for pack in std::fs::read_dir(&root)? {
            let pack = pack?;
            // Only the pack folders hold rules: pySigma's pipelines and the generated conversions
            // live beside them.
            let name = pack.file_name();
            if !pack.file_type()?.is_dir() || name == "pipelines" || name == "dist" {
                continue;
            }
            println!("cargo::rerun-if-changed={}", pack.path().display());
            for file in std::fs::read_dir(pack.path())? {
                let path = file?.path();
                if path.extension().is_some_and(|e| e == "yml") {
                    let pack_name = pack.file_name().to_string_lossy().into_owned();
                    let file_name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    entries.push((pack_name, file_name, path));
                }
            }
        }
    }
    entries.sort();
    let mut out = String::from("pub const SHIPPED_RULES: &[(&str, &str, &str)] = &[\n");
    for (pack, file, path) in &entries {
        println!("cargo::rerun-if-changed={}", path.display());
        let _ = writeln!(
            out,
            "    ({pack:?}, {file:?}, include_str!({:?})),",
            path.display().to_string()
        );
    }
    out.push_str("];\n");
    let out_dir =
        std::env::var_os("OUT_DIR").ok_or_else(|| std::io::Error::other("OUT_DIR unset"))?;
    std::fs::write(Path::new(&out_dir).join("shipped_rules.rs"), out)
}
