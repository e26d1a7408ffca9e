//! The core target: replays a transcript's client side against `cable-proto`
//! and the [reference app](crate::reference_app) in virtual time.
//!
//! The client side ([`Transcript::client_steps`]) is played at its recorded
//! offsets on a virtual clock; between steps the clock jumps from deadline to
//! deadline ([`Server::poll_timeout`]), so pings fall where the core's beat
//! puts them. What the core emits is recorded as a transcript in the shape
//! [`crate::live::run`] records a live server (`handshake` or
//! `handshake_failed`, `in` frames with their virtual `t_ms`, `close` with who
//! closed first, `http` with status and body), and
//! [`crate::compare::compare`] judges it against the recording.
//!
//! A WebSocket-level detail the core leaves to its host is played as the
//! host in cable-server does it: a client's close is echoed with the same
//! code, and a close frame from the core is answered by the client.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cable_proto::server::{Frame, Server};
use cable_proto::{ConnectionId, HandshakeRequest};

use crate::reference_app::ReferenceApp;
use crate::transcript::{
    Close, CloseFrame, CloseOutcome, Event, EventKind, Handshake, HandshakeFailed,
    HandshakeResponse, Headers, Http, HttpResponse, Payload, Step, Transcript, SCENARIO_CLIENT,
};
use crate::Error;

/// Unix time at the start of every core replay (pings carry it, advanced by
/// the virtual clock).
pub const REPLAY_UNIX_START: Duration = Duration::from_secs(1_795_325_340);

/// The longest scenario a core replay plays: a day of virtual time (the
/// corpus' longest is seconds; pings every 3 s of a longer one would only
/// make the replay slow and its transcript huge).
pub const MAX_REPLAY_MS: f64 = 24.0 * 3600.0 * 1000.0;

/// Replays `recording`'s client side against the core and returns what it observed.
///
/// A transcript whose events reach past [`MAX_REPLAY_MS`] is refused with
/// [`Error::Script`].
pub fn replay(recording: &Transcript) -> Result<Transcript, Error> {
    let steps = recording.client_steps().map_err(Error::Script)?;
    let end_ms = recording
        .events
        .iter()
        .map(|e| e.t_ms)
        .fold(0.0_f64, f64::max);
    if end_ms > MAX_REPLAY_MS {
        return Err(Error::Script(format!(
            "the transcript spans {end_ms} ms, more than a core replay plays ({MAX_REPLAY_MS} ms)"
        )));
    }
    let mut replay = Replay::new();
    for step in steps {
        replay.advance_to(step.t_ms);
        replay.step(&step.client, step.step)?;
    }
    replay.advance_to(end_ms);
    Ok(Transcript {
        events: replay.events,
    })
}

struct Replay {
    server: Server,
    app: ReferenceApp,
    start: Instant,
    now_ms: f64,
    clients: HashMap<String, ConnectionId>,
    names: HashMap<ConnectionId, String>,
    events: Vec<Event>,
}

impl Replay {
    fn new() -> Self {
        let start = Instant::now();
        Self {
            server: Server::new(ReferenceApp::config(), start, REPLAY_UNIX_START),
            app: ReferenceApp::new(),
            start,
            now_ms: 0.0,
            clients: HashMap::new(),
            names: HashMap::new(),
            events: Vec::new(),
        }
    }

    fn now(&self) -> Instant {
        self.at(self.now_ms)
    }

    fn at(&self, t_ms: f64) -> Instant {
        self.start + Duration::from_secs_f64(t_ms.max(0.0) / 1000.0)
    }

    fn record(&mut self, client: &str, kind: EventKind) {
        self.events.push(Event {
            t_ms: self.now_ms,
            client: client.to_owned(),
            kind,
        });
    }

    /// Moves the virtual clock to `t_ms`, firing every deadline on the way.
    fn advance_to(&mut self, t_ms: f64) {
        while let Some(deadline) = self.server.poll_timeout() {
            if deadline > self.at(t_ms) {
                break;
            }
            self.now_ms = deadline.duration_since(self.start).as_secs_f64() * 1000.0;
            self.server.handle_timeout(deadline);
            self.settle();
        }
        self.now_ms = self.now_ms.max(t_ms);
    }

    /// Runs the app and writes frames until the core has nothing left.
    fn settle(&mut self) {
        loop {
            let now = self.now();
            self.app.run(&mut self.server, now);
            let Some(transmit) = self.server.poll_transmit() else {
                break;
            };
            let Some(client) = self.names.get(&transmit.connection).cloned() else {
                continue; // a frame for a connection already closed
            };
            match transmit.frame {
                Frame::Text(bytes) => {
                    let _ = self
                        .server
                        .handle_written(transmit.connection, bytes.len(), now);
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    self.record(&client, EventKind::In(Payload::Text(text)));
                }
                Frame::Close { code, reason } => {
                    let frame = CloseFrame {
                        code,
                        reason: reason.to_owned(),
                    };
                    self.record(
                        &client,
                        EventKind::Close(Close {
                            code,
                            reason: reason.to_owned(),
                            outcome: Some(CloseOutcome {
                                rcvd: Some(frame.clone()),
                                sent: Some(frame),
                                rcvd_then_sent: Some(true),
                            }),
                        }),
                    );
                    self.closed(&client, transmit.connection);
                }
            }
        }
    }

