//! Mounts: which protocols each WebSocket path speaks (`--mount
//! PATH=PROTOCOL`), and the dialects hosted beside Action Cable on the one
//! hub (`cable_proto::dialect`).
//!
//! A path carries Action Cable, one plain protocol, or both: then a client
//! offering an Action Cable subprotocol (`actioncable-v1-json`) gets Action
//! Cable and any other client the plain protocol. Plain protocols are
//! spoken by non-browser clients too (the BuddyBoss doc's Node, React Native
//! and Flutter snippets send no `Origin`): an upgrade of a plain protocol
//! without an `Origin` header is taken as same-origin; one with an `Origin`
//! is checked by the origin policy like any other.

use std::str::FromStr;
use std::time::Instant;

use cable_proto::dialect::buddyboss::BuddyBossError;
use cable_proto::dialect::jac::Answer;
use cable_proto::dialect::BuddyBoss;
use cable_proto::server::{Protocol, Server};
use cable_proto::{ConnectionId, Identity};

use crate::app::RequestInfo;
use crate::credentials::{unix_now, Credentials};
use crate::jac::{JacHost, JAC};

/// The protocol number of BuddyBoss connections in the core.
pub(crate) const BUDDYBOSS: u16 = 1;

/// A protocol a path can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountProtocol {
    /// Action Cable (`actioncable`).
    ActionCable,
    /// The BuddyBoss messaging server's protocol (`buddyboss`).
    BuddyBoss,
    /// Jac Cloud's WebSocket protocol (`jac`).
    Jac,
}

/// One `--mount PATH=PROTOCOL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The path (`/`, `/cable`).
    pub path: String,
    /// Its protocol.
    pub protocol: MountProtocol,
}

/// A bad `--mount`, or mounts that do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    /// Not `PATH=PROTOCOL` with a path starting with `/`.
    #[error("{0:?} is not PATH=PROTOCOL (e.g. /cable=actioncable, /=buddyboss)")]
    Syntax(String),
    /// A protocol name that is not known.
    #[error("unknown protocol {0:?} (known: actioncable, buddyboss, jac)")]
    UnknownProtocol(String),
    /// A protocol name that is reserved but not served yet.
    #[error("protocol {0:?} is reserved and not served yet")]
    Reserved(String),
    /// Two plain protocols, or Action Cable twice, on one path.
    #[error("{path}: one path carries Action Cable and at most one plain protocol")]
    Conflict {
        /// The path.
        path: String,
    },
}

impl FromStr for Mount {
    type Err = MountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (path, protocol) = s
            .split_once('=')
            .filter(|(p, _)| p.starts_with('/'))
            .ok_or_else(|| MountError::Syntax(s.to_owned()))?;
        let protocol = match protocol {
            "actioncable" => MountProtocol::ActionCable,
            "buddyboss" => MountProtocol::BuddyBoss,
            "jac" => MountProtocol::Jac,
            other => return Err(MountError::UnknownProtocol(other.to_owned())),
        };
        Ok(Self {
            path: path.to_owned(),
            protocol,
        })
    }
}

/// What one path speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PathProtocols {
    /// Action Cable, for clients offering its subprotocol.
    pub action_cable: bool,
    /// The plain protocol, for the others.
    pub plain: Option<MountProtocol>,
}

impl PathProtocols {
    /// The core protocol of a client offering `offered` subprotocols
    /// (`Sec-WebSocket-Protocol` values) when Action Cable speaks `supported`.
    pub(crate) fn choose(&self, offered: &[String], supported: &[String]) -> Protocol {
        let offers_cable = offered
            .iter()
            .flat_map(|v| v.split(','))
            .any(|p| supported.iter().any(|s| s == p.trim()));
        match self.plain {
            Some(MountProtocol::BuddyBoss) if !(self.action_cable && offers_cable) => {
                Protocol::Custom(BUDDYBOSS)
            }
            Some(MountProtocol::Jac) if !(self.action_cable && offers_cable) => {
                Protocol::Custom(JAC)
            }
            _ => Protocol::ActionCable,
        }
    }
}

/// Every mounted path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MountTable {
    paths: Vec<(String, PathProtocols)>,
}

