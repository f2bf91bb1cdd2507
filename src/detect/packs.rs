//! The shipped detection packs, compiled into the binary by `build.rs` from
//! `detections/<pack>/*.yml`, and the choice among them (`DETECTION_PACKS`, `--packs`).
//!
//! Pack names are the folder names; `all` chooses every pack. A name that is no shipped pack is
//! an error rather than silence, so a typo in `DETECTION_PACKS` cannot switch detections off.

use std::collections::BTreeSet;

use super::rules::RuleSource;

include!(concat!(env!("OUT_DIR"), "/shipped_rules.rs"));

/// The packs the design names; the folder set under `detections/` may only add to them.
pub const DESIGN_PACKS: [&str; 6] =
    ["identity", "credentials", "data-exposure", "integrations", "posture", "access-transparency"];

/// Which shipped packs run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackSelection {
    All,
    Only(BTreeSet<String>),
}

/// `DETECTION_PACKS` / `--packs` named a pack that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown detection pack {name:?} (known: all, {known})")]
pub struct UnknownPack {
    pub name: String,
    pub known: String,
}

/// Every pack name: the design's and any other folder shipped.
pub fn known_packs() -> BTreeSet<&'static str> {
    DESIGN_PACKS.into_iter().chain(SHIPPED_RULES.iter().map(|(pack, _, _)| *pack)).collect()
}

impl PackSelection {
    /// Parses a comma-separated list of pack names, `all` (also the meaning of empty) or `none`.
    pub fn parse(text: &str) -> Result<PackSelection, UnknownPack> {
        let names: Vec<&str> = text.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        if names.is_empty() || names.contains(&"all") {
            return Ok(PackSelection::All);
        }
        // Custom rules alone (`--packs none`, or DETECTION_PACKS=none).
        if names == ["none"] {
            return Ok(PackSelection::Only(BTreeSet::new()));
        }
        let known = known_packs();
        let mut chosen = BTreeSet::new();
        for name in names {
            if !known.contains(name) {
                return Err(UnknownPack {
                    name: name.to_owned(),
                    known: known.into_iter().collect::<Vec<_>>().join(", "),
                });
            }
            chosen.insert(name.to_owned());
        }
        Ok(PackSelection::Only(chosen))
    }

    pub fn includes(&self, pack: &str) -> bool {
        match self {
            PackSelection::All => true,
            PackSelection::Only(packs) => packs.contains(pack),
        }
    }
}

/// The shipped rule files of the chosen packs, named `<pack>/<file>`.
pub fn shipped(selection: &PackSelection) -> Vec<(String, &'static str, &'static str)> {
    SHIPPED_RULES
        .iter()
        .filter(|(pack, _, _)| selection.includes(pack))
        .map(|(pack, file, yaml)| (format!("{pack}/{file}"), *pack, *yaml))
        .collect()
}

/// [`shipped`] as sources for [`super::rules::RuleSet::load`].
pub fn sources<'a>(files: &'a [(String, &'static str, &'static str)]) -> Vec<RuleSource<'a>> {
    files.iter().map(|(file, pack, yaml)| RuleSource { pack, file, yaml }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_and_empty_choose_every_pack() {
        // GIVEN "all", "" and a list with all in it THEN each is every pack
        for text in ["all", "", " ", "identity,all"] {
            assert_eq!(PackSelection::parse(text), Ok(PackSelection::All), "{text:?}");
        }
        assert!(PackSelection::All.includes("posture"));
    }

    #[test]
    fn a_list_chooses_only_its_packs() {
        // GIVEN two packs with spaces WHEN parsed THEN exactly those are included
        let chosen = PackSelection::parse("identity, posture").unwrap();
        assert!(chosen.includes("identity") && chosen.includes("posture"));
        assert!(!chosen.includes("credentials"));
    }

    #[test]
    fn none_chooses_no_shipped_pack() {
        // GIVEN "none" THEN no pack is included
        let none = PackSelection::parse("none").unwrap();
        assert!(DESIGN_PACKS.iter().all(|p| !none.includes(p)));
        assert!(shipped(&none).is_empty());
    }

    #[test]
    fn an_unknown_pack_is_an_error_naming_it() {
        // GIVEN a typo WHEN parsed THEN the error names it and the known packs
        let e = PackSelection::parse("identity,postrue").unwrap_err();
        assert_eq!(e.name, "postrue");
        assert!(e.known.contains("posture"), "{e}");
    }

    #[test]
    fn every_shipped_rule_is_in_a_chosen_pack_only() {
        // GIVEN one pack chosen WHEN the shipped files are listed THEN they are all of that pack
        let only = PackSelection::parse("identity").unwrap();
        assert!(shipped(&only).iter().all(|(file, pack, _)| {
            *pack == "identity" && file.starts_with("identity/") && file.ends_with(".yml")
        }));
        assert_eq!(shipped(&PackSelection::All).len(), SHIPPED_RULES.len());
    }
}
