//! Notes of a whole recording placed with lookahead: what a render of a file can do that a live
//! plugin cannot (`hummingface render`'s default; `--notes live` plays what the plugin plays).
//!
//! Live, the decoder starts a note once it has heard enough to be sure of the pitch: a scoop,
//! a glide from the previous note, a soft attack or the previous note's room tail hides the new
//! pitch for a while, so on the held-out synthetic set 41 % of the trained listener's notes on a
//! sung note's pitch start more than 50 ms (mir_eval's tolerance) after its onset. A render of a file has the
//! whole recording, so after the live decoder has decided — which notes, their pitches,
//! velocities and ends are its own — [`refine`] places each note where it began, looking at
//! most [`LOOKAHEAD_S`] back from the decision:
//!
//! - back over the hops that are voiced and not on the previous note's pitch (a glide's
//!   approach, a scoop, a phrase's first syllable), to the first of them; it stops at an onset
//!   the listener heard (the trained listener's onset output) and never passes the previous
//!   note's start;
//! - then [`ATTACK_S`] earlier: a voice's attack rises for a few ms before the frames call it
//!   voiced;
//! - a note followed by another within [`MIN_GAP_S`] (the live decoder's corrections: a scoop
//!   that settled, an octave slip) is dropped, and the note that replaced it starts in its place.
//!
//! [`Decoder`] is the live decoder run over a whole recording, hop by hop (the render's first
//! pass; [`decode`] the evaluation's, over batched listener frames).

use crate::controls::Controls;
use crate::generator::posterior;
use crate::listener::ListenerFrame;
use crate::timing::Timing;
use crate::tracker::{NoteTracker, TrackEvent, Voicing};

/// How far back from its decision a note may be moved, seconds (20 hops).
pub const LOOKAHEAD_S: f32 = 0.107;
/// How much earlier than the first voiced hop a note starts, seconds (2 hops).
pub const ATTACK_S: f32 = 0.0107;
/// A note followed by another sooner than this is a correction, seconds.
pub const MIN_GAP_S: f32 = 0.08;

/// A note in hops: hop `h` holds input samples `[h·H, (h+1)·H)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HopNote {
    pub start: usize,
    /// First hop after the note (> `start`).
    pub end: usize,
    /// MIDI note as played (after the controls' scale and transpose).
    pub note: u8,
    /// 0..1.
    pub velocity: f32,
}

/// What the listener heard in one hop, as the decoder judged it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeardHop {
    /// Sung pitch, MIDI; NaN where the hop is not voiced (the decoder's weak threshold, the one
    /// that holds a sounding note).
    pub pitch: f32,
    /// The listener heard a note begin here (the trained listener's onset output through the
    /// decoder's threshold; never for listeners without one).
    pub onset: bool,
}

/// The live decoder's result over a whole recording.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    /// Notes as the live decoder decided them (start = the hop of the decision).
    pub notes: Vec<HopNote>,
    /// Per hop (index = hop).
    pub heard: Vec<HeardHop>,
    /// Per listener frame: voiced at the decoder's strong threshold (frame `k` describes hop
    /// `k - delay`).
    pub voiced: Vec<bool>,
}

/// The live decoder run over a recording hop by hop, keeping what [`refine`] needs: the notes
/// it decides and what it heard in every hop.
pub struct Decoder {
    tracker: NoteTracker,
    voicing: Voicing,
    onset_threshold: Option<f32>,
    /// Listener frames pushed so far.
    frames: usize,
    /// Frame `k` describes hop `k - delay`; a note decided at frame `k` starts at hop
    /// `k - lookahead - delay`.
    delay: usize,
    lookahead: usize,
    prev_energy: f32,
    open: Option<HopNote>,
    out: Decoded,
}

