//! cable-server `--mount /websocket=jac` in front of the real Jac Cloud app
//! (PyPI `jac-cloud` 0.2.11 serving `shared/jacref/app.jac`, started by
//! `shared/jacref/start.sh`): the seed doc's JavaScript snippets in Node
//! (`tests/js/jac.mjs`), and cable-server joining the deployment as a
//! replica on its Redis (a walker's `notify_channels` and `notify_users`
//! reaching cable-server's sockets, our clients' events reaching the app's
//! sockets, tokens checked in the app's token store).
//!
//! Needs Python 3.12 (as `start.sh` finds it), `shared/jacref` beside the
//! checkout (or `JACREF_DIR`), `redis-server`, `node`. The first run
//! installs jac-cloud into `$TMPDIR/cable-jac-cloud/venv` (minutes); later
//! runs reuse it. Without Python 3.12 or jacref the tests fail, unless
//! `CABLE_SKIP_JAC=1`.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{next_frame, send, CableServer, Ws};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The deployment's TOKEN_SECRET (start.sh's).
const SECRET: &str = "jacref-fixed-secret-for-transcripts";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn jacref_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("JACREF_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/jacref"),
        PathBuf::from,
    );
    if dir.join("start.sh").exists() {
        return Some(dir);
    }
    if std::env::var("CABLE_SKIP_JAC").as_deref() == Ok("1") {
        eprintln!("{} not found: skipped (CABLE_SKIP_JAC=1)", dir.display());
        return None;
    }
    panic!(
        "{}/start.sh not found: the real Jac Cloud server is needed (set JACREF_DIR, \
         or CABLE_SKIP_JAC=1 to skip)",
        dir.display()
    );
}

/// The real Jac Cloud app, stopped on drop.
struct JacCloud {
    pid: u32,
    port: u16,
    dir: PathBuf,
}

static VENV: Mutex<()> = Mutex::new(());

