//! The piano roll: the recent history of decided frames (from the pitch feed), the notes made
//! of them, and the painting of the roll and of the keyboard beside it.

use std::collections::VecDeque;

use egui::{Align2, FontId, Painter, Pos2, Rect, Stroke};
use hummingface_runtime::{FeedFrame, PitchFeed, Scale};

/// Seconds of history the roll shows.
pub const SHOWN_SECONDS: f32 = 8.0;
/// Seconds of history kept for the key suggestion.
pub const KEPT_SECONDS: f32 = 30.0;
/// Semitones the roll spans (three octaves, both ends included).
pub const SPAN: u8 = 36;

/// Colours of the roll and the keyboard.
pub mod colors {
    use egui::Color32;
    pub const ROW_WHITE: Color32 = Color32::from_rgb(0x2b, 0x2f, 0x37);
    pub const ROW_BLACK: Color32 = Color32::from_rgb(0x22, 0x25, 0x2c);
    pub const ROW_IN_SCALE: Color32 = Color32::from_rgb(0x2c, 0x3b, 0x36);
    pub const GRID: Color32 = Color32::from_rgb(0x3c, 0x41, 0x4b);
    pub const OCTAVE: Color32 = Color32::from_rgb(0x55, 0x5c, 0x69);
    pub const NOTE: Color32 = Color32::from_rgb(0xf5, 0xa6, 0x23);
    pub const NOTE_EDGE: Color32 = Color32::from_rgb(0xff, 0xd2, 0x80);
    pub const PITCH: Color32 = Color32::from_rgb(0x4f, 0xd1, 0xff);
    pub const WHITE_KEY: Color32 = Color32::from_rgb(0xf4, 0xf4, 0xf0);
    pub const BLACK_KEY: Color32 = Color32::from_rgb(0x16, 0x16, 0x18);
    pub const KEY_EDGE: Color32 = Color32::from_rgb(0x8a, 0x8a, 0x8a);
    pub const LIT_KEY: Color32 = Color32::from_rgb(0xf5, 0xa6, 0x23);
    pub const LABEL: Color32 = Color32::from_rgb(0x9a, 0xa3, 0xb2);
}

/// Whether MIDI note `n` is a black key.
pub fn is_black(n: u8) -> bool {
    matches!(n % 12, 1 | 3 | 6 | 8 | 10)
}

/// A note of the history: frames `start..end` (feed indices) sounding `note`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollNote {
    pub start: u64,
    pub end: u64,
    pub note: u8,
}

/// The frames read from the feed so far, the newest [`KEPT_SECONDS`] of them.
#[derive(Debug, Default)]
pub struct History {
    /// Decided frames, oldest first, contiguous or with gaps where frames were missed.
    frames: VecDeque<FeedFrame>,
    /// Feed index to read from next.
    next: u64,
    /// Seconds per frame.
    hop_s: f32,
    /// Lowest note the roll shows (a C); chosen from the recent pitch with some hysteresis.
    low: u8,
}

impl History {
    pub fn new() -> History {
        History { frames: VecDeque::new(), next: 0, hop_s: 256.0 / 48000.0, low: 48 }
    }

    /// Read the frames the feed got since the last call and drop those older than
    /// [`KEPT_SECONDS`].
    pub fn update(&mut self, feed: &PitchFeed) {
        self.hop_s = feed.hop_seconds();
        // Skip straight to the newest frames after a long pause (editor just opened).
        let keep = self.kept_frames();
        let from = self.next.max(feed.written().saturating_sub(keep));
        let frames = &mut self.frames;
        self.next = feed.read_since(from, &mut |f| frames.push_back(f));
        while let Some(first) = self.frames.front() {
            if first.index + keep < self.next {
                self.frames.pop_front();
            } else {
                break;
            }
        }
        self.update_view();
    }

    /// Frames in [`KEPT_SECONDS`].
    fn kept_frames(&self) -> u64 {
        (KEPT_SECONDS / self.hop_s.max(1e-4)) as u64
    }

    /// Frames in [`SHOWN_SECONDS`].
    fn shown_frames(&self) -> u64 {
        (SHOWN_SECONDS / self.hop_s.max(1e-4)) as u64
    }

    /// Note sounding in the newest frame.
    pub fn sounding(&self) -> Option<u8> {
        self.frames.back().and_then(|f| f.note)
    }

    /// Pitch heard in the newest frame (NaN when unvoiced or nothing heard yet).
    pub fn pitch(&self) -> f32 {
        self.frames.back().map_or(f32::NAN, |f| f.pitch)
    }