impl MountTable {
    /// The table of `mounts`; without an Action Cable mount, Action Cable is
    /// served at `default_path` too (`--path`, default `/cable`).
    pub fn resolve(mounts: &[Mount], default_path: &str) -> Result<Self, MountError> {
        let mut table = Self::default();
        let with_default = !mounts
            .iter()
            .any(|m| m.protocol == MountProtocol::ActionCable);
        let default = Mount {
            path: default_path.to_owned(),
            protocol: MountProtocol::ActionCable,
        };
        for mount in mounts.iter().chain(with_default.then_some(&default)) {
            let at = match table.paths.iter_mut().find(|(p, _)| *p == mount.path) {
                Some((_, at)) => at,
                None => {
                    table
                        .paths
                        .push((mount.path.clone(), PathProtocols::default()));
                    &mut table.paths.last_mut().expect("just pushed").1
                }
            };
            let conflict = || MountError::Conflict {
                path: mount.path.clone(),
            };
            match mount.protocol {
                MountProtocol::ActionCable if at.action_cable => return Err(conflict()),
                MountProtocol::ActionCable => at.action_cable = true,
                _ if at.plain.is_some() => return Err(conflict()),
                plain => at.plain = Some(plain),
            }
        }
        Ok(table)
    }

    /// What `path` speaks, if it is mounted.
    pub fn at(&self, path: &str) -> Option<PathProtocols> {
        self.paths
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, at)| *at)
    }

    /// Whether some path speaks Jac.
    pub fn has_jac(&self) -> bool {
        self.paths
            .iter()
            .any(|(_, at)| at.plain == Some(MountProtocol::Jac))
    }

    /// Every mount, for the startup log (`PATH=PROTOCOL,...`).
    pub fn describe(&self) -> String {
        let mut out = Vec::new();
        for (path, at) in &self.paths {
            if at.action_cable {
                out.push(format!("{path}=actioncable"));
            }
            match at.plain {
                Some(MountProtocol::BuddyBoss) => out.push(format!("{path}=buddyboss")),
                Some(MountProtocol::Jac) => out.push(format!("{path}=jac")),
                _ => {}
            }
        }
        out.join(",")
    }
}

/// The dialects the core task hosts.
pub(crate) struct Dialects {
    buddyboss: BuddyBoss,
    credentials: Credentials,
    jac: Option<JacHost>,
}

impl Dialects {
    /// The dialects, checking `send_message` tokens with `credentials` (none
    /// configured: not checked).
    pub(crate) fn new(credentials: Credentials) -> Self {
        Self {
            buddyboss: BuddyBoss::new(Protocol::Custom(BUDDYBOSS)),
            credentials,
            jac: None,
        }
    }

    /// The dialects with Jac hosted by `jac`.
    pub(crate) fn with_jac(mut self, jac: JacHost) -> Self {
        self.jac = Some(jac);
        self
    }

    /// The answer to a Jac socket's decision.
    pub(crate) fn jac_answer(
        &mut self,
        server: &mut Server,
        connection: ConnectionId,
        answer: Answer,
        now: Instant,
    ) {
        if let Some(jac) = &mut self.jac {
            jac.answer(server, connection, answer, now);
        }
    }

    /// An event of another Jac replica.
    pub(crate) fn jac_replica(&mut self, server: &mut Server, event: &[u8], now: Instant) {
        if let Some(jac) = &mut self.jac {
            jac.replica_event(server, event, now);
        }
    }

    /// The frames and bytes of `connection` a dialect holds for a pending
    /// decision (the reader's window counts them as not done).
    pub(crate) fn held(&self, connection: ConnectionId) -> (usize, usize) {
        self.jac.as_ref().map_or((0, 0), |jac| jac.held(connection))
    }

    /// A connection is gone.
    pub(crate) fn closed(&mut self, connection: ConnectionId) {
        if let Some(jac) = &mut self.jac {
            jac.closed(connection);
        }
    }

    /// A plain connection was opened: it is accepted at once (a BuddyBoss
    /// client identifies later, with `user_connected`) and joins the
    /// dialect's presence.
    pub(crate) fn accept(
        &mut self,
        server: &mut Server,
        pending: cable_proto::server::PendingConnection,
        connection: ConnectionId,
        info: &RequestInfo,
        now: Instant,
    ) {
        if server.protocol(connection) == Some(Protocol::Custom(JAC)) {
            match &mut self.jac {
                Some(jac) => jac.open(server, pending, connection, info, now),
                None => {
                    let _ = server.reject_connection(pending, now);
                }
            }
            return;
        }
        if server
            .accept_connection(pending, Identity::new(""), now)
            .is_ok()
        {
            let _ = self.buddyboss.on_open(server, connection, now);
        }
    }

