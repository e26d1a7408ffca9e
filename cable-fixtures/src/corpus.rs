//! Finding transcripts on disk.

use std::path::{Path, PathBuf};

use crate::Error;

/// Folders of other protocols' transcripts (another format: see [`crate::jac`]), never
/// taken for Action Cable transcripts when a folder is walked.
pub const OTHER_PROTOCOL_FOLDERS: [&str; 1] = ["jac"];

/// Expands files and folders into transcript files: a file stands for itself, a folder for
/// every `*.jsonl` below it (recursively, but for [`OTHER_PROTOCOL_FOLDERS`]), sorted by path.
/// A path that does not exist is an error, as is a folder without transcripts.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let before = out.len();
            walk(p, &mut out)?;
            if out.len() == before {
                return Err(Error::Usage(format!("{}: no *.jsonl files", p.display())));
            }
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(Error::Usage(format!(
                "{}: no such file or folder",
                p.display()
            )));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Usage(format!("{}: {e}", dir.display()));
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if p.file_name()
                .is_some_and(|n| OTHER_PROTOCOL_FOLDERS.iter().any(|o| n == *o))
            {
                continue;
            }
            walk(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "jsonl") {
            out.push(p);
        }
    }
    Ok(())
}

/// A transcript's name for reports: its file name without `.jsonl`.
pub fn name_of(path: &Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_the_examples() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("transcripts/examples");
        let files = collect(std::slice::from_ref(&dir)).unwrap();
        let names: Vec<String> = files.iter().map(|p| name_of(p)).collect();
        assert_eq!(
            names,
            [
                "perform_speak_broadcast",
                "subscribe_reject",
                "welcome_and_ping"
            ]
        );
        assert!(collect(&[dir.join("nope")]).is_err());
    }
}