impl Decoder {
    /// For listener frames that describe the hop `delay` hops before their newest (the
    /// listener's calibration), decided with `voicing`.
    pub fn new(t: &Timing, voicing: Voicing, delay: usize) -> Decoder {
        Decoder {
            tracker: NoteTracker::new(t.hop_seconds(), t.lookahead_hops, voicing),
            voicing,
            onset_threshold: voicing.onset_threshold.map(|th| th.max(crate::decoder::ONSET_PEAK)),
            frames: 0,
            delay,
            lookahead: t.lookahead_hops,
            prev_energy: 0.0,
            open: None,
            out: Decoded::default(),
        }
    }

    /// The next listener frame and the newest hop of the listened signal (for the levels), as
    /// the engine hands them to the tracker.
    pub fn push(&mut self, f: &ListenerFrame, hop_samples: &[f32], controls: &Controls) {
        let k = self.frames;
        self.frames += 1;
        let post = posterior(f, hop_samples, &mut self.prev_energy);
        self.out.voiced.push(self.voicing.is_voiced(&post, controls, false));
        if k >= self.delay {
            let voiced = post.pitch.is_finite() && self.voicing.is_voiced(&post, controls, true);
            let onset = self.onset_threshold.is_some_and(|th| post.flux > th);
            self.out.heard.push(HeardHop { pitch: if voiced { post.pitch } else { f32::NAN }, onset });
        }
        let j = k.saturating_sub(self.lookahead + self.delay);
        let (open, notes) = (&mut self.open, &mut self.out.notes);
        self.tracker.push(post, controls, &mut |ev| match ev {
            TrackEvent::On { note, velocity } => {
                if let Some(mut n) = open.take() {
                    n.end = j.max(n.start + 1);
                    notes.push(n);
                }
                *open = Some(HopNote { start: j, end: j + 1, note, velocity });
            }
            TrackEvent::Off { note } => {
                if let Some(mut n) = open.take_if(|n| n.note == note) {
                    n.end = j.max(n.start + 1);
                    notes.push(n);
                }
            }
        });
    }

    /// Everything decided; a note still sounding ends after the last described hop.
    pub fn finish(mut self) -> Decoded {
        if let Some(mut n) = self.open.take() {
            n.end = self.frames.saturating_sub(self.delay).max(n.start + 1);
            self.out.notes.push(n);
        }
        self.out
    }
}

/// [`Decoder`] over a whole recording's listener `frames` and the listened `audio`.
pub fn decode(frames: &[ListenerFrame], audio: &[f32], t: &Timing, voicing: Voicing, controls: &Controls, delay: usize) -> Decoded {
    let mut d = Decoder::new(t, voicing, delay);
    for (k, f) in frames.iter().enumerate() {
        d.push(f, &audio[k * t.hop..(k + 1) * t.hop], controls);
    }
    d.finish()
}

