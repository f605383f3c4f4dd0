//! Note tracker: per-frame listener posteriors → note on/off events, with a fixed lookahead.
//!
//! Plain, deterministic code with the knobs a musician expects (sensitivity, minimum note
//! length, key/scale snap, transpose, velocity response). At every new frame `k` it decides
//! about frame `j = k - lookahead`, seeing frames `j ..= k`: a note starts where the voice is
//! voiced over most of that window, re-starts on a re-sung syllable (a rise of the short-time
//! level after a dip), changes when the median pitch leaves the note by more than half a
//! semitone plus hysteresis, and stops when the voice is unvoiced over most of the window —
//! never before the minimum note length. These rules serve the v0 listener; a listener that
//! reports its own onsets (the trained one) is decoded by [`crate::decoder::NoteDecoder`].

use crate::controls::Controls;
use crate::decoder::NoteDecoder;

/// Frames of history kept (lookahead + look-back for the level dip).
const HISTORY: usize = 32;
/// Frames looked back for the level minimum before a re-sung syllable.
const DIP_LOOKBACK: usize = 8;
/// Level rise (dB) above the recent minimum that marks a re-sung syllable.
const RETRIGGER_RISE_DB: f32 = 9.0;
/// Semitones beyond the half-semitone boundary before the pitch switches note.
const HYSTERESIS: f32 = 0.3;
/// The weak voicing threshold as a fraction of the strong one.
const WEAK_FRACTION: f32 = 0.8;
/// Largest pitch change between the two newest voiced frames (semitones) for the pitch to count
/// as settled.
const START_STEP: f32 = 0.6;
/// Frames after an onset during which no new onset is accepted.
const REFRACTORY: u64 = 8;

/// What the listener said about one frame, plus the short-time level.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FramePosterior {
    /// Estimated pitch, MIDI.
    pub pitch: f32,
    /// How sure the listener is of `pitch`, 0…1.
    pub confidence: f32,
    /// Harmonic salience, 0..1.
    pub periodicity: f32,
    /// Spectral flux, 0..1.
    pub flux: f32,
    /// The listener's share of the octave below `pitch`, 0…1 (see
    /// [`crate::listener::ListenerFrame::octave_below`]).
    pub octave_below: f32,
    /// Level of the newest hop of input, dBFS.
    pub hop_db: f32,
    /// Level of the newest two hops, dBFS (steadier than `hop_db` for low voices, whose period
    /// is longer than a hop): used for the dip before a re-sung syllable.
    pub level_db: f32,
}

/// A decision of the tracker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrackEvent {
    On { note: u8, velocity: f32 },
    Off { note: u8 },
}

/// Voicing calibration (from `listener.voicing`).
#[derive(Debug, Clone, Copy)]
pub struct Voicing {
    /// Periodicity threshold at sensitivity 0.5.
    pub threshold: f32,
    /// Level gate at sensitivity 0.5, dBFS.
    pub gate_db: f32,
    /// Gate change per unit of sensitivity, dB.
    pub gate_span_db: f32,
    /// When the listener hears onsets itself (the trained listener's onset probability, passed
    /// in [`FramePosterior::flux`]), its calibrated onset threshold, and the tracker hands the
    /// frames to [`crate::decoder::NoteDecoder`] (which re-articulates on rising edges through
    /// this threshold or its onset peak, 0.65 by default, whichever is higher); `None` (v0): the
    /// rules of this module.
    pub onset_threshold: Option<f32>,
    /// The note decoder's thresholds (trained listeners only; v0's rules ignore them).
    pub tuning: crate::decoder::DecoderTuning,
    /// Those of the decoder behind the lookahead placement ([`Voicing::for_placement`]).
    pub placed: crate::decoder::DecoderTuning,
}

impl Voicing {
    /// The onset probability a re-articulation rises through: the calibrated threshold or the
    /// decoder's onset peak ([`crate::decoder::DecoderTuning::onset_peak`]), whichever is
    /// higher; `None` for listeners without an onset output.
    pub fn onset_peak(&self) -> Option<f32> {
        self.onset_threshold.map(|t| t.max(self.tuning.onset_peak))
    }

