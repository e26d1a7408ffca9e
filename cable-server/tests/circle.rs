//! `cable-server --app circle` with Circle's own documented Node client
//! (`tests/js/circle.mjs`, the doc's `ws` code): member tokens as HS256 JWTs,
//! a welcome with a `sid`, member and room channels, pings, broadcasts to a
//! room, refused tokens, and a token expiring on a live connection.
//!
//! Needs `node` and the npm packages of `tests/js` (as `node_client.rs`).

mod common;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cable_server::Credentials;
use common::CableServer;

const SECRET: &str = "circle-test-secret";
const ORIGIN: &str = "https://community.example";

#[test]
fn circles_documented_client_against_app_circle() {
    common::ensure_npm_packages(&["ws"]);
    let rooms =
        std::env::temp_dir().join(format!("cable-circle-rooms-{}.json", std::process::id()));
    std::fs::write(&rooms, r#"{"chat_rooms": {"7": [42, 44], "8": [44]}}"#).unwrap();
    // Removed when the test ends, passed or failed.
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let rooms = Remove(rooms);
    let server = CableServer::start(&[
        "--app",
        "circle",
        "--jwt-secret",
        SECRET,
        "--allowed-origin",
        ORIGIN,
        "--circle-rooms",
        rooms.0.to_str().unwrap(),
    ]);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let ours = Credentials::new(vec![], Some(SECRET)).unwrap();
    let theirs = Credentials::new(vec![], Some("another-secret")).unwrap();
    let hour = Duration::from_secs(3600);
    let short_ttl = Duration::from_secs(12);
    let exp_short = (now + short_ttl).as_secs();
    common::run_node_script(
        "circle.mjs",
        &[
            ("CIRCLE_URL", format!("ws://{}/cable", server.addr)),
            ("CIRCLE_ORIGIN", ORIGIN.to_owned()),
            ("TOKEN_42", ours.mint("42", now, hour).unwrap()),
            ("TOKEN_43", ours.mint("43", now, hour).unwrap()),
            ("TOKEN_SHORT", ours.mint("42", now, short_ttl).unwrap()),
            ("EXP_SHORT", exp_short.to_string()),
            ("TOKEN_FOREIGN", theirs.mint("42", now, hour).unwrap()),
            (
                "TOKEN_EXPIRED",
                ours.mint("42", now - Duration::from_secs(7200), hour)
                    .unwrap(),
            ),
        ],
        Duration::from_secs(60),
    );
}

#[test]
fn a_bad_rooms_file_is_a_clear_startup_error() {
    let rooms = std::env::temp_dir().join(format!("cable-circle-bad-{}.json", std::process::id()));
    std::fs::write(&rooms, r#"{"chat_rooms": {"seven": [1]}}"#).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_cable-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--app",
            "circle",
            "--jwt-secret",
            SECRET,
        ])
        .arg("--circle-rooms")
        .arg(&rooms)
        .output()
        .expect("run cable-server");
    let _ = std::fs::remove_file(&rooms);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--circle-rooms") && stderr.contains("\"seven\""),
        "{stderr}"
    );
    // Without member tokens there is no Circle.
    let output = Command::new(env!("CARGO_BIN_EXE_cable-server"))
        .args(["--listen", "127.0.0.1:0", "--app", "circle"])
        .output()
        .expect("run cable-server");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--jwt-secret"));
}

#[test]
fn mint_token_prints_a_token_the_server_accepts() {
    let output = Command::new(env!("CARGO_BIN_EXE_cable-server"))
        .args(["--jwt-secret", SECRET, "--mint-token", "42"])
        .output()
        .expect("run cable-server");
    assert!(output.status.success());
    let token = String::from_utf8(output.stdout).unwrap();
    let request = cable_server::RequestInfo {
        path_and_query: format!("/cable?token={}", token.trim()),
        ..Default::default()
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let verified = Credentials::new(vec![], Some(SECRET))
        .unwrap()
        .verify(&request, now)
        .unwrap();
    assert_eq!(verified.identity.as_str(), "42");
    let left = verified.expires_at_unix.unwrap() as i64 - now.as_secs() as i64;
    assert!((3590..=3600).contains(&left), "{left}");
}

#[test]
fn options_that_cannot_work_together_are_startup_errors() {
    use cable_server::{build_app, AppError, AppKind, Options};
    let base = || Options::with_listen("127.0.0.1:0".parse().unwrap());
    let mut rpc_and_jwt = base();
    rpc_and_jwt.rpc_url = Some("http://127.0.0.1:9/_anycable".into());
    rpc_and_jwt.jwt_secret = Some(SECRET.into());
    assert!(matches!(
        build_app(&rpc_and_jwt),
        Err(AppError::RpcWithCredentials)
    ));
    let mut rpc_and_circle = base();
    rpc_and_circle.rpc_url = Some("http://127.0.0.1:9/_anycable".into());
    rpc_and_circle.app = AppKind::Circle;
    assert!(matches!(
        build_app(&rpc_and_circle),
        Err(AppError::RpcWithApp)
    ));
    let mut empty_secret = base();
    empty_secret.jwt_secret = Some(String::new());
    assert!(matches!(build_app(&empty_secret), Err(AppError::Secret(_))));
}
