//! The `cable-fixtures jac-replay` command.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::replay::{replay, ReplayOptions};
use super::transcript::{collect, JacTranscript};
use crate::Error;

/// `jac-replay` arguments.
#[derive(Debug, Args)]
pub struct JacReplayArgs {
    /// The WebSocket side, `ws://HOST:PORT` (the recorded paths, e.g. /websocket, are appended).
    #[arg(long)]
    pub url: String,
    /// The Jac Cloud app's HTTP side, where the transcripts' users are registered and logged
    /// in, `http://HOST:PORT`.
    #[arg(long)]
    pub http: String,
    /// How long to wait for one expected frame.
    #[arg(long, default_value_t = 5000)]
    pub frame_timeout_ms: u64,
    /// How long to wait before a close for frames that should not come.
    #[arg(long, default_value_t = 300)]
    pub settle_ms: u64,
    /// Transcript files or folders (searched recursively for *.jsonl).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

impl JacReplayArgs {
    /// Replays every transcript; whether all passed.
    pub async fn run(self) -> Result<bool, Error> {
        let options = ReplayOptions {
            ws: self.url,
            http: self.http,
            frame_timeout: Duration::from_millis(self.frame_timeout_ms),
            settle: Duration::from_millis(self.settle_ms),
        };
        let (mut passed, mut failed) = (0, 0);
        for path in collect(&self.paths)? {
            let transcript = JacTranscript::read(&path)?;
            match replay(&transcript, &options).await {
                Ok(()) => {
                    passed += 1;
                    println!("PASS {}", transcript.name);
                }
                Err(why) => {
                    failed += 1;
                    println!("FAIL {}: {why}", transcript.name);
                }
            }
        }
        println!("{passed} passed, {failed} failed");
        Ok(failed == 0 && passed > 0)
    }
}

/// `jac-record` arguments.
#[derive(Debug, Args)]
pub struct JacRecordArgs {
    /// The WebSocket side, `ws://HOST:PORT`.
    #[arg(long)]
    pub url: String,
    /// The Jac Cloud app's HTTP side (users are registered and logged in there).
    #[arg(long)]
    pub http: String,
    /// The folder to write `<script name>.jsonl` transcripts to.
    #[arg(long)]
    pub out: PathBuf,
    /// How long to wait after each step for what the server sends.
    #[arg(long, default_value_t = 400)]
    pub settle_ms: u64,
    /// Script files or folders (*.jsonl).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

impl JacRecordArgs {
    /// Records every script.
    pub async fn run(self) -> Result<bool, Error> {
        std::fs::create_dir_all(&self.out)
            .map_err(|e| Error::Usage(format!("{}: {e}", self.out.display())))?;
        for path in collect(&self.paths)? {
            let script = std::fs::read_to_string(&path)
                .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
            let text = super::record::record(
                &script,
                &self.url,
                &self.http,
                Duration::from_millis(self.settle_ms),
            )
            .await?;
            let name = path.file_name().unwrap_or_default();
            let target = self.out.join(name);
            std::fs::write(&target, text)
                .map_err(|e| Error::Usage(format!("{}: {e}", target.display())))?;
            println!("recorded {}", target.display());
        }
        Ok(true)
    }
}