    /// This voicing with the thresholds of the decoder behind the lookahead placement
    /// ([`Voicing::placed`]), for listeners decoded by [`crate::decoder::NoteDecoder`]; v0's
    /// rules keep theirs.
    pub fn for_placement(self) -> Voicing {
        if self.onset_threshold.is_some() {
            Voicing { tuning: self.placed, ..self }
        } else {
            self
        }
    }

    /// Whether `p` is voiced at the strong threshold (`weak = false`) or the weak one, with the
    /// threshold and level gate moved by the sensitivity.
    pub fn is_voiced(&self, p: &FramePosterior, c: &Controls, weak: bool) -> bool {
        let s = c.sensitivity - 0.5;
        let threshold = (self.threshold + self.tuning.voicing_offset) * if weak { WEAK_FRACTION } else { 1.0 } - 0.2 * s;
        let gate = self.gate_db - self.gate_span_db * s;
        p.periodicity > threshold && p.hop_db > gate
    }
}

#[derive(Debug, Clone, Copy)]
struct Current {
    /// Sounding MIDI note (after snap and transpose).
    note: u8,
    /// Snapped note before transpose.
    snapped: i32,
    /// Frame index where it started.
    start: u64,
}

pub struct NoteTracker {
    /// Ring of the last [`HISTORY`] posteriors, indexed by `frame % HISTORY`.
    hist: [FramePosterior; HISTORY],
    /// Frames pushed so far.
    frames: u64,
    /// Hop duration, seconds.
    hop_s: f32,
    /// Lookahead, frames.
    lookahead: usize,
    voicing: Voicing,
    current: Option<Current>,
    /// Frame of the last accepted onset.
    last_onset: Option<u64>,
    /// Pitch (MIDI) of the last decided frame, NaN when unvoiced (for displays).
    pub last_pitch: f32,
    /// Listeners that hear onsets themselves (the trained listener) are decoded by
    /// [`NoteDecoder`] instead of the rules below, which serve v0.
    decoder: Option<NoteDecoder>,
}

impl NoteTracker {
    pub fn new(hop_s: f32, lookahead: usize, voicing: Voicing) -> Self {
        assert!(lookahead < HISTORY - DIP_LOOKBACK);
        NoteTracker {
            hist: [FramePosterior::default(); HISTORY],
            frames: 0,
            hop_s,
            lookahead,
            voicing,
            current: None,
            last_onset: None,
            last_pitch: f32::NAN,
            decoder: voicing.onset_threshold.is_some().then(|| NoteDecoder::new(hop_s, voicing)),
        }
    }

    /// The tracker whose notes a [`crate::lookahead::Placer`] places (the trained listener's
    /// decoder as [`NoteDecoder::for_placement`] tunes it; v0's rules as live).
    pub fn for_placement(hop_s: f32, lookahead: usize, voicing: Voicing) -> Self {
        let mut t = NoteTracker::new(hop_s, lookahead, voicing);
        if let Some(d) = t.decoder.as_mut() {
            *d = NoteDecoder::for_placement(hop_s, voicing);
        }
        t
    }

    pub fn reset(&mut self) {
        self.hist = [FramePosterior::default(); HISTORY];
        self.frames = 0;
        self.current = None;
        self.last_onset = None;
        self.last_pitch = f32::NAN;
        if let Some(d) = &mut self.decoder {
            d.reset();
        }
    }

    /// The note sounding now, if any.
    pub fn sounding(&self) -> Option<u8> {
        if let Some(d) = &self.decoder {
            return d.sounding();
        }
        self.current.map(|c| c.note)
    }

    fn at(&self, frame: u64) -> &FramePosterior {
        &self.hist[(frame % HISTORY as u64) as usize]
    }

    /// Voiced at the strong threshold (`weak = false`) or at the weak one (a note may start
    /// on weak evidence that the lookahead confirms, and a sounding note holds on it).
    fn voiced_at(&self, p: &FramePosterior, c: &Controls, weak: bool) -> bool {
        self.voicing.is_voiced(p, c, weak)
    }

