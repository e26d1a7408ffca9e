//! Every file of `fuzz_targets/` is a registered target, so that `cargo fuzz
//! list`, `run-all.sh` and the corpus replay all see it; the targets of this
//! crate's own entry points have a dictionary and a committed corpus.

use std::path::Path;

#[test]
fn every_target_is_registered() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
    let mut targets: Vec<String> = std::fs::read_dir(dir.join("fuzz_targets"))
        .expect("fuzz_targets/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| {
            p.file_stem()
                .expect("a name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    targets.sort();
    assert!(!targets.is_empty());
    for name in &targets {
        let stanza = format!("[[bin]]\nname = \"{name}\"\npath = \"fuzz_targets/{name}.rs\"\n");
        assert!(
            manifest.contains(&stanza),
            "fuzz/Cargo.toml lacks the stanza of target {name}:\n{stanza}test = true\ndoc = false\nbench = false"
        );
    }
    let stanzas = manifest.matches("[[bin]]").count();
    assert_eq!(
        stanzas,
        targets.len(),
        "a [[bin]] stanza without its file in fuzz_targets/"
    );
}

#[test]
fn the_first_targets_have_a_dictionary_and_a_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in [
        "command_parser",
        "server_ops",
        "hub",
        "transcript",
        "reference_app",
        "channels_decode",
    ] {
        assert!(
            dir.join("dicts").join(format!("{name}.dict")).is_file(),
            "no fuzz/dicts/{name}.dict"
        );
        let corpus = dir.join("corpus").join(name);
        let seeds = std::fs::read_dir(&corpus).map_or(0, |d| d.count());
        assert!(seeds > 0, "no committed corpus in fuzz/corpus/{name}/");
    }
}

#[test]
fn every_target_has_a_committed_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(dir.join("fuzz_targets")).expect("fuzz_targets/") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().expect("a name").to_string_lossy();
        let corpus = dir.join("corpus").join(&*name);
        let seeds = std::fs::read_dir(&corpus).map_or(0, |d| d.count());
        assert!(
            seeds > 0,
            "no committed corpus in fuzz/corpus/{name}/ (seeds/make-seeds.py)"
        );
    }
}
