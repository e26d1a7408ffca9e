//! Deliberate differences from Rails 6.1, known by name.
//!
//! The comparison in [`crate::compare`](mod@crate::compare) tolerates nothing but the
//! deviations it is given. Replays against Rails use [`Deviations::none`]; replays against
//! the core or cable-server use [`Deviations::cable`], the project's declared set.
//! `DEVIATIONS.md` lists each one with its reason; a test keeps that file and this enum in
//! step.
//!
//! What Rails itself leaves unordered is not a deviation: the frames one broadcast produces
//! for several subscriptions of one connection are compared as a set in every replay,
//! whatever the set of deviations (see "Broadcast groups" in
//! [`crate::compare`](mod@crate::compare)).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// One deliberate difference from Rails 6.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Deviation {
    /// `remote-disconnect-frame`: on a remote disconnect Rails 6.1 closes the socket with no
    /// frame; we first send `{"type":"disconnect","reason":"remote","reconnect":true}`, as
    /// Rails 7.1 and later do.
    RemoteDisconnectFrame,
}

impl Deviation {
    /// Every deviation, in a fixed order.
    pub const ALL: [Deviation; 1] = [Deviation::RemoteDisconnectFrame];

    /// The deviation's name, as used on the command line and in `DEVIATIONS.md`.
    pub fn name(self) -> &'static str {
        match self {
            Deviation::RemoteDisconnectFrame => "remote-disconnect-frame",
        }
    }

    /// One sentence: what differs and what the comparison tolerates.
    pub fn description(self) -> &'static str {
        match self {
            Deviation::RemoteDisconnectFrame => {
                "Rails 6.1 closes a remotely disconnected connection without a frame; we send \
                 {\"type\":\"disconnect\",\"reason\":\"remote\",\"reconnect\":true} first (as \
                 Rails 7.1+). Tolerated: that exact frame as the last non-ping frame before a \
                 server-initiated close, where the recording has no such frame."
            }
        }
    }

    /// Looks a deviation up by name.
    pub fn from_name(name: &str) -> Option<Deviation> {
        Deviation::ALL.into_iter().find(|d| d.name() == name)
    }
}

impl fmt::Display for Deviation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The exact frame of [`Deviation::RemoteDisconnectFrame`].
pub const REMOTE_DISCONNECT_FRAME: &str =
    r#"{"type":"disconnect","reason":"remote","reconnect":true}"#;

/// A set of tolerated deviations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Deviations(BTreeSet<Deviation>);

impl Deviations {
    /// No deviation: for replays against Rails itself.
    pub fn none() -> Deviations {
        Deviations(BTreeSet::new())
    }

    /// The project's declared set: for replays against the core and cable-server.
    pub fn cable() -> Deviations {
        Deviations(Deviation::ALL.into_iter().collect())
    }

    /// Whether `d` is tolerated.
    pub fn allows(&self, d: Deviation) -> bool {
        self.0.contains(&d)
    }

    /// The deviations in the set.
    pub fn iter(&self) -> impl Iterator<Item = Deviation> + '_ {
        self.0.iter().copied()
    }
}

impl FromStr for Deviations {
    type Err = String;

    /// `none`, `cable`, or a comma-separated list of deviation names.
    fn from_str(s: &str) -> Result<Deviations, String> {
        match s {
            "none" => Ok(Deviations::none()),
            "cable" => Ok(Deviations::cable()),
            _ => s
                .split(',')
                .map(|n| {
                    Deviation::from_name(n.trim()).ok_or_else(|| {
                        let known: Vec<&str> = Deviation::ALL.iter().map(|d| d.name()).collect();
                        format!(
                            "unknown deviation {n:?} (use none, cable, or names from: {})",
                            known.join(", ")
                        )
                    })
                })
                .collect::<Result<BTreeSet<_>, _>>()
                .map(Deviations),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_sets() {
        assert_eq!("none".parse::<Deviations>().unwrap(), Deviations::none());
        assert_eq!("cable".parse::<Deviations>().unwrap(), Deviations::cable());
        let one: Deviations = "remote-disconnect-frame".parse().unwrap();
        assert!(one.allows(Deviation::RemoteDisconnectFrame));
        assert!(!Deviations::none().allows(Deviation::RemoteDisconnectFrame));
        assert!("remote,nope".parse::<Deviations>().is_err());
    }

    #[test]
    fn deviations_md_lists_every_deviation_and_nothing_else() {
        let md = include_str!("../DEVIATIONS.md");
        let listed: Vec<&str> = md
            .lines()
            .filter_map(|l| l.strip_prefix("## `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        let known: Vec<&str> = Deviation::ALL.iter().map(|d| d.name()).collect();
        assert_eq!(listed, known);
    }
}
