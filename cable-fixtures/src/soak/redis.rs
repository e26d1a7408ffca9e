//! A redis-server of our own on a loopback port, for the soak's two nodes
//! and for tests: started, stopped and started again on the same port.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long redis-server may take to listen.
const START_WAIT: Duration = Duration::from_secs(10);

/// Why redis-server could not run.
#[derive(Debug, thiserror::Error)]
pub enum RedisServerError {
    /// `redis-server` is not on PATH.
    #[error("redis-server is not on PATH (Debian: apt-get install -y redis-server)")]
    NotFound,
    /// It did not start or listen in time.
    #[error("redis-server did not start: {0}")]
    Start(String),
}

/// A running redis-server (killed on drop), without persistence.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Whether `redis-server` can be run.
    pub fn available() -> bool {
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts one on `port` (0: a free one).
    pub fn start(port: u16) -> Result<Self, RedisServerError> {
        if !Self::available() {
            return Err(RedisServerError::NotFound);
        }
        let port = if port == 0 {
            TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| RedisServerError::Start(e.to_string()))?
                .port()
        } else {
            port
        };
        let dir = std::env::temp_dir().join(format!("cable-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| RedisServerError::Start(e.to_string()))?;
        let mut server = Self {
            child: None,
            port,
            dir,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), RedisServerError> {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| RedisServerError::Start(e.to_string()))?;
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if start.elapsed() > START_WAIT {
                return Err(RedisServerError::Start(format!(
                    "nothing listens on port {} after {START_WAIT:?}",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Kills it (every client connection breaks).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) -> Result<(), RedisServerError> {
        self.stop();
        self.spawn()
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