/// Median of the voiced pitches heard in hops `[a, b)`; NaN when none is voiced.
fn median_pitch(heard: &[HeardHop], a: usize, b: usize) -> f32 {
    let mut v: Vec<f32> = heard[a.min(heard.len())..b.min(heard.len())].iter().map(|h| h.pitch).filter(|p| p.is_finite()).collect();
    if v.is_empty() {
        return f32::NAN;
    }
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// The live decoder's `notes` (sorted by start, not overlapping) placed where they began (see
/// the module's doc); `heard` is indexed by hop, `hop_s` its duration.
pub fn refine(notes: &[HopNote], heard: &[HeardHop], hop_s: f32) -> Vec<HopNote> {
    let max_back = (LOOKAHEAD_S / hop_s).round() as usize;
    let pad = (ATTACK_S / hop_s).round() as usize;
    let mut moved: Vec<HopNote> = Vec::with_capacity(notes.len());
    for (i, n) in notes.iter().enumerate() {
        let floor = if i > 0 { notes[i - 1].start + 1 } else { 0 };
        let lo = n.start.saturating_sub(max_back).max(floor);
        // The pitch sung where the decoder decided, and the previous note's (transpose and scale
        // do not enter: both are what the listener heard).
        let sung = match heard.get(n.start).map(|h| h.pitch) {
            Some(p) if p.is_finite() => p,
            _ => median_pitch(heard, n.start, n.end),
        };
        let before = if i > 0 { median_pitch(heard, notes[i - 1].start, n.start) } else { f32::NAN };
        // A re-sung note on the previous pitch: its approach is that pitch too.
        let repeat = (sung - before).abs() < 0.5;
        let mut start = n.start;
        let mut h = n.start;
        while h > lo {
            h -= 1;
            let Some(x) = heard.get(h) else { break };
            if !x.pitch.is_finite() || (!repeat && (x.pitch - before).abs() < 0.5) {
                break;
            }
            start = h;
            if x.onset {
                break;
            }
        }
        moved.push(HopNote { start: start.saturating_sub(pad).max(lo), ..*n });
    }
    // Corrections: a note followed by another within MIN_GAP_S gives way to it.
    let mut out: Vec<HopNote> = Vec::with_capacity(moved.len());
    let mut i = 0;
    while i < moved.len() {
        let n = moved[i];
        if let Some(next) = moved.get_mut(i + 1) {
            if ((next.start.saturating_sub(n.start)) as f32) * hop_s < MIN_GAP_S {
                next.start = n.start;
                i += 1;
                continue;
            }
        }
        out.push(n);
        i += 1;
    }
    // One note at a time: a note ends where the next one now starts.
    for i in 1..out.len() {
        let next_start = out[i].start;
        let prev = &mut out[i - 1];
        prev.end = prev.end.min(next_start).max(prev.start + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOP_S: f32 = 256.0 / 48000.0;

    #[test]
    fn the_limits_in_hops_at_48_khz() {
        assert_eq!(((LOOKAHEAD_S / HOP_S).round(), (ATTACK_S / HOP_S).round(), (MIN_GAP_S / HOP_S).ceil()), (20.0, 2.0, 15.0));
    }

    fn heard(spans: &[(usize, f32)], total: usize) -> Vec<HeardHop> {
        // (first hop, pitch) runs; NaN = unvoiced.
        let mut v = vec![HeardHop { pitch: f32::NAN, onset: false }; total];
        for (w, &(from, p)) in spans.iter().enumerate() {
            let to = spans.get(w + 1).map_or(total, |s| s.0);
            for h in &mut v[from..to] {
                h.pitch = p;
            }
        }
        v
    }

    fn note(start: usize, end: usize, note: u8) -> HopNote {
        HopNote { start, end, note, velocity: 0.8 }
    }

    #[test]
    fn a_note_decided_late_starts_where_the_voice_began() {
        // Silence, then A4 sung from hop 20, decided at hop 27.
        let h = heard(&[(0, f32::NAN), (20, 69.0)], 80);
        let out = refine(&[note(27, 70, 69)], &h, HOP_S);
        assert_eq!(out, vec![note(18, 70, 69)]);
    }

    #[test]
    fn a_glide_starts_where_it_leaves_the_previous_note() {
        // C4 held, a glide up from hop 40 (off C4's pitch from hop 42), E4 decided at hop 50.
        let mut h = heard(&[(10, 60.0), (42, 61.0), (44, 62.5), (46, 63.6), (48, 64.0)], 90);
        h[40].pitch = 60.2;
        h[41].pitch = 60.4;
        let out = refine(&[note(12, 50, 60), note(50, 90, 64)], &h, HOP_S);
        assert_eq!(out, vec![note(8, 40, 60), note(40, 90, 64)]);
    }

    #[test]
    fn the_search_stops_at_a_heard_onset_and_within_the_lookahead() {
        let mut h = heard(&[(0, 67.0)], 100);
        h[30].onset = true;
        // A note on an unbroken voiced stretch (a re-sung syllable the listener heard at hop 30).
        let out = refine(&[note(0, 28, 62), note(36, 100, 67)], &h, HOP_S);
        assert_eq!(out[1].start, 28);
        // Without the onset: at most LOOKAHEAD_S (20 hops) back, then the attack pad stays inside it.
        let h = heard(&[(0, 67.0)], 100);
        let out = refine(&[note(50, 100, 67)], &h, HOP_S);
        assert_eq!(out[0].start, 30);
    }

    #[test]
    fn a_quick_correction_gives_way_to_the_note_that_replaced_it() {
        // A scoop heard a semitone low (decided at hop 30), corrected at hop 35 (27 ms later).
        let h = heard(&[(0, f32::NAN), (25, 63.0), (33, 64.0)], 90);
        let out = refine(&[note(30, 35, 63), note(35, 90, 64)], &h, HOP_S);
        assert_eq!(out, vec![note(23, 90, 64)]);
    }
}

/// On sung phrases from the training singer (scoops, slow glides, a nasal onset).
#[cfg(all(test, feature = "training"))]
mod sung {
    use crate::controls::Controls;
    use crate::eval::score_notes;
    use crate::model::Model;
    use crate::timing::Timing;
    use crate::train::evaluate::{listener_frames, track, Which};
    use crate::train::voice::{render_phrase, Note, Onset, Rand, Voice, VoiceParams, Vowel};
    use crate::ProcessMode;

    fn note(start_s: f32, dur_s: f32, midi: f32, onset: Onset) -> Note {
        Note { start_s, dur_s, midi, vowel: Vowel::A, onset, level: 0.5, scoop: None, glide_s: 0.0, vibrato_cents: 30.0, fry_s: 0.0 }
    }

    #[test]
    fn slow_glides_and_scoops_start_where_they_were_sung() {
        let p = VoiceParams { voice: Voice::Male, formant_scale: 1.0, tilt: 1.0, breath: 0.01, jitter: 0.004, shimmer: 0.04, vibrato_hz: 5.5, attack_s: 0.03, hummed: false };
        let mut notes = vec![note(0.3, 0.5, 52.0, Onset::Vowel)];
        // Slurred up a major third over 180 ms, then down a tone over 150 ms.
        let mut b = note(0.8, 0.6, 56.0, Onset::Slur);
        b.glide_s = 0.18;
        let mut c = note(1.4, 0.6, 54.0, Onset::Slur);
        c.glide_s = 0.15;
        // After a rest, "na" scooped up from 1.5 semitones below.
        let mut d = note(2.4, 0.6, 59.0, Onset::Nasal);
        d.scoop = Some((-1.5, 0.05));
        notes.extend([b, c, d]);
        let sr = 48000.0;
        let clip = render_phrase(&mut Rand::new(11), &p, &notes, sr, 3.4);
        let model = Model::embedded();
        let t = Timing::new(sr, 512, ProcessMode::Offline);
        let frames = listener_frames(Which::Trained, &model, &clip.audio, &t).unwrap();
        let delay = crate::generator::detection_delay(crate::generator::ListenerKind::Trained, &model);
        let tracked = track(Which::Trained, &model, &frames, &clip.audio, &t, &Controls::default(), delay);
        let (live, placed) = (tracked.notes, tracked.placed);
        // Glide onsets at their half-way point (`glide_midpoint_reference`): a 180 ms glide
        // stays within half a semitone of the note it leaves for its first 40 ms.
        let reference: Vec<(f32, f32)> = notes.iter().map(|n| (n.start_s + 0.5 * n.glide_s, n.midi)).collect();
        let (l, s) = (score_notes(&reference, &live, 0.05, 0.5), score_notes(&reference, &placed, 0.05, 0.5));
        assert_eq!((s.matched, s.n_est), (4, 4), "placed: ref {reference:?}\nest {placed:?}\nlive {live:?}");
        // Live, the long glide's note comes once the pitch has arrived, and the scoop is
        // corrected a moment after a note a semitone low.
        assert!(l.matched < 4 && l.n_est > 4, "live: ref {reference:?}\nest {live:?}");
        for (p, r) in placed.iter().zip(&reference) {
            let first_live = live.iter().find(|l| l.1 == p.1 && l.0 > r.0 - 0.05).unwrap();
            assert!(p.0 <= first_live.0, "placed {p:?} after live {first_live:?}");
        }
    }
}