    /// A frame of a plain connection; `true` when the dialect refused it
    /// (answered BuddyBoss' error frame), which spends from the connection's
    /// invalid-frame budget as the core's refusals do.
    pub(crate) fn received(
        &mut self,
        server: &mut Server,
        connection: ConnectionId,
        frame: &[u8],
        binary: bool,
        now: Instant,
    ) -> bool {
        if server.protocol(connection) == Some(Protocol::Custom(JAC)) {
            if let Some(jac) = &mut self.jac {
                jac.received(server, connection, frame, binary, now);
            }
            return false;
        }
        if server.protocol(connection) != Some(Protocol::Custom(BUDDYBOSS)) {
            return false;
        }
        let credentials = &self.credentials;
        let verify = |token: &str| credentials.verify_token(token, unix_now()).is_ok();
        let verify: Option<&dyn Fn(&str) -> bool> =
            (!credentials.is_open()).then_some(&verify as &dyn Fn(&str) -> bool);
        match self
            .buddyboss
            .handle(server, connection, frame, binary, verify, now)
        {
            Ok(handled) => match handled.error {
                Some(error) => {
                    tracing::debug!(%connection, %error, "buddyboss: refused");
                    true
                }
                None => false,
            },
            Err(error) => {
                tracing::trace!(%connection, %error, "buddyboss: stale connection");
                false
            }
        }
    }

    /// A connection is about to be closed for its refused frames: a
    /// BuddyBoss connection is told why first, in its own error frame
    /// (an Action Cable one gets the core's `invalid_request` disconnect).
    pub(crate) fn refused_too_often(
        &mut self,
        server: &mut Server,
        connection: ConnectionId,
        now: Instant,
    ) {
        if server.protocol(connection) == Some(Protocol::Custom(BUDDYBOSS)) {
            let _ = server.send_frame(connection, &BuddyBossError::TooManyRefusals.frame(), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_parse_and_resolve() {
        let bb: Mount = "/=buddyboss".parse().unwrap();
        let ac: Mount = "/cable=actioncable".parse().unwrap();
        assert_eq!(
            "/websocket=jac".parse::<Mount>().unwrap().protocol,
            MountProtocol::Jac
        );
        let jac = MountTable::resolve(&["/websocket=jac".parse().unwrap()], "/cable").unwrap();
        assert!(jac.has_jac());
        assert_eq!(jac.describe(), "/websocket=jac,/cable=actioncable");
        assert_eq!(
            jac.at("/websocket").unwrap().choose(&[], &[]),
            Protocol::Custom(JAC)
        );
        assert!(matches!(
            "x=buddyboss".parse::<Mount>(),
            Err(MountError::Syntax(_))
        ));
        assert!(matches!(
            "/x=irc".parse::<Mount>(),
            Err(MountError::UnknownProtocol(_))
        ));
        let table = MountTable::resolve(&[bb.clone(), ac.clone()], "/cable").unwrap();
        assert_eq!(table.describe(), "/=buddyboss,/cable=actioncable");
        let table = MountTable::resolve(std::slice::from_ref(&bb), "/cable").unwrap();
        assert_eq!(table.describe(), "/=buddyboss,/cable=actioncable");
        let shared = MountTable::resolve(
            &[
                "/ws=buddyboss".parse().unwrap(),
                "/ws=actioncable".parse().unwrap(),
            ],
            "/cable",
        )
        .unwrap();
        let at = shared.at("/ws").unwrap();
        let supported = vec!["actioncable-v1-json".to_owned()];
        assert_eq!(
            at.choose(
                &["actioncable-v1-json, actioncable-unsupported".into()],
                &supported
            ),
            Protocol::ActionCable
        );
        assert_eq!(at.choose(&[], &supported), Protocol::Custom(BUDDYBOSS));
        assert!(shared.at("/cable").is_none());
        assert!(matches!(
            MountTable::resolve(&[bb.clone(), "/=buddyboss".parse().unwrap()], "/cable"),
            Err(MountError::Conflict { .. })
        ));
    }
}