    /// The notes in the kept history.
    pub fn notes(&self) -> Vec<RollNote> {
        let mut notes: Vec<RollNote> = Vec::new();
        let mut open: Option<RollNote> = None;
        for f in &self.frames {
            match (open.as_mut(), f.note) {
                (Some(o), Some(n)) if o.note == n && o.end == f.index => o.end = f.index + 1,
                (_, n) => {
                    notes.extend(open.take());
                    open = n.map(|note| RollNote { start: f.index, end: f.index + 1, note });
                }
            }
        }
        notes.extend(open);
        notes
    }

    /// (note, seconds sounded) of the notes in the kept history, for the key suggestion.
    pub fn note_durations(&self) -> Vec<(u8, f32)> {
        self.notes().iter().map(|n| (n.note, (n.end - n.start) as f32 * self.hop_s)).collect()
    }

    /// Lowest note shown.
    pub fn low(&self) -> u8 {
        self.low
    }

    /// Move the three shown octaves when the recent pitch leaves them.
    fn update_view(&mut self) {
        let shown = self.shown_frames();
        let mut recent: Vec<f32> = self
            .frames
            .iter()
            .rev()
            .take_while(|f| f.index + shown >= self.next)
            .flat_map(|f| [f.pitch, f.note.map_or(f32::NAN, f32::from)])
            .filter(|p| p.is_finite())
            .collect();
        if recent.is_empty() {
            return;
        }
        recent.sort_by(f32::total_cmp);
        let median = recent[recent.len() / 2];
        let low = f32::from(self.low);
        if median < low + 4.0 || median > low + f32::from(SPAN) - 4.0 {
            // Put the median in the middle octave.
            let c = ((median - 18.0) / 12.0).round() * 12.0;
            self.low = c.clamp(12.0, 96.0) as u8;
        }
    }

    /// Paint the roll into `rect`: rows (in-scale rows tinted unless the scale is chromatic), a
    /// line per second, the notes, and the pitch curve over them. The newest frame is at the
    /// right edge.
    pub fn paint_roll(&self, painter: &Painter, rect: Rect, key: u8, scale: Scale) {
        let low = self.low;
        let row_h = rect.height() / f32::from(SPAN + 1);
        let y_of = |pitch: f32| rect.bottom() - (pitch - f32::from(low) + 0.5) * row_h;
        for i in 0..=SPAN {
            let n = low + i;
            let top = rect.bottom() - f32::from(i + 1) * row_h;
            let row = Rect::from_min_max(Pos2::new(rect.left(), top), Pos2::new(rect.right(), top + row_h));
            let fill = if scale != Scale::Chromatic && scale.contains(key, n % 12) {
                colors::ROW_IN_SCALE
            } else if is_black(n) {
                colors::ROW_BLACK
            } else {
                colors::ROW_WHITE
            };
            painter.rect_filled(row, 0.0, fill);
            if n.is_multiple_of(12) {
                painter.hline(rect.x_range(), row.bottom(), Stroke::new(1.0, colors::OCTAVE));
                painter.text(
                    Pos2::new(rect.left() + 4.0, row.center().y),
                    Align2::LEFT_CENTER,
                    format!("C{}", i32::from(n) / 12 - 1),
                    FontId::proportional((row_h * 0.9).clamp(8.0, 13.0)),
                    colors::LABEL,
                );
            }
        }

        let shown = self.shown_frames().max(1) as f32;
        let newest = self.next;
        let x_of = |index: u64| rect.right() - (newest.saturating_sub(index) as f32 / shown) * rect.width();
        // One line per second, moving with the frames.
        let frames_per_s = 1.0 / self.hop_s.max(1e-4);
        let mut s = (newest as f32 / frames_per_s).floor();
        loop {
            let x = x_of((s * frames_per_s) as u64);
            if x < rect.left() {
                break;
            }
            painter.vline(x, rect.y_range(), Stroke::new(1.0, colors::GRID));
            s -= 1.0;
            if s < 0.0 {
                break;
            }
        }

        let clip = painter.with_clip_rect(rect);
        for note in self.notes() {
            if note.end + (shown as u64) < newest || note.note < low || note.note > low + SPAN {
                continue;
            }
            let y = y_of(f32::from(note.note));
            let r = Rect::from_min_max(
                Pos2::new(x_of(note.start).max(rect.left()), y - row_h * 0.45),
                Pos2::new(x_of(note.end).max(x_of(note.start) + 2.0), y + row_h * 0.45),
            );
            clip.rect_filled(r, 2.0, colors::NOTE);
            clip.rect_stroke(r, 2.0, Stroke::new(1.0, colors::NOTE_EDGE), egui::StrokeKind::Inside);
        }

        // The pitch curve, broken where the listener heard no pitch.
        let mut segment: Vec<Pos2> = Vec::new();
        let mut last_index = None;
        let flush = |segment: &mut Vec<Pos2>| {
            if segment.len() >= 2 {
                clip.line(std::mem::take(segment), Stroke::new(2.0, colors::PITCH));
            }
            segment.clear();
        };
        let (bottom, top) = (f32::from(low) - 0.5, f32::from(low + SPAN) + 0.5);
        let mut last_pitch = f32::NAN;
        for f in self.frames.iter().filter(|f| f.index + (shown as u64) >= newest) {
            let contiguous = last_index.is_some_and(|l: u64| l + 1 == f.index);
            last_index = Some(f.index);
            // Break at gaps, unvoiced frames, pitches off the roll, and leaps (a new note, or an
            // octave slip of the listener), so no line crosses the roll.
            let shown_pitch = f.pitch.is_finite() && (bottom..=top).contains(&f.pitch);
            if !shown_pitch || !contiguous || (f.pitch - last_pitch).abs() > 2.5 {
                flush(&mut segment);
            }
            last_pitch = f.pitch;
            if shown_pitch {
                segment.push(Pos2::new(x_of(f.index), y_of(f.pitch)));
            }
        }
        flush(&mut segment);
    }

