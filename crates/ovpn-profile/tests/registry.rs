//! The directive registry against real profiles and the import report: every
//! directive the corpus uses has exactly one entry, and what the report says of a
//! directive is a class its entry allows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ovpn_profile::directives::{self, Class};
use ovpn_profile::{RawDirective, Severity};

fn corpus_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/ovpn");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        println!("notice: corpus not found at {}; skipping", dir.display());
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ovpn" || e == "conf"))
        .collect();
    v.sort();
    v
}

fn walk<'a>(ds: &'a [RawDirective], out: &mut Vec<&'a RawDirective>) {
    for d in ds {
        out.push(d);
        if let Some(b) = &d.block {
            walk(&b.children, out);
        }
    }
}

/// Directive name → (files using it) for every readable corpus file.
fn corpus_names() -> BTreeMap<String, Vec<String>> {
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in corpus_files() {
        let Ok(ds) = ovpn_profile::read_directives(&std::fs::read(&f).unwrap()) else {
            continue;
        };
        let mut all = Vec::new();
        walk(&ds, &mut all);
        let file = f.file_name().unwrap().to_string_lossy().into_owned();
        for d in all {
            let users = names.entry(d.name.clone()).or_default();
            if users.last() != Some(&file) {
                users.push(file.clone());
            }
        }
    }
    names
}

#[test]
fn every_corpus_directive_has_exactly_one_entry_and_class() {
    let names = corpus_names();
    if names.is_empty() {
        return;
    }
    let mut unknown = Vec::new();
    let mut per_class: BTreeMap<String, usize> = BTreeMap::new();
    for (name, files) in &names {
        let entries: Vec<_> = directives::all()
            .filter(|d| d.names.contains(&name.as_str()))
            .collect();
        match entries.as_slice() {
            [d] => *per_class.entry(format!("{:?}", d.class)).or_default() += 1,
            [] if directives::refusal(name, &[]).is_some() => {
                // Another spelling of a refused option (`UP`): refused in any case.
                *per_class.entry("Refused (spelling)".into()).or_default() += 1;
            }
            [] => unknown.push(format!("{name} (in {})", files.join(", "))),
            many => panic!("{name} has {} entries", many.len()),
        }
    }
    println!("corpus directive names: {} {per_class:?}", names.len());
    // Names OpenVPN itself does not know: the report calls them unknown.
    for u in &unknown {
        println!("  not an OpenVPN option: {u}");
    }
    // Only non-options (a `//` comment written the C way) may lack an entry.
    assert!(
        unknown
            .iter()
            .all(|u| !u.starts_with(|c: char| c.is_ascii_alphanumeric())),
        "corpus directives without a registry entry: {unknown:#?}"
    );
}

/// Every class-only entry (no typed field) is reported with exactly its class and reason.
#[test]
fn the_report_gives_each_entry_its_class() {
    for d in directives::all() {
        for name in d.names {
            let text = format!("client\nremote vpn.example 1194\n{name}\n");
            let (_, report) = ovpn_profile::import(text.as_bytes());
            let Some(f) = report.findings.iter().find(|f| f.line == Some(3)) else {
                // `connection` without its block says nothing by itself.
                assert!(d.is_typed(), "{name}: no finding: {report:?}");
                continue;
            };
            if f.severity == Severity::Error || f.severity == Severity::NeedsFile {
                // Needs arguments (or a file): checked below and in the corpus test.
                assert!(d.is_typed(), "{name}: {f:?}");
                continue;
            }
            assert!(
                d.classes().any(|c| c.severity() == f.severity) || f.severity == Severity::Info,
                "{name}: the report says {:?}, the registry {:?}",
                f.severity,
                d.classes().collect::<Vec<_>>()
            );
            if !d.is_typed() {
                assert_eq!(f.severity, d.class.severity(), "{name}");
                if d.class != Class::Refused {
                    assert_eq!(f.message, d.reason, "{name}");
                }
            }
        }
    }
}

/// In every corpus report, each line's verdict is one its registry entry allows.
#[test]
fn corpus_reports_agree_with_the_registry() {
    let mut checked = 0;
    for f in corpus_files() {
        let (_, report) = ovpn_profile::import(&std::fs::read(&f).unwrap());
        for x in report.findings.iter().filter(|x| x.line.is_some()) {
            if matches!(
                x.severity,
                Severity::Error | Severity::NeedsFile | Severity::Info
            ) {
                continue;
            }
            let Some(d) = directives::lookup(&x.directive) else {
                // Unknown options (or another spelling of a refused one).
                assert!(
                    matches!(x.severity, Severity::Unsupported | Severity::Ignored)
                        || directives::refusal(&x.directive, &[]).is_some(),
                    "{}: {x:?}",
                    f.display()
                );
                continue;
            };
            assert!(
                d.classes().any(|c| c.severity() == x.severity),
                "{}: line {:?} `{}` is {:?}, but the registry allows {:?}",
                f.display(),
                x.line,
                x.directive,
                x.severity,
                d.classes().collect::<Vec<_>>()
            );
            checked += 1;
        }
    }
    println!("corpus findings checked against the registry: {checked}");
}