    fn closed(&mut self, client: &str, conn: ConnectionId) {
        self.clients.remove(client);
        self.names.remove(&conn);
        let _ = self.server.handle_close(conn, self.now());
    }

    fn step(&mut self, client: &str, step: Step) -> Result<(), Error> {
        let now = self.now();
        match step {
            Step::Connect {
                path,
                request_headers,
            } => self.connect(client, path, request_headers),
            Step::Send(payload) => {
                let Some(&conn) = self.clients.get(client) else {
                    return Ok(()); // the server closed it already: nothing to send on
                };
                let result = match &payload {
                    Payload::Text(text) => self.server.handle_text(conn, text.as_bytes(), now),
                    Payload::Binary(bytes) => self.server.handle_binary(conn, bytes, now),
                    Payload::Large(_) => {
                        return Err(Error::Script("a large frame cannot be replayed".into()))
                    }
                };
                result.map_err(|e| Error::Core(e.to_string()))?;
                self.settle();
                Ok(())
            }
            Step::Close(frame) => {
                if let Some(conn) = self.clients.get(client).copied() {
                    self.record(
                        client,
                        EventKind::Close(Close {
                            code: frame.code,
                            reason: frame.reason.clone(),
                            outcome: Some(CloseOutcome {
                                rcvd: Some(frame.clone()),
                                sent: Some(frame),
                                rcvd_then_sent: Some(false),
                            }),
                        }),
                    );
                    self.closed(client, conn);
                    self.settle();
                }
                Ok(())
            }
            Step::Http { method, path } => {
                let response = self.app.control(&mut self.server, &path, now);
                let (status, body) = response.unwrap_or((404, "Not Found".to_owned()));
                self.record(
                    SCENARIO_CLIENT,
                    EventKind::Http(Http {
                        method,
                        path,
                        response: Some(HttpResponse { status, body }),
                    }),
                );
                self.settle();
                Ok(())
            }
            Step::Note(text) => {
                self.record(client, EventKind::Note(text));
                Ok(())
            }
        }
    }

    fn connect(
        &mut self,
        client: &str,
        path: String,
        request_headers: Headers,
    ) -> Result<(), Error> {
        let now = self.now();
        let header = |name: &str| {
            request_headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let protocols: Vec<&str> = request_headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-protocol"))
            .map(|(_, v)| v.as_str())
            .collect();
        let request = HandshakeRequest {
            host: header("host"),
            origin: header("origin"),
            secure: false,
            protocols: &protocols,
        };
        match self.server.handle_open(&request, now) {
            Err(refusal) => {
                let failed = HandshakeFailed {
                    path,
                    request_headers: request_headers.clone(),
                    status: refusal.status(),
                    response_headers: vec![("Content-Type".to_owned(), "text/plain".to_owned())],
                    body: refusal.body().to_owned(),
                };
                self.record(client, EventKind::HandshakeFailed(failed));
                Ok(())
            }
            Ok(incoming) => {
                let mut response_headers = vec![
                    ("Upgrade".to_owned(), "websocket".to_owned()),
                    ("Connection".to_owned(), "Upgrade".to_owned()),
                ];
                if let Some(protocol) = &incoming.subprotocol {
                    response_headers.push(("Sec-WebSocket-Protocol".to_owned(), protocol.clone()));
                }
                let identity = self.app.authenticate(&path, header("authorization"));
                self.record(
                    client,
                    EventKind::Handshake(Handshake {
                        path,
                        request_headers: request_headers.clone(),
                        response: Some(HandshakeResponse {
                            status: 101,
                            response_headers,
                            subprotocol: incoming.subprotocol.clone(),
                        }),
                    }),
                );
                let conn = incoming.connection;
                self.clients.insert(client.to_owned(), conn);
                self.names.insert(conn, client.to_owned());
                let decided = match identity {
                    Some(identity) => {
                        self.server
                            .accept_connection(incoming.pending, identity, now)
                    }
                    None => self.server.reject_connection(incoming.pending, now),
                };
                decided.map_err(|e| Error::Core(e.to_string()))?;
                self.settle();
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::compare;
    use crate::deviations::Deviations;

    fn example(name: &str) -> Transcript {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("transcripts/examples")
            .join(name);
        Transcript::read(&path).unwrap()
    }

    #[test]
    fn the_three_refserver_examples_pass() {
        for name in [
            "welcome_and_ping.jsonl",
            "subscribe_reject.jsonl",
            "perform_speak_broadcast.jsonl",
        ] {
            let recording = example(name);
            let observed = replay(&recording).unwrap();
            if let Err(m) = compare(&recording, &observed, &Deviations::cable()) {
                panic!("{name}: {m}\nobserved:\n{}", observed.to_jsonl());
            }
        }
    }

    #[test]
    fn an_edited_expectation_fails_against_the_core() {
        let mut recording = example("perform_speak_broadcast.jsonl");
        for event in &mut recording.events {
            if let EventKind::In(Payload::Text(text)) = &mut event.kind {
                *text = text.replace("hi from bob", "hi from eve");
            }
        }
        let observed = replay(&recording).unwrap();
        let mismatch = compare(&recording, &observed, &Deviations::cable()).unwrap_err();
        let shown = mismatch.to_string();
        assert!(
            shown.contains("hi from eve") && shown.contains("hi from bob"),
            "{shown}"
        );
    }
}