    /// Paint a vertical keyboard into `rect`, its keys lined up with the roll's rows, `lit`
    /// (the sounding note) in colour.
    pub fn paint_keyboard(&self, painter: &Painter, rect: Rect, lit: Option<u8>) {
        let low = self.low;
        let row_h = rect.height() / f32::from(SPAN + 1);
        painter.rect_filled(rect, 0.0, colors::WHITE_KEY);
        let black_w = rect.width() * 0.6;
        for i in 0..=SPAN {
            let n = low + i;
            let top = rect.bottom() - f32::from(i + 1) * row_h;
            let lit_here = lit == Some(n);
            if is_black(n) {
                let r = Rect::from_min_max(Pos2::new(rect.left(), top), Pos2::new(rect.left() + black_w, top + row_h));
                painter.rect_filled(r, 1.0, if lit_here { colors::LIT_KEY } else { colors::BLACK_KEY });
            } else {
                // A white key reaches half way under its black neighbours.
                let below = if i > 0 && is_black(n - 1) { row_h * 0.5 } else { 0.0 };
                let above = if i < SPAN && is_black(n + 1) { row_h * 0.5 } else { 0.0 };
                let r = Rect::from_min_max(Pos2::new(rect.left(), top - above), Pos2::new(rect.right(), top + row_h + below));
                if lit_here {
                    painter.rect_filled(r, 0.0, colors::LIT_KEY);
                }
                // Edge between this white key and the one below it.
                painter.hline(rect.x_range(), r.bottom(), Stroke::new(1.0, colors::KEY_EDGE));
            }
        }
        // Black keys again on top of lit white keys.
        for i in 0..=SPAN {
            let n = low + i;
            if is_black(n) && lit != Some(n) {
                let top = rect.bottom() - f32::from(i + 1) * row_h;
                let r = Rect::from_min_max(Pos2::new(rect.left(), top), Pos2::new(rect.left() + black_w, top + row_h));
                painter.rect_filled(r, 1.0, colors::BLACK_KEY);
            }
        }
        painter.rect_stroke(rect, 0.0, Stroke::new(1.0, colors::KEY_EDGE), egui::StrokeKind::Inside);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_turns_frames_into_notes_and_durations() {
        let feed = PitchFeed::new(1 << 12);
        feed.set_enabled(true);
        feed.set_hop_seconds(0.01);
        for _ in 0..50 {
            feed.push(60.2, Some(60));
        }
        for _ in 0..10 {
            feed.push(f32::NAN, None);
        }
        for _ in 0..30 {
            feed.push(63.9, Some(64));
        }
        let mut h = History::new();
        h.update(&feed);
        assert_eq!(
            h.notes(),
            vec![RollNote { start: 0, end: 50, note: 60 }, RollNote { start: 60, end: 90, note: 64 }]
        );
        let d = h.note_durations();
        assert_eq!(d.len(), 2);
        assert!((d[0].1 - 0.5).abs() < 1e-6 && (d[1].1 - 0.3).abs() < 1e-6);
        assert_eq!(h.sounding(), Some(64));
        // The view keeps C3..C6 for notes around C4.
        assert_eq!(h.low(), 48);
        // Singing two octaves higher moves it.
        for _ in 0..2000 {
            feed.push(86.0, Some(86));
        }
        h.update(&feed);
        assert!(h.low() <= 86 - 4 && 86 + 4 <= h.low() + SPAN, "low {}", h.low());
    }
}
