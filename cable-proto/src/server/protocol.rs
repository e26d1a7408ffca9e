//! Which protocol a connection speaks.

/// The protocol of one connection, chosen by the host at the upgrade
/// ([`Server::handle_open_as`](super::Server::handle_open_as)).
///
/// Action Cable connections get the welcome, pings, commands parsed by the
/// core and disconnect frames. A [`Protocol::Custom`] connection is one the
/// host's own protocol layer (a dialect) speaks for: its text and binary
/// frames come out as [`Event::Received`](super::Event::Received), it joins
/// streams with [`Server::join`](super::Server::join), and the core sends it
/// only what that layer asks for (frames, envelopes of broadcasts) and a bare
/// close frame when it closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Protocol {
    /// Action Cable (`actioncable-v1-json`).
    #[default]
    ActionCable,
    /// A protocol of the host's: the number is the host's own (a dialect).
    Custom(u16),
}

impl Protocol {
    /// Whether this is Action Cable.
    pub fn is_action_cable(self) -> bool {
        self == Self::ActionCable
    }
}
