//! cable-server run in the test's own process, on a port of its own, that
//! can be stopped (every client gets `server_restart`) and started again on
//! the same port; and `POST /_broadcast` over plain TCP.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use cable_server::Options;
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for anything it expects (a reconnect after a
/// restart takes up to ~20 s on the JS client's schedule).
pub const WAIT: Duration = Duration::from_secs(40);

/// A running cable-server.
pub struct Server {
    pub addr: SocketAddr,
    args: Vec<String>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Starts cable-server with `args` on a free port of 127.0.0.1.
    pub async fn start(args: &[&str]) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = Server {
            addr,
            args: args.iter().map(|s| s.to_string()).collect(),
            shutdown: None,
            task: None,
        };
        server.serve(listener);
        server
    }

    fn serve(&mut self, listener: TcpListener) {
        let mut argv = vec![
            "cable-server".to_owned(),
            "--listen".to_owned(),
            self.addr.to_string(),
        ];
        argv.extend(self.args.iter().cloned());
        let options = Options::parse_from(argv);
        let (tx, rx) = oneshot::channel::<()>();
        self.shutdown = Some(tx);
        self.task = Some(tokio::spawn(cable_server::serve(
            options,
            listener,
            async move {
                let _ = rx.await;
            },
        )));
    }

    /// Stops the server: every client gets `server_restart` and a close.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("cable-server stops")
                .unwrap()
                .unwrap();
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    /// `ws://ADDR/cable`.
    pub fn url(&self) -> String {
        format!("ws://{}/cable", self.addr)
    }

    /// `POST /_broadcast` of `{"stream":stream,"data":data}`; panics unless 2xx.
    pub async fn broadcast(&self, stream: &str, data: serde_json::Value) {
        let body = serde_json::json!({"stream": stream, "data": data}).to_string();
        let mut tcp = TcpStream::connect(self.addr).await.unwrap();
        let request = format!(
            "POST /_broadcast HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        tcp.read_to_string(&mut response).await.unwrap();
        assert!(
            response.starts_with("HTTP/1.1 2"),
            "broadcast refused: {response}"
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Waits at most [`WAIT`] for `future`.
pub async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
