//! What the listener heard, frame by frame, for a display (the editor's piano roll, the CLI's
//! picture): the pitch and the sounding note of every decided frame.
//!
//! The inference worker pushes one [`FeedFrame`] per hop while the feed is enabled (the editor
//! enables it while it is open, so nothing is computed for a closed window); a reader on another
//! thread copies out the frames it has not seen yet.
//!
//! The feed outlives engines: the plugin makes one, and every engine it builds (one per
//! activation) pushes into the same feed, so the editor keeps one history across re-activations.
//! That is why this is a fixed ring of atomic slots rather than an SPSC queue with owned ends
//! (`rtrb`) or a triple buffer (which carries one snapshot, not every frame): the writer
//! overwrites the oldest slot and never waits, and a reader that fell behind by more than the
//! capacity simply misses the overwritten frames. Each slot is one `AtomicU64` holding the frame
//! and a tag of its index, so a reader can never see half of one frame and half of another.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Frames a feed holds by default: 16384 hops of 5.33 ms ≈ 87 s, far more than a display's
/// history, so a reader that is a few seconds late still gets every frame.
pub const DEFAULT_CAPACITY: usize = 1 << 14;

/// Bits of the frame index kept in each slot to recognise it.
const TAG_BITS: u32 = 24;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
/// Note byte meaning "no note sounding".
const NO_NOTE: u64 = 0xFF;

/// One decided frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeedFrame {
    /// Frame number since the feed was made (one per hop, across engines).
    pub index: u64,
    /// Pitch heard, MIDI note number with fraction; NaN when unvoiced.
    pub pitch: f32,
    /// Note sounding after this frame.
    pub note: Option<u8>,
}

/// A lock-free, overwriting history of decided frames (see the module docs).
#[derive(Debug)]
pub struct PitchFeed {
    /// Whether the worker pushes frames (set by whoever displays them).
    enabled: AtomicBool,
    /// Duration of one frame, seconds, as `f32` bits (set by the engine that pushes).
    hop_seconds: AtomicU32,
    /// Frames pushed in total; frame `i` is in slot `i % slots.len()` while `i + len > written`.
    written: AtomicU64,
    /// `pitch bits << 32 | note << 24 | index & TAG_MASK`; the length is a power of two.
    slots: Box<[AtomicU64]>,
}

impl Default for PitchFeed {
    fn default() -> Self {
        PitchFeed::new(DEFAULT_CAPACITY)
    }
}

impl PitchFeed {
    /// A disabled feed holding the last `capacity` frames (rounded up to a power of two,
    /// 2 ..= 2^23).
    pub fn new(capacity: usize) -> PitchFeed {
        let capacity = capacity.clamp(2, 1 << (TAG_BITS - 1)).next_power_of_two();
        PitchFeed {
            enabled: AtomicBool::new(false),
            hop_seconds: AtomicU32::new((crate::timing::HOP_SECONDS as f32).to_bits()),
            written: AtomicU64::new(0),
            slots: (0..capacity).map(|_| AtomicU64::new(u64::MAX)).collect(),
        }
    }

