//! Replaying inputs outside libFuzzer: the committed corpus in tests, and
//! any file (a crash artifact, say) from the command line.

use std::path::{Path, PathBuf};

/// The fuzz crate's folder.
pub fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file below `paths` (folders are walked, sorted by name).
pub fn files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .map(|e| e.expect("a folder entry").path())
                .collect();
            entries.sort();
            out.extend(files(&entries));
        } else if path.is_file() {
            out.push(path.clone());
        }
    }
    out
}

/// Runs `run` on one file, naming the file if it panics.
pub fn replay_file(path: &Path, run: fn(&[u8])) {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let result = std::panic::catch_unwind(|| run(&data));
    if let Err(panic) = result {
        eprintln!("input {} ({} bytes) failed", path.display(), data.len());
        std::panic::resume_unwind(panic);
    }
}

/// Replays `corpus/<target>/` and `regressions/<target>/`; returns how many
/// inputs ran.
pub fn committed(target: &str, run: fn(&[u8])) -> usize {
    let dir = fuzz_dir();
    let inputs = files(&[
        dir.join("corpus").join(target),
        dir.join("regressions").join(target),
    ]);
    for path in &inputs {
        replay_file(path, run);
    }
    inputs.len()
}

/// The `main` of a target built without libFuzzer: replays its arguments,
/// or the committed inputs when there are none.
pub fn main(target: &str, run: fn(&[u8])) {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if args.is_empty() {
        let count = committed(target, run);
        println!("{target}: {count} committed inputs replayed");
    } else {
        let inputs = files(&args);
        for path in &inputs {
            replay_file(path, run);
        }
        println!("{target}: {} inputs replayed", inputs.len());
    }
}