    /// Add frame `k`'s posterior; decisions about frame `k - lookahead` go to `emit`. (The
    /// pitch-stability check also looks one frame before `k - lookahead`.)
    pub fn push(&mut self, post: FramePosterior, c: &Controls, emit: &mut dyn FnMut(TrackEvent)) {
        if let Some(d) = &mut self.decoder {
            // No lookahead of its own: it decides about the newest frame.
            d.push(post, c, emit);
            self.last_pitch = d.last_pitch;
            return;
        }
        let k = self.frames;
        self.hist[(k % HISTORY as u64) as usize] = post;
        self.frames += 1;
        if k < self.lookahead as u64 {
            return;
        }
        let j = k - self.lookahead as u64;

        // Window j..=k: voiced count, and the pitch of the newest voiced frames (they hold the
        // most of a starting note; the first frames of a note see too few periods).
        let mut n = 0;
        let mut strong = 0;
        let mut newest = [f32::NAN; 2];
        let mut peak_db = f32::NEG_INFINITY;
        for f in j.saturating_sub(1)..=k {
            let p = *self.at(f);
            if self.voiced_at(&p, c, true) {
                newest = [newest[1], p.pitch];
                if f >= j {
                    n += 1;
                }
            }
            if f < j {
                continue;
            }
            if self.voiced_at(&p, c, false) {
                strong += 1;
            }
            peak_db = peak_db.max(p.hop_db);
        }
        let window = self.lookahead + 1;
        let majority_voiced = 2 * n > window;
        let pj = *self.at(j);
        let voiced_j = self.voiced_at(&pj, c, true);
        let confirmed = strong >= 1;
        let pitch = newest[1];
        // The two newest voiced frames agree: the pitch is settled.
        let stable = (newest[0] - newest[1]).abs() < START_STEP;
        self.last_pitch = if voiced_j { pj.pitch } else { f32::NAN };

        // Re-sung syllable: the short-time level rises well above its recent minimum at j.
        let mut dip = f32::INFINITY;
        for back in 1..=DIP_LOOKBACK as u64 {
            if back <= j {
                dip = dip.min(self.at(j - back).level_db);
            }
        }
        let prev_db = if j > 0 { self.at(j - 1).level_db } else { f32::NEG_INFINITY };
        let level_onset = pj.level_db - dip >= RETRIGGER_RISE_DB && pj.level_db > prev_db + 2.0;
        let onset = voiced_j && level_onset && self.last_onset.is_none_or(|o| j >= o + REFRACTORY);

        let min_frames = (c.min_note_ms / 1000.0 / self.hop_s).ceil() as u64;
        let velocity = {
            let lin = ((peak_db + 54.0) / 48.0).clamp(0.02, 1.0);
            lin.powf(c.velocity_response).clamp(0.01, 1.0)
        };
        let target = |p: f32| -> (i32, u8) {
            let snapped = c.scale.snap(c.key, p);
            (snapped, (snapped + c.transpose).clamp(21, 108) as u8)
        };

        match self.current {
            None => {
                if voiced_j && majority_voiced && stable && confirmed {
                    let (snapped, note) = target(pitch);
                    self.current = Some(Current { note, snapped, start: j });
                    self.last_onset = Some(j);
                    emit(TrackEvent::On { note, velocity });
                }
            }
            Some(cur) => {
                let held = j - cur.start;
                let long_enough = held >= min_frames;
                if !majority_voiced && !voiced_j {
                    if long_enough {
                        self.current = None;
                        emit(TrackEvent::Off { note: cur.note });
                    }
                } else if majority_voiced && stable && confirmed && long_enough && held >= 2 {
                    let (snapped, note) = target(pitch);
                    let moved = snapped != cur.snapped && (pitch - cur.snapped as f32).abs() > 0.5 + HYSTERESIS;
                    if onset || moved {
                        emit(TrackEvent::Off { note: cur.note });
                        self.current = Some(Current { note, snapped, start: j });
                        self.last_onset = Some(j);
                        emit(TrackEvent::On { note, velocity });
                    }
                }
            }
        }
    }
}
