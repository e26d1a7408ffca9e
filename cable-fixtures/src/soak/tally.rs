//! What one healthy client received, per producer, by sequence number: the
//! duplicates and reorderings as they arrive, the losses at the end.

/// One producer's messages as one client saw them.
#[derive(Debug, Clone, Default)]
struct Track {
    seen: Vec<bool>,
    max: Option<u64>,
}

/// Counts of one client (or of all, added up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Messages received.
    pub received: u64,
    /// Sent, never received, outside a declared outage.
    pub lost: u64,
    /// Sent during a declared outage (a Redis restart) and never received.
    pub lost_in_outage: u64,
    /// Received more than once (each extra copy counts).
    pub duplicated: u64,
    /// Received after a later message of the same producer.
    pub reordered: u64,
}

impl Counts {
    /// Adds `other` to these.
    pub fn add(&mut self, other: &Counts) {
        self.received += other.received;
        self.lost += other.lost;
        self.lost_in_outage += other.lost_in_outage;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
    }
}

/// Sequence numbers of every producer as one client received them.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    tracks: Vec<Track>,
    counts: Counts,
}

/// The most sequence numbers one producer may send (a bound on the memory
/// of a tally; a run sends far fewer).
const MAX_SEQ: u64 = 1 << 26;

impl Tally {
    /// Message `seq` of producer `producer` arrived.
    pub fn record(&mut self, producer: usize, seq: u64) {
        if seq >= MAX_SEQ || producer > 1024 {
            return;
        }
        if self.tracks.len() <= producer {
            self.tracks.resize_with(producer + 1, Track::default);
        }
        let track = &mut self.tracks[producer];
        let index = seq as usize;
        if track.seen.len() <= index {
            track.seen.resize(index + 1, false);
        }
        self.counts.received += 1;
        if track.seen[index] {
            self.counts.duplicated += 1;
            return;
        }
        track.seen[index] = true;
        if track.max.is_some_and(|max| seq < max) {
            self.counts.reordered += 1;
        }
        track.max = Some(track.max.map_or(seq, |max| max.max(seq)));
    }

    /// The counts, with losses: producer `p` sent `sent[p]` messages; those
    /// for which `in_outage(p, seq)` is true count apart.
    pub fn finish(&self, sent: &[u64], in_outage: impl Fn(usize, u64) -> bool) -> Counts {
        let mut counts = self.counts;
        for (producer, &count) in sent.iter().enumerate() {
            let seen = self.tracks.get(producer).map_or(&[][..], |t| &t.seen[..]);
            for seq in 0..count {
                if !seen.get(seq as usize).copied().unwrap_or(false) {
                    if in_outage(producer, seq) {
                        counts.lost_in_outage += 1;
                    } else {
                        counts.lost += 1;
                    }
                }
            }
        }
        counts
    }
}

/// Parses a soak message's text, `"<producer>:<seq>"` (the firehose's
/// padding after a second `:` is ignored).
pub fn parse_text(text: &str) -> Option<(usize, u64)> {
    let mut parts = text.splitn(3, ':');
    let producer = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    Some((producer, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_losses_duplicates_and_reorderings() {
        let mut tally = Tally::default();
        for seq in [0, 1, 3, 2, 3, 5] {
            tally.record(0, seq);
        }
        tally.record(1, 0);
        let counts = tally.finish(&[7, 2], |producer, seq| producer == 0 && seq == 6);
        assert_eq!(
            counts,
            Counts {
                received: 7,
                // producer 0: 4 (6 is in the outage); producer 1: 1.
                lost: 2,
                lost_in_outage: 1,
                duplicated: 1,
                reordered: 1,
            }
        );
        assert_eq!(parse_text("3:17"), Some((3, 17)));
        assert_eq!(parse_text("3:17:xxxx"), Some((3, 17)));
        assert_eq!(parse_text("hello"), None);
    }
}