    /// Frames the feed holds.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Start or stop pushing frames.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Release);
    }

    /// Whether frames are pushed.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// Duration of one frame in seconds.
    pub fn hop_seconds(&self) -> f32 {
        f32::from_bits(self.hop_seconds.load(Ordering::Relaxed))
    }

    /// Set by the engine that pushes (its hop at its sample rate).
    pub fn set_hop_seconds(&self, seconds: f32) {
        if seconds.is_finite() && seconds > 0.0 {
            self.hop_seconds.store(seconds.to_bits(), Ordering::Relaxed);
        }
    }

    /// Frames pushed so far (the index the next frame gets).
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Append one frame if the feed is enabled. Wait-free and allocation-free. One writer at a
    /// time (the engine's worker; engines of one plugin never run side by side).
    pub fn push(&self, pitch: f32, note: Option<u8>) {
        if self.enabled() {
            self.push_always(pitch, note);
        }
    }

    /// Append one frame whether or not the feed is enabled (an offline render that keeps the
    /// whole curve).
    pub fn push_always(&self, pitch: f32, note: Option<u8>) {
        let index = self.written.load(Ordering::Relaxed);
        let note = note.map_or(NO_NOTE, |n| u64::from(n.min(127)));
        let pitch = if pitch.is_finite() { pitch } else { f32::NAN };
        let word = (u64::from(pitch.to_bits()) << 32) | (note << TAG_BITS) | (index & TAG_MASK);
        self.slots[index as usize & (self.slots.len() - 1)].store(word, Ordering::Release);
        self.written.store(index + 1, Ordering::Release);
    }

    /// Hand `visit` every frame from index `from` on that is still held, oldest first, and
    /// return the index to read from next time. Frames overwritten before they were read are
    /// skipped.
    pub fn read_since(&self, from: u64, visit: &mut dyn FnMut(FeedFrame)) -> u64 {
        let end = self.written();
        let cap = self.slots.len() as u64;
        let start = from.max(end.saturating_sub(cap));
        for index in start..end {
            let word = self.slots[index as usize & (self.slots.len() - 1)].load(Ordering::Acquire);
            // A slot already rewritten for a later frame carries that frame's tag.
            if word & TAG_MASK != index & TAG_MASK {
                continue;
            }
            let note = (word >> TAG_BITS) & 0xFF;
            visit(FeedFrame {
                index,
                pitch: f32::from_bits((word >> 32) as u32),
                note: (note != NO_NOTE).then_some(note as u8),
            });
        }
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn read_all(feed: &PitchFeed, from: u64) -> (Vec<FeedFrame>, u64) {
        let mut out = Vec::new();
        let next = feed.read_since(from, &mut |f| out.push(f));
        (out, next)
    }

    #[test]
    fn disabled_feed_records_nothing() {
        let feed = PitchFeed::new(8);
        feed.push(60.0, Some(60));
        assert_eq!(feed.written(), 0);
        feed.set_enabled(true);
        feed.push(60.5, Some(60));
        feed.push(f32::NAN, None);
        let (frames, next) = read_all(&feed, 0);
        assert_eq!(next, 2);
        assert_eq!(frames.len(), 2);
        assert_eq!((frames[0].index, frames[0].pitch, frames[0].note), (0, 60.5, Some(60)));
        assert!(frames[1].pitch.is_nan() && frames[1].note.is_none());
        assert!(read_all(&feed, next).0.is_empty());
    }

    #[test]
    fn a_late_reader_gets_the_newest_capacity_frames() {
        let feed = PitchFeed::new(8);
        feed.set_enabled(true);
        for i in 0..20 {
            feed.push(i as f32, Some(i as u8));
        }
        let (frames, next) = read_all(&feed, 3);
        assert_eq!(next, 20);
        let idx: Vec<u64> = frames.iter().map(|f| f.index).collect();
        assert_eq!(idx, (12..20).collect::<Vec<_>>());
        assert!(frames.iter().all(|f| f.pitch == f.index as f32 && f.note == Some(f.index as u8)));
    }

    #[test]
    fn concurrent_reader_sees_consistent_frames_in_order() {
        let feed = Arc::new(PitchFeed::new(64));
        feed.set_enabled(true);
        let writer = {
            let feed = feed.clone();
            std::thread::spawn(move || {
                for i in 0..200_000u64 {
                    // Pitch and note both encode the index: a torn frame would not match.
                    feed.push((i % 100_000) as f32, Some((i % 128) as u8));
                }
            })
        };
        let mut next = 0;
        let mut last = None;
        let mut seen = 0u64;
        while next < 200_000 {
            next = feed.read_since(next, &mut |f| {
                assert_eq!(f.pitch, (f.index % 100_000) as f32);
                assert_eq!(f.note, Some((f.index % 128) as u8));
                assert!(last.is_none_or(|l| f.index > l));
                last = Some(f.index);
                seen += 1;
            });
        }
        writer.join().unwrap();
        assert!(seen > 0);
    }
}