impl JacCloud {
    /// Starts the app on a free port; with `redis_port`, as a replica on
    /// that Redis (its tokens there too).
    fn start(jacref: &std::path::Path, redis_port: Option<u16>) -> JacCloud {
        let base = std::env::temp_dir().join("cable-jac-cloud");
        {
            // One install of jac-cloud, shared by every instance.
            let _once = VENV.lock().unwrap_or_else(|e| e.into_inner());
            if !base.join("venv/bin/jac").exists() {
                let warm = Self::run_start(jacref, &base, None);
                warm.stop();
            }
        }
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("cable-jac-cloud-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(base.join("venv"), dir.join("venv")).unwrap();
        let mut jac = Self::run_start(jacref, &dir, redis_port);
        jac.port = port;
        jac
    }

    fn run_start(jacref: &std::path::Path, dir: &std::path::Path, redis: Option<u16>) -> JacCloud {
        let port = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.rsplit('-').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(free_port);
        let mut command = Command::new(jacref.join("start.sh"));
        command
            .arg(port.to_string())
            .arg(dir)
            .stdout(Stdio::piped());
        if let Some(redis) = redis {
            command.env("JAC_REDIS_PORT", redis.to_string());
        }
        let out = command.output().expect("run start.sh");
        assert!(
            out.status.success(),
            "start.sh failed (Python 3.12 is needed; see its message above; \
             CABLE_SKIP_JAC=1 skips)"
        );
        let pid = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        JacCloud {
            pid,
            port,
            dir: dir.to_owned(),
        }
    }

    fn stop(&self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
    }

    fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Registers and logs in `email`: its token and root reference.
    async fn user(&self, email: &str) -> (String, String) {
        let body = json!({"email": email, "password": "jac-backend-test"});
        post(&format!("{}/user/register", self.http()), &body, None).await;
        let (status, login) = post(&format!("{}/user/login", self.http()), &body, None).await;
        assert_eq!(status, 200, "{login}");
        (
            login["token"].as_str().unwrap().to_owned(),
            format!("n::{}", login["user"]["root_id"].as_str().unwrap()),
        )
    }
}

impl Drop for JacCloud {
    fn drop(&mut self) {
        self.stop();
        if self.dir.ends_with(format!("cable-jac-cloud-{}", self.port)) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `POST url` with a JSON body (and a bearer token): status and JSON body.
async fn post(url: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let body = body.to_string();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{auth}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let status = answer[9..12].parse().unwrap();
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A WebSocket to `url` with an optional bearer token, its connection info.
async fn open(url: &str, token: Option<&str>) -> (Ws, Value) {
    let mut request = url.into_client_request().unwrap();
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    }
    let host = request.uri().authority().unwrap().to_string();
    let stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    let info = next_frame(&mut ws).await.unwrap();
    assert_eq!(info["type"], "connection", "{info}");
    (ws, info)
}

/// A redis-server on a free port, killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be on PATH (apt-get install -y redis-server)");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Redis { child, port }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn seed_doc_javascript_against_cable_server_in_front_of_jac_cloud() {
    let Some(jacref) = jacref_dir() else { return };
    common::ensure_npm_packages(&["ws"]);
    let jac = JacCloud::start(&jacref, None);
    let server = CableServer::start(&[
        "--mount",
        "/websocket=jac",
        "--jac-backend",
        &jac.http(),
        "--jac-token-secret",
        SECRET,
    ]);
    common::run_node_script(
        "jac.mjs",
        &[
            ("JAC_WS", format!("ws://{}/websocket", server.addr)),
            ("JAC_HTTP", jac.http()),
        ],
        Duration::from_secs(90),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cable_server_is_a_replica_of_the_jac_deployment() {
    let Some(jacref) = jacref_dir() else { return };
    let redis = Redis::start();
    let jac = tokio::task::block_in_place(|| JacCloud::start(&jacref, Some(redis.port)));
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);
    let server = tokio::task::block_in_place(|| {
        CableServer::start(&[
            "--mount",
            "/websocket=jac",
            "--jac-backend",
            &jac.http(),
            "--jac-token-secret",
            SECRET,
            "--redis-url",
            &redis_url,
        ])
    });
    let (alice, alice_root) = jac.user("alice-replica@jacref.io").await;
    let ours = format!("ws://{}/websocket", server.addr);
    let theirs = format!("ws://127.0.0.1:{}/websocket", jac.port);

    // The token is in the deployment's store: authenticated.
    let (mut s, info) = open(&format!("{ours}?channel_id=room1"), Some(&alice)).await;
    assert_eq!(info["data"]["root_id"], alice_root);
    let (mut d, _) = open(&format!("{theirs}?channel_id=room1"), None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A walker the app runs over HTTP: its notify_channels and notify_users
    // reach our socket through Redis.
    let (status, body) = post(
        &format!("{}/walker/send_chat_to_group", jac.http()),
        &json!({"channel_id": "room1"}),
        Some(&alice),
    )
    .await;
    assert_eq!(
        (status, &body),
        (200, &json!({"status": 200, "reports": ["sent_to_group"]}))
    );
    let to_group = json!({"type": "chat", "data": {"message": "to_group"}});
    assert_eq!(next_frame(&mut s).await, Some(to_group.clone()));
    assert_eq!(next_frame(&mut d).await, Some(to_group));
    post(
        &format!("{}/walker/send_chat_to_user", jac.http()),
        &json!({"root_id": alice_root}),
        Some(&alice),
    )
    .await;
    assert_eq!(
        next_frame(&mut s).await,
        Some(json!({"type": "chat", "data": {"message": "to_user"}}))
    );

    // Our client's channel event reaches the app's socket, and the reverse.
    send(
        &mut s,
        json!({"type": "channel", "channel_ids": ["room1"], "data": {"from": "cable"}}),
    )
    .await;
    assert_eq!(next_frame(&mut s).await, Some(json!({"from": "cable"})));
    assert_eq!(next_frame(&mut d).await, Some(json!({"from": "cable"})));
    send(
        &mut d,
        json!({"type": "channel", "channel_ids": ["room1"], "data": {"from": "jac"}}),
    )
    .await;
    assert_eq!(next_frame(&mut d).await, Some(json!({"from": "jac"})));
    assert_eq!(next_frame(&mut s).await, Some(json!({"from": "jac"})));

    // A walker through cable-server: its notification (through Redis)
    // before its response (over HTTP), as the real server sends them; each
    // time (the response waits for a marker published after it).
    for _ in 0..20 {
        send(
            &mut s,
            json!({"type": "walker", "walker": "send_chat_to_group", "response": true,
                   "context": {"channel_id": "room1"}}),
        )
        .await;
        let got = vec![
            next_frame(&mut s).await.unwrap(),
            next_frame(&mut s).await.unwrap(),
        ];
        assert_eq!(
            got,
            vec![
                json!({"type": "chat", "data": {"message": "to_group"}}),
                json!({"status": 200, "reports": ["sent_to_group"]}),
            ]
        );
        assert_eq!(
            next_frame(&mut d).await,
            Some(json!({"type": "chat", "data": {"message": "to_group"}}))
        );
    }

    // A token gone from the store (as after a password change) is refused.
    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let fields: Vec<String> = redis::cmd("HKEYS")
        .arg("token")
        .query_async(&mut conn)
        .await
        .unwrap();
    let field = fields
        .iter()
        .find(|f| f.ends_with(&format!(":{alice}")))
        .expect("alice's token in the store");
    let removed: i64 = redis::cmd("HDEL")
        .arg("token")
        .arg(field)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let (_, info) = open(&ours, Some(&alice)).await;
    assert_eq!(info["data"]["root_id"], "n::000000000000000000000001");
}

/// The replayer (`cable-fixtures jac-replay`) in both directions: the
/// recordings pass against cable-server in front of the real app, and a
/// cable-server that cannot verify the app's tokens fails the authenticated
/// ones (a replayer that cannot fail would prove nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recordings_replay_against_cable_server_in_front_and_catch_a_wrong_one() {
    use cable_fixtures::jac::{replay, JacTranscript, ReplayOptions};
    let Some(jacref) = jacref_dir() else { return };
    let jac = tokio::task::block_in_place(|| JacCloud::start(&jacref, None));
    let args = |secret: bool| {
        let mut args = vec![
            "--mount".to_owned(),
            "/websocket=jac".to_owned(),
            "--jac-backend".to_owned(),
            jac.http(),
        ];
        if secret {
            args.extend(["--jac-token-secret".to_owned(), SECRET.to_owned()]);
        }
        args
    };
    let start = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tokio::task::block_in_place(|| CableServer::start(&args))
    };
    let good = start(args(true));
    let blind = start(args(false));
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cable-fixtures/transcripts/jac");
    let options = |server: &CableServer| ReplayOptions {
        ws: format!("ws://{}", server.addr),
        http: jac.http(),
        frame_timeout: Duration::from_secs(5),
        settle: Duration::from_millis(300),
    };
    for name in [
        "examples/connect_authenticated",
        "examples/user_event",
        "recorded/walker_errors",
    ] {
        let transcript = JacTranscript::read(&dir.join(format!("{name}.jsonl"))).unwrap();
        replay(&transcript, &options(&good))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let failed = replay(&transcript, &options(&blind)).await;
        assert!(
            failed.is_err(),
            "{name} passed against a server without the secret"
        );
    }
}
