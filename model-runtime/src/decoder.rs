//! Note decoder for listeners that report their own voicing and onset probabilities (the
//! trained listener): per-frame posteriors → note on/off events, causal, with no lookahead of
//! its own (the listener's detection delay is its lookahead).
//!
//! Made for what the trained listener's notes lost (measured on the held-out set, see
//! BENCHMARKS.md): a scooped attack started the note on the semitone below; wide vibrato
//! flipped a held note between neighbours; a legato change waited for a long average.
//!
//! - **Start**: once the voice is voiced, the note waits until the pitch has settled (the three
//!   newest voiced frames within [`SETTLE_SPREAD`], the newest step under [`SETTLE_STEP`]) or
//!   [`WAIT_FRAMES`] have passed, whichever comes first; a pitch still rising (a scoop from
//!   below) is extrapolated by [`EXTRAPOLATE`] × its last step before it is rounded.
//! - **Pitch confidence**: a start on settled frames, a re-articulation and a legato change
//!   also need the newest frame's pitch confidence (the listener's share of its pitch
//!   distribution within a semitone of its pitch) at [`CONFIDENCE_MIN`] or more; an unsure start
//!   waits for the [`WAIT_FRAMES`] fallback at most. Where an octave or a second voice competes
//!   the listener's pitch is often wrong while still steady: at a syllable's edge it slipped an
//!   octave for 64–74 ms on the real clips, and in babble it followed the other singers. A
//!   tuning may also count a pitch whose octave below holds more than
//!   [`DecoderTuning::octave_below_max`] of the distribution as unsure (a low voice's second
//!   harmonic heard as its pitch), and such a start waits past the fallback until the doubt
//!   clears ([`DOUBT_WAIT_FACTOR`] times the fallback at most): the live decoder above [`OCTAVE_BELOW_MAX`], the placement's not at all
//!   ([`OCTAVE_BELOW_MAX_PLACED`]).
//! - **Voicing hysteresis**: a note starts on the strong threshold and is held on the weak one;
//!   it ends after [`OFF_FRAMES`] unvoiced frames in a row (and never before the minimum note
//!   length). A start that loses the voice for [`PENDING_DROP`] frames is abandoned.
//! - **Re-articulation**: a rising edge of the onset probability through [`ONSET_PEAK`] ends the
//!   sounding note and starts the next (with a refractory time, and none in the first
//!   [`ONSET_AFTER_START`] frames of a note: a consonant before the vowel fires twice). An edge
//!   on an unvoiced frame inside the note (the consonant breaks the voice for less than
//!   [`OFF_FRAMES`]) re-articulates on the next voiced frame.
//! - **Legato change**: the note changes when the mean pitch of the last [`CHANGE_FRAMES`]
//!   frames is further than [`CHANGE_DEVIATION`] semitones (or the vibrato's own excursion so
//!   far plus [`VIBRATO_MARGIN`], whichever is larger) from the note's centre (the mean pitch
//!   since the note began, before those frames), or the newest frame is further than
//!   [`CHANGE_JUMP`]; in both cases the newest frames must have settled. Centre, excursion and
//!   mean are running sums and extrema over a fixed ring: nothing allocates. The decoder behind
//!   the lookahead placement ([`NoteDecoder::for_placement`]) leaves the averaged frames out
//!   of the excursion, so a legato semitone step changes the note there.
//! - **Scooped starts**: within [`SCOOP_FRAMES`] of a note's start, a pitch that settles on
//!   the semitone above the note (more than [`SCOOP_RISE`] above it) changes it there: a scoop
//!   the listener heard settle a semitone low had started the note there, and a one-semitone
//!   step is below the legato change's threshold, so the whole note stayed a semitone flat (16 of
//!   84 scooped notes on clips 0–59 started a semitone low).
//! - **Octave slips**: a note (start or change) an octave or two from the last note, within
//!   [`OCTAVE_MEMORY`] frames of it, waits until that pitch has held [`OCTAVE_FRAMES`] frames:
//!   the listener's brief octave slips at a syllable's edge made 27–64 ms wrong-octave notes on
//!   the real clips; a sung octave leap starts up to 27 ms later.
//! - **Lead level**: a note starts only within [`LEAD_GATE_DB`] of the loudest level the notes
//!   so far reached (falling [`LEAD_FALL_DB_PER_S`]): background singers and noise in the rests
//!   are quieter than the lead voice. A level counts once a sounding note has held it for
//!   [`LEAD_HOLD`] frames, and never above full scale: a 10 ms burst of 1e30 samples once raised
//!   the lead level by 600 dB and gated every later note.

use crate::controls::Controls;
use crate::tracker::{FramePosterior, TrackEvent, Voicing};

/// Voiced frames that must agree before a note starts or changes.
const SETTLE_FRAMES: usize = 3;
/// Largest spread of the [`SETTLE_FRAMES`] newest pitches, semitones (0.2 → 0.4 in the tenth
/// session: note F1 +0.002–0.014 on all four held-out sets, see BENCHMARKS.md).
const SETTLE_SPREAD: f32 = 0.4;
/// Largest step between the two newest pitches, semitones.
const SETTLE_STEP: f32 = 0.06;
/// Frames a start may wait for the pitch to settle (about 48 ms).
const WAIT_FRAMES: u64 = 9;
/// A start whose pitch still rises is extrapolated by this many times its last step.
const EXTRAPOLATE: f32 = 3.0;
/// Unvoiced frames in a row that end a note (about 32 ms).
const OFF_FRAMES: u32 = 6;
/// Unvoiced frames in a row that abandon a start.
const PENDING_DROP: u32 = 2;
/// Frames a syllable re-sung inside a sounding note waits after its onset before it starts: on
/// the onset's own frame the pitch is still the last syllable's (the window lags), so a new
/// syllable on another pitch had re-sung the old one and was corrected a frame or two later (a
/// note too many: live note F1 on the eval melodies 0.892 → 0.919 without it). At least 1: the
/// onset's frame itself only ends the old note.
const RESING_WAIT: u64 = 1;
/// Onset probability whose rising edge re-articulates.
const ONSET_PEAK: f32 = 0.65;
/// Frames after an accepted onset during which no other is accepted.
const REFRACTORY: u64 = 8;
/// Frames after a note's start during which no onset is accepted (about 128 ms: a nasal or "l"
/// before the vowel lasts up to 120 ms, and both fire the onset head).
const ONSET_AFTER_START: u64 = 24;
/// Frames averaged for a legato change (about 64 ms).
const CHANGE_FRAMES: u64 = 12;
/// Distance of that mean from the note's centre that changes the note, semitones.
const CHANGE_DEVIATION: f32 = 1.0;
/// Distance of the newest frame from the centre that changes the note, semitones.
const CHANGE_JUMP: f32 = 1.4;
/// Frames after a note's start (a new syllable or a legato change) during which a pitch settled
/// on the semitone above the note corrects it (about 64 ms).
const SCOOP_FRAMES: u64 = 12;
/// Distance above the note's pitch that corrects a young note to the semitone above, semitones.
const SCOOP_RISE: f32 = 0.6;
/// Newest frames left out of the vibrato excursion.
const RECENT: u64 = 8;
/// Margin over the vibrato excursion, semitones.
const VIBRATO_MARGIN: f32 = 0.2;
/// Frames an octave jump from the last note must hold before a note starts on it (about 43 ms).
const OCTAVE_FRAMES: u64 = 8;
/// Pitch confidence (the listener's share of its pitch distribution within a semitone of its
/// pitch) below which a frame starts and changes no note.
const CONFIDENCE_MIN: f32 = 0.7;
/// A pitch whose octave below holds more than this share of the listener's distribution is not
/// one the live decoder is sure of (a low voice's second harmonic heard as its pitch), and its
/// start waits past the fallback (twentieth session: the shipped listener's one live octave
/// error on the real clips goes, held-out note F1 within ±0.001, see BENCHMARKS.md).
const OCTAVE_BELOW_MAX: f32 = 0.15;
/// The same for the decoder behind the placement: no such test (1), its octave errors on the
/// real clips were already none and the test cost its held-out clips 0.001–0.002.
const OCTAVE_BELOW_MAX_PLACED: f32 = 1.0;
/// A start held back by that doubt waits at most this many times [`WAIT_FRAMES`] (about 0.19 s):
/// a low voice the listener stays unsure of still gets its note, late, rather than none.
const DOUBT_WAIT_FACTOR: u64 = 4;
/// Frames after the last note during which an octave jump from it must be confirmed (about 0.2 s).
const OCTAVE_MEMORY: u64 = 40;
/// A note starts only within this many dB of the lead voice's level.
const LEAD_GATE_DB: f32 = 15.0;
/// How fast the remembered lead level falls, dB per second.
const LEAD_FALL_DB_PER_S: f32 = 3.0;
/// Frames a level must hold before it raises the lead level (about 43 ms: a click or a burst of
/// bad samples is shorter).
const LEAD_HOLD: u64 = 8;
/// The lead level never rises above full scale (a burst of huge samples would otherwise gate
/// every note after it for minutes).
const LEAD_CEILING_DB: f32 = 0.0;
/// Ring of pitch history (must exceed `CHANGE_FRAMES` and `RECENT + 1`).
const RING: usize = 16;

/// The decoder's thresholds that a listener's frames decide (the constants above are the
/// defaults, fitted to the shipped listener). `cargo xtask eval fit-decoder` fits them to a
/// listener on validation clips no held-out score uses; the engine runs the defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecoderTuning {
    /// [`SETTLE_SPREAD`].
    pub settle_spread: f32,
    /// [`SETTLE_STEP`].
    pub settle_step: f32,
    /// [`WAIT_FRAMES`].
    pub wait_frames: u64,
    /// [`EXTRAPOLATE`].
    pub extrapolate: f32,
    /// [`OFF_FRAMES`].
    pub off_frames: u32,
    /// [`ONSET_PEAK`] (the listener's calibrated onset threshold applies when higher).
    pub onset_peak: f32,
    /// [`CHANGE_DEVIATION`].
    pub change_deviation: f32,
    /// [`CHANGE_JUMP`].
    pub change_jump: f32,
    /// [`SCOOP_RISE`].
    pub scoop_rise: f32,
    /// [`VIBRATO_MARGIN`].
    pub vibrato_margin: f32,
    /// [`CONFIDENCE_MIN`].
    pub confidence_min: f32,
    /// [`LEAD_GATE_DB`].
    pub lead_gate_db: f32,
    /// [`OCTAVE_BELOW_MAX`].
    pub octave_below_max: f32,
    /// Added to the listener's calibrated voicing threshold (the strong one; the weak one
    /// follows it), so that a fit leaves the model file as its training wrote it.
    pub voicing_offset: f32,
}

impl Default for DecoderTuning {
    fn default() -> Self {
        DecoderTuning {
            settle_spread: SETTLE_SPREAD,
            settle_step: SETTLE_STEP,
            wait_frames: WAIT_FRAMES,
            extrapolate: EXTRAPOLATE,
            off_frames: OFF_FRAMES,
            onset_peak: ONSET_PEAK,
            change_deviation: CHANGE_DEVIATION,
            change_jump: CHANGE_JUMP,
            scoop_rise: SCOOP_RISE,
            vibrato_margin: VIBRATO_MARGIN,
            confidence_min: CONFIDENCE_MIN,
            lead_gate_db: LEAD_GATE_DB,
            octave_below_max: OCTAVE_BELOW_MAX,
            voicing_offset: 0.0,
        }
    }
}

/// A field of [`DecoderTuning`] as a value of a model file's row.
trait RowValue: Sized + Copy {
    fn to_value(self) -> f32;
    /// The field from a value already inside its range; an error says why it cannot be one.
    fn from_value(v: f32) -> Result<Self, &'static str>;
}

impl RowValue for f32 {
    fn to_value(self) -> f32 {
        self
    }
    fn from_value(v: f32) -> Result<Self, &'static str> {
        Ok(v)
    }
}

macro_rules! frame_count_row_value {
    ($($t:ty),*) => {$(
        impl RowValue for $t {
            fn to_value(self) -> f32 {
                self as f32
            }
            fn from_value(v: f32) -> Result<Self, &'static str> {
                if v.fract() == 0.0 { Ok(v as $t) } else { Err("is not a whole number of frames") }
            }
        }
    )*};
}
frame_count_row_value!(u32, u64);

/// The row of a model file's `listener.net.decoder` tensor, named once: each field in row order
/// with the name an error uses and the range a file may hold.
macro_rules! decoder_tuning_row {
    ($($field:ident: $name:literal, $lo:expr, $hi:expr;)*) => {
        impl DecoderTuning {
            /// Values in a model file's `listener.net.decoder` row (see [`DecoderTuning::to_row`]).
            pub const ROW: usize = [$($name),*].len();

            /// As a row of a model file's `listener.net.decoder` tensor.
            pub fn to_row(&self) -> [f32; Self::ROW] {
                [$(RowValue::to_value(self.$field)),*]
            }

            /// From a row written by [`DecoderTuning::to_row`]; an error names the value out of
            /// its range.
            pub fn from_row(r: &[f32]) -> Result<DecoderTuning, String> {
                if r.len() != Self::ROW {
                    return Err(format!("{} values, want {}", r.len(), Self::ROW));
                }
                let mut values = r.iter().copied();
                Ok(DecoderTuning {$(
                    $field: {
                        let v = values.next().unwrap_or(f32::NAN);
                        let (lo, hi): (f32, f32) = ($lo, $hi);
                        if !(lo..=hi).contains(&v) {
                            return Err(format!("{} {v} outside {lo}..={hi}", $name));
                        }
                        RowValue::from_value(v).map_err(|why| format!("{} {v} {why}", $name))?
                    },
                )*})
            }
        }
    };
}

decoder_tuning_row! {
    settle_spread: "settle spread", 0.0, 12.0;
    settle_step: "settle step", 0.0, 12.0;
    wait_frames: "wait frames", 1.0, 64.0;
    extrapolate: "extrapolate", 0.0, 16.0;
    off_frames: "off frames", 1.0, 64.0;
    onset_peak: "onset peak", 0.0, 1.0;
    change_deviation: "change deviation", 0.0, 12.0;
    change_jump: "change jump", 0.0, 24.0;
    scoop_rise: "scoop rise", 0.0, 1.0;
    vibrato_margin: "vibrato margin", 0.0, 12.0;
    confidence_min: "confidence min", 0.0, 1.0;
    lead_gate_db: "lead gate dB", 0.0, 200.0;
    voicing_offset: "voicing offset", -1.0, 1.0;
    octave_below_max: "octave below max", 0.0, 1.0;
}

impl DecoderTuning {
    /// The thresholds of the decoder behind the lookahead placement when the model file names
    /// none ([`NoteDecoder::for_placement`]; see [`crate::tracker::Voicing::for_placement`]).
    pub fn placement() -> DecoderTuning {
        DecoderTuning { octave_below_max: OCTAVE_BELOW_MAX_PLACED, ..DecoderTuning::default() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Idle,
    /// Voiced since frame `since`; waiting for the pitch to settle, and starting on frame `from`
    /// at the earliest (a syllable re-sung inside a note: [`RESING_WAIT`] after its onset).
    Pending { since: u64, from: u64 },
    Sounding { note: u8, snapped: i32, start: u64 },
}

/// The decoder's state; see the module documentation.
pub struct NoteDecoder {
    hop_s: f32,
    voicing: Voicing,
    /// Pitch of the last [`RING`] frames (NaN where unvoiced), indexed by `frame % RING`.
    ring: [f32; RING],
    /// Level (dBFS) of the last [`RING`] frames where a note sounded voiced, −∞ elsewhere.
    levels: [f32; RING],
    frames: u64,
    state: State,
    unvoiced: u32,
    last_onset: Option<u64>,
    prev_onset_prob: f32,
    /// An onset rose while the voice broke inside a sounding note (the consonant of a re-sung
    /// syllable is unvoiced): it re-articulates on the next voiced frame.
    onset_in_break: bool,
    /// Newest frames left out of the excursion ([`RECENT`] live; see
    /// [`NoteDecoder::for_placement`]).
    recent: u64,
    /// First frame of the current note's centre and excursion.
    centre_from: u64,
    centre_sum: f32,
    centre_n: u32,
    excursion_min: f32,
    excursion_max: f32,
    /// The last note sounded (its pitch before transposition) and the last frame it sounded.
    last_note: Option<(i32, u64)>,
    /// Level of the lead voice, dBFS: the loudest level of the notes sung, falling slowly.
    lead_db: f32,
    /// Pitch (MIDI) of the newest frame, NaN when unvoiced (for displays).
    pub last_pitch: f32,
}

impl NoteDecoder {
    pub fn new(hop_s: f32, voicing: Voicing) -> Self {
        const {
            assert!(RING as u64 > CHANGE_FRAMES);
            assert!(RING as u64 > RECENT + 1);
            assert!(RING as u64 >= OCTAVE_FRAMES);
            assert!(RING as u64 >= LEAD_HOLD);
        };
        NoteDecoder {
            hop_s,
            voicing,
            ring: [f32::NAN; RING],
            levels: [f32::NEG_INFINITY; RING],
            frames: 0,
            state: State::Idle,
            unvoiced: 0,
            last_onset: None,
            prev_onset_prob: 0.0,
            onset_in_break: false,
            recent: RECENT,
            centre_from: 0,
            centre_sum: 0.0,
            centre_n: 0,
            excursion_min: f32::INFINITY,
            excursion_max: f32::NEG_INFINITY,
            last_note: None,
            lead_db: f32::NEG_INFINITY,
            last_pitch: f32::NAN,
        }
    }

    /// The decoder whose notes a [`crate::lookahead::Placer`] places: the vibrato excursion
    /// leaves out every frame of the mean a legato change tests ([`CHANGE_FRAMES`]), so a legato
    /// step of one semitone changes the note (live, the excursion took in the step's first
    /// frames and raised the threshold past it: 17 of 20 such steps on clips 0–59 played no
    /// note). It also lets more vibrato swings through as brief notes, which live would play
    /// and the placer takes back (a note that returns to the one before within its correction
    /// gap), so only the placed path uses it.
    pub fn for_placement(hop_s: f32, voicing: Voicing) -> Self {
        NoteDecoder { recent: CHANGE_FRAMES - 1, ..NoteDecoder::new(hop_s, voicing) }
    }

    pub fn reset(&mut self) {
        *self = NoteDecoder { recent: self.recent, ..NoteDecoder::new(self.hop_s, self.voicing) };
    }

    /// The note sounding now, if any.
    pub fn sounding(&self) -> Option<u8> {
        match self.state {
            State::Sounding { note, .. } => Some(note),
            _ => None,
        }
    }

    fn tuning(&self) -> &DecoderTuning {
        &self.voicing.tuning
    }

    fn at(&self, frame: u64) -> f32 {
        self.ring[(frame % RING as u64) as usize]
    }

    /// The newest [`SETTLE_FRAMES`] frames are voiced and agree.
    fn settled(&self, k: u64) -> bool {
        if k + 1 < SETTLE_FRAMES as u64 {
            return false;
        }
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for f in k + 1 - SETTLE_FRAMES as u64..=k {
            let p = self.at(f);
            if p.is_nan() {
                return false;
            }
            lo = lo.min(p);
            hi = hi.max(p);
        }
        hi - lo < self.tuning().settle_spread && (self.at(k) - self.at(k - 1)).abs() < self.tuning().settle_step
    }

    /// Whether a note may start at frame `k` on its newest pitch: a pitch an octave (or two)
    /// from the last note, within [`OCTAVE_MEMORY`] frames of it, must have held for
    /// [`OCTAVE_FRAMES`] frames first (a listener's octave slip lasts a few frames; a sung
    /// octave leap is rare and waits 43 ms more).
    fn confirmed(&self, k: u64) -> bool {
        let Some((last, until)) = self.last_note else { return true };
        let newest = self.at(k);
        let d = (newest - last as f32).abs();
        if k > until + OCTAVE_MEMORY || ((d - 12.0).abs() > 1.0 && (d - 24.0).abs() > 1.0) {
            return true;
        }
        k + 1 >= OCTAVE_FRAMES && (k + 1 - OCTAVE_FRAMES..=k).all(|f| (self.at(f) - newest).abs() < 0.5)
    }

    /// Whether a note pending since frame `since` may start at frame `k`: its pitch has settled
    /// and the listener is `sure` of it, or the start has waited [`WAIT_FRAMES`] and its octave
    /// below is not in `doubt` (or it has waited [`DOUBT_WAIT_FACTOR`] times that); and an
    /// octave from the last note it has held (see [`NoteDecoder::confirmed`]).
    fn ready(&self, k: u64, since: u64, sure: bool, doubt: bool) -> bool {
        let wait = self.tuning().wait_frames;
        ((self.settled(k) && sure) || (k >= since + wait && !doubt) || k >= since + DOUBT_WAIT_FACTOR * wait) && self.confirmed(k)
    }

    /// Start a note at frame `k` (a new syllable, or a legato change when `legato`).
    fn start(&mut self, k: u64, legato: bool, c: &Controls, velocity: f32, emit: &mut dyn FnMut(TrackEvent)) {
        let (a, b) = (self.at(k.saturating_sub(1)), self.at(k));
        let pitch = if a.is_nan() {
            b
        } else if legato {
            0.5 * (a + b)
        } else {
            // A pitch still rising (a scoop from below) is extrapolated towards where it goes.
            b + self.tuning().extrapolate * (b - a).max(0.0)
        };
        let snapped = c.scale.snap(c.key, pitch);
        let note = (snapped + c.transpose).clamp(21, 108) as u8;
        if let State::Sounding { note: old, .. } = self.state {
            emit(TrackEvent::Off { note: old });
        }
        self.state = State::Sounding { note, snapped, start: k };
        self.centre_from = k.saturating_sub(1);
        self.centre_sum = 0.0;
        self.centre_n = 0;
        self.excursion_min = f32::INFINITY;
        self.excursion_max = f32::NEG_INFINITY;
        if !legato {
            // The consonant and the vowel of one syllable can both fire the onset head.
            let hold = k + ONSET_AFTER_START - REFRACTORY;
            self.last_onset = Some(self.last_onset.map_or(hold, |o| o.max(hold)));
        }
        emit(TrackEvent::On { note, velocity });
    }

    /// Add the newest frame's posterior; note events go to `emit`.
    pub fn push(&mut self, post: FramePosterior, c: &Controls, emit: &mut dyn FnMut(TrackEvent)) {
        let k = self.frames;
        self.frames += 1;
        let holding = self.state != State::Idle;
        let voiced = post.pitch.is_finite() && self.voicing.is_voiced(&post, c, holding);
        self.ring[(k % RING as u64) as usize] = if voiced { post.pitch } else { f32::NAN };
        // A pitch the listener is unsure of (an octave or another voice competes) starts no note
        // and changes none on its own: only the fallback after WAIT_FRAMES does.
        // Nor does one whose octave below holds more than the tuning's share (a low voice's
        // second harmonic heard as its pitch): that start waits past the fallback too.
        let doubt = post.octave_below > self.tuning().octave_below_max;
        let sure = (post.confidence.is_nan() || post.confidence >= self.tuning().confidence_min) && !doubt;
        self.last_pitch = if voiced { post.pitch } else { f32::NAN };

        // Running centre (frames up to k − CHANGE_FRAMES) and excursion (up to k − recent − 1)
        // of the sounding note.
        if k >= CHANGE_FRAMES && k - CHANGE_FRAMES >= self.centre_from {
            let p = self.at(k - CHANGE_FRAMES);
            if !p.is_nan() {
                self.centre_sum += p;
                self.centre_n += 1;
            }
        }
        if k > self.recent && k - self.recent > self.centre_from {
            let p = self.at(k - self.recent - 1);
            if !p.is_nan() {
                self.excursion_min = self.excursion_min.min(p);
                self.excursion_max = self.excursion_max.max(p);
            }
        }

        let th = self.voicing.onset_peak().unwrap_or(self.tuning().onset_peak);
        let rising = post.flux > th && self.prev_onset_prob <= th;
        self.prev_onset_prob = post.flux;
        let onset = rising && self.last_onset.is_none_or(|o| k >= o + REFRACTORY);
        let velocity = {
            let lin = ((post.hop_db + 54.0) / 48.0).clamp(0.02, 1.0);
            lin.powf(c.velocity_response).clamp(0.01, 1.0)
        };
        let min_frames = (c.min_note_ms / 1000.0 / self.hop_s).ceil() as u64;
        self.lead_db -= LEAD_FALL_DB_PER_S * self.hop_s;
        let sounding = matches!(self.state, State::Sounding { .. }) && voiced;
        self.levels[(k % RING as u64) as usize] = if sounding { post.level_db.min(LEAD_CEILING_DB) } else { f32::NEG_INFINITY };
        if sounding && k + 1 >= LEAD_HOLD {
            // The level the note held over its last LEAD_HOLD frames.
            let held = (k + 1 - LEAD_HOLD..=k).map(|f| self.levels[(f % RING as u64) as usize]).fold(f32::INFINITY, f32::min);
            self.lead_db = self.lead_db.max(held);
        }
        // Background voices and tails far below the lead voice start nothing.
        let loud_enough = post.level_db > self.lead_db - self.tuning().lead_gate_db;

        match self.state {
            State::Idle => {
                if voiced {
                    self.unvoiced = 0;
                    if onset {
                        self.last_onset = Some(k);
                    }
                    self.state = State::Pending { since: k, from: k };
                    if self.ready(k, k, sure, doubt) && loud_enough {
                        self.start(k, false, c, velocity, emit);
                    }
                }
            }
            State::Pending { since, from } => {
                if !voiced {
                    self.unvoiced += 1;
                    if self.unvoiced >= PENDING_DROP {
                        self.state = State::Idle;
                        self.unvoiced = 0;
                    }
                } else {
                    self.unvoiced = 0;
                    if self.ready(k, since, sure, doubt) && loud_enough && k >= from {
                        self.start(k, false, c, velocity, emit);
                    }
                }
            }
            State::Sounding { note, snapped, start } => {
                self.last_note = Some((snapped, k));
                if !voiced {
                    self.unvoiced += 1;
                    self.onset_in_break |= onset;
                    if self.unvoiced >= self.tuning().off_frames && k >= start + min_frames {
                        emit(TrackEvent::Off { note });
                        self.state = State::Idle;
                        self.unvoiced = 0;
                        self.onset_in_break = false;
                    }
                    return;
                }
                self.unvoiced = 0;
                let onset_in_break = std::mem::take(&mut self.onset_in_break);
                if onset || onset_in_break {
                    // A re-sung syllable: end this note, start the next once its pitch settles, not
                    // before RESING_WAIT frames from here.
                    self.last_onset = Some(k);
                    emit(TrackEvent::Off { note });
                    self.state = State::Pending { since: k, from: k + RESING_WAIT };
                    return;
                }
                if !self.settled(k) {
                    return;
                }
                let centre = if self.centre_n >= 3 { self.centre_sum / self.centre_n as f32 } else { snapped as f32 };
                let (mut sum, mut n) = (0.0f32, 0u32);
                for f in k.saturating_sub(CHANGE_FRAMES - 1).max(self.centre_from)..=k {
                    let p = self.at(f);
                    if !p.is_nan() {
                        sum += p;
                        n += 1;
                    }
                }
                let mean = sum / n.max(1) as f32;
                let mut threshold = self.tuning().change_deviation;
                if self.excursion_max.is_finite() {
                    let excursion = (self.excursion_max - centre).max(centre - self.excursion_min);
                    threshold = threshold.max(excursion + self.tuning().vibrato_margin);
                }
                let newest = self.at(k);
                let newest_snapped = c.scale.snap(c.key, newest);
                // A scooped attack that started on the semitone below: the pitch settles one
                // semitone up within the note's first frames.
                let scooped = k < start + SCOOP_FRAMES && newest - snapped as f32 > self.tuning().scoop_rise && newest_snapped == snapped + 1;
                let moved = newest_snapped != snapped
                    && (scooped || ((mean - centre).abs() > threshold && c.scale.snap(c.key, mean) != snapped) || (newest - centre).abs() > self.tuning().change_jump);
                if moved && sure && self.confirmed(k) {
                    self.start(k, true, c, velocity, emit);
                }
            }
        }
    }
}

/// The decoder on hand-made frames (what a listener would report), where one rule decides.
#[cfg(test)]
mod rules {
    use super::*;

    const HOP_S: f32 = 256.0 / 48000.0;

    #[test]
    fn thresholds_round_trip_through_a_model_file_row_and_bad_ones_are_refused() {
        let fitted = DecoderTuning { settle_spread: 0.2, wait_frames: 15, off_frames: 5, confidence_min: 0.8, voicing_offset: -0.15, ..DecoderTuning::default() };
        for t in [DecoderTuning::default(), DecoderTuning::placement(), fitted] {
            assert_eq!(DecoderTuning::from_row(&t.to_row()), Ok(t));
        }
        let mut row = fitted.to_row();
        row[2] = 2.5;
        assert_eq!(DecoderTuning::from_row(&row), Err("wait frames 2.5 is not a whole number of frames".to_string()));
        row[2] = 9.0;
        row[5] = -0.1;
        assert_eq!(DecoderTuning::from_row(&row), Err("onset peak -0.1 outside 0..=1".to_string()));
        assert!(DecoderTuning::from_row(&row[..12]).is_err());
        row[5] = 0.65;
        row[13] = 1.5;
        assert_eq!(DecoderTuning::from_row(&row), Err("octave below max 1.5 outside 0..=1".to_string()));
    }

    #[test]
    fn a_pitch_whose_octave_below_competes_starts_and_changes_no_note_when_the_tuning_says_so() {
        // A2 held, then 24 frames (128 ms) the listener hears an octave up, sure of it by its
        // confidence (0.9) but with 0.4 of its distribution on the octave below (a low voice's
        // second harmonic), then A2 again.
        let frames = || {
            let a2 = |n| std::iter::repeat_n(frame(45.0, -20.0, 0.95), n);
            let up = std::iter::repeat_n(FramePosterior { octave_below: 0.4, ..frame(57.0, -20.0, 0.9) }, 24);
            a2(60).chain(up).chain(a2(60))
        };
        // Without the test (the placement's thresholds) the slip holds 8 frames and is played.
        let untested = DecoderTuning::placement();
        let shipped = note_ons_tuned(frames(), untested);
        assert_eq!(shipped.iter().map(|n| n.1).collect::<Vec<_>>(), vec![45, 57, 45], "{shipped:?}");
        // With the test at 0.3 the slip is a pitch the decoder is not sure of: one A2 throughout.
        let tested = note_ons_tuned(frames(), DecoderTuning { octave_below_max: 0.3, ..DecoderTuning::default() });
        assert_eq!(tested.iter().map(|n| n.1).collect::<Vec<_>>(), vec![45], "{tested:?}");
        // A sung octave leap the listener is sure of (no share below) still changes the note.
        let leap = note_ons_tuned(
            std::iter::repeat_n(frame(45.0, -20.0, 0.95), 60).chain(std::iter::repeat_n(frame(57.0, -20.0, 0.95), 60)),
            DecoderTuning { octave_below_max: 0.3, ..DecoderTuning::default() },
        );
        assert_eq!(leap.iter().map(|n| n.1).collect::<Vec<_>>(), vec![45, 57], "{leap:?}");
        // A phrase that begins with the slip: without the test it starts an octave up once the
        // fallback has waited; with it (the live default) it starts when the A2 comes, on A2.
        let phrase = || std::iter::repeat_n(FramePosterior { octave_below: 0.4, ..frame(57.0, -20.0, 0.9) }, 24).chain(std::iter::repeat_n(frame(45.0, -20.0, 0.95), 60));
        let shipped = note_ons_tuned(phrase(), untested);
        assert_eq!(shipped.first().map(|n| n.1), Some(57), "{shipped:?}");
        let tested = note_ons(phrase());
        assert_eq!(tested.iter().map(|n| n.1).collect::<Vec<_>>(), vec![45], "{tested:?}");
        assert!(tested[0].0 >= 24, "{tested:?}");
        // A voice the listener stays in doubt about still gets its note, after the longer wait.
        let doubtful = note_ons(std::iter::repeat_n(FramePosterior { octave_below: 0.4, ..frame(57.0, -20.0, 0.9) }, 100));
        assert_eq!(doubtful, vec![(DOUBT_WAIT_FACTOR * WAIT_FRAMES, 57)]);
    }

    fn frame(pitch: f32, level_db: f32, confidence: f32) -> FramePosterior {
        FramePosterior { pitch, confidence, periodicity: if pitch.is_finite() { 0.99 } else { 0.01 }, flux: 0.0, octave_below: 0.0, hop_db: level_db, level_db }
    }

    /// Notes (onset frame, note) of a run of (pitch, frames, level) segments the listener is
    /// sure of.
    fn notes(segments: &[(f32, usize, f32)]) -> Vec<(u64, u8)> {
        notes_with(&segments.iter().map(|&(p, n, l)| (p, n, l, 0.95)).collect::<Vec<_>>())
    }

    /// Note-ons (frame, note) of held A4 frames with a voice break over `gap` and the onset
    /// probability at 0.9 over `onset`.
    fn resung(gap: std::ops::Range<u64>, onset: std::ops::Range<u64>) -> Vec<(u64, u8)> {
        note_ons((0..120u64).map(|k| {
            let mut f = frame(if gap.contains(&k) { f32::NAN } else { 69.0 }, -20.0, 0.95);
            if onset.contains(&k) {
                f.flux = 0.9;
            }
            f
        }))
    }

    #[test]
    fn an_onset_that_rises_in_a_brief_voice_break_re_sings_the_note() {
        // The consonant of a syllable re-sung on the same pitch breaks the voice for 3 frames
        // (under OFF_FRAMES, so the note holds) and the onset rises on its last unvoiced frame:
        // the next voiced frame re-articulates (the rising edge had been spent on the unvoiced
        // frame and the syllable was lost).
        let out = resung(60..63, 62..64);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[1].1, 69);
        assert!((63..=66).contains(&out[1].0), "{out:?}");
        // The onset rising on the first voiced frame after the break, as before.
        assert_eq!(resung(60..63, 63..65).len(), 2);
        // A voice break without an onset is no new note.
        assert_eq!(resung(60..63, 0..0).len(), 1);
    }

    #[test]
    fn a_new_syllable_on_another_pitch_does_not_re_sing_the_old_one_first() {
        // A4 held; a syllable on B4 whose onset fires on the last frame the (lagging) window
        // still hears A4. One note, B4 — not A4 re-sung and corrected to B4 a frame later.
        let out = note_ons((0..120u64).map(|k| {
            let mut f = frame(if k <= 60 { 69.0 } else { 71.0 }, -20.0, 0.95);
            if (60..62).contains(&k) {
                f.flux = 0.9;
            }
            f
        }));
        assert_eq!(out.iter().map(|o| o.1).collect::<Vec<_>>(), vec![69, 71], "{out:?}");
        assert!((61..=64).contains(&out[1].0), "{out:?}");
        // The same syllable on A4 is re-sung one frame after its onset.
        let out = resung(0..0, 60..62);
        assert_eq!(out, vec![(2, 69), (61, 69)]);
    }

    /// Notes of a run of (pitch, frames, level, pitch confidence) segments.
    fn notes_with(segments: &[(f32, usize, f32, f32)]) -> Vec<(u64, u8)> {
        note_ons(segments.iter().flat_map(|&(pitch, n, level, confidence)| std::iter::repeat_n(frame(pitch, level, confidence), n)))
    }

    /// Note-ons (frame, note) the decoder makes of `frames`.
    fn note_ons(frames: impl IntoIterator<Item = FramePosterior>) -> Vec<(u64, u8)> {
        note_ons_tuned(frames, DecoderTuning::default())
    }

    /// [`note_ons`] with the live decoder's thresholds `tuning`.
    fn note_ons_tuned(frames: impl IntoIterator<Item = FramePosterior>, tuning: DecoderTuning) -> Vec<(u64, u8)> {
        let voicing = Voicing { threshold: 0.5, gate_db: -80.0, gate_span_db: 20.0, onset_threshold: Some(0.5), tuning, placed: DecoderTuning::placement() };
        let mut d = NoteDecoder::new(HOP_S, voicing);
        let c = Controls::default();
        let mut out = Vec::new();
        for (k, f) in (0u64..).zip(frames) {
            d.push(f, &c, &mut |e| {
                if let TrackEvent::On { note, .. } = e {
                    out.push((k, note));
                }
            });
        }
        out
    }

    #[test]
    fn a_brief_octave_slip_plays_no_note_but_a_held_leap_does() {
        // A2 held, the listener slips an octave up for 6 frames (32 ms) and back: one note.
        let slip = notes(&[(f32::NAN, 10, -90.0), (45.0, 60, -20.0), (57.0, 6, -20.0), (45.0, 40, -20.0)]);
        assert_eq!(slip.iter().map(|n| n.1).collect::<Vec<_>>(), vec![45], "{slip:?}");
        // The same slip as a new syllable's first frames right after the note: still nothing.
        let restart = notes(&[(f32::NAN, 10, -90.0), (45.0, 60, -20.0), (f32::NAN, 8, -90.0), (57.0, 6, -20.0), (45.0, 40, -20.0)]);
        assert_eq!(restart.iter().map(|n| n.1).collect::<Vec<_>>(), vec![45, 45], "{restart:?}");
        // A sung octave leap that holds: its note starts within OCTAVE_FRAMES of the leap.
        let leap = notes(&[(f32::NAN, 10, -90.0), (45.0, 60, -20.0), (57.0, 40, -20.0)]);
        assert_eq!(leap.iter().map(|n| n.1).collect::<Vec<_>>(), vec![45, 57], "{leap:?}");
        assert!(leap[1].0 < 70 + OCTAVE_FRAMES, "{leap:?}");
        // A fifth is no octave: it changes as fast as before.
        let fifth = notes(&[(f32::NAN, 10, -90.0), (45.0, 60, -20.0), (52.0, 40, -20.0)]);
        assert_eq!(fifth.iter().map(|n| n.1).collect::<Vec<_>>(), vec![45, 52]);
        assert!(fifth[1].0 < leap[1].0, "{fifth:?} {leap:?}");
    }

    #[test]
    fn a_legato_semitone_step_changes_the_note_for_placement() {
        let voicing = Voicing { threshold: 0.5, gate_db: -80.0, gate_span_db: 20.0, onset_threshold: Some(0.5), tuning: DecoderTuning::default(), placed: DecoderTuning::placement() };
        let c = Controls::default();
        let run = |mut d: NoteDecoder, pitch: &dyn Fn(usize) -> f32| {
            let mut out = Vec::new();
            for k in 0..160 {
                let p = if k < 10 { f32::NAN } else { pitch(k) };
                d.push(frame(p, -20.0, 0.95), &c, &mut |e| {
                    if let TrackEvent::On { note, .. } = e {
                        out.push(note);
                    }
                });
            }
            out
        };
        // C4 held, then a legato step to a slightly sharp C♯4 (1.1 semitones up).
        let step = |k: usize| if k < 80 { 60.0 } else { 61.1 };
        // Live, the step's first frames widen the vibrato excursion and the threshold passes it.
        assert_eq!(run(NoteDecoder::new(HOP_S, voicing), &step), vec![60]);
        assert_eq!(run(NoteDecoder::for_placement(HOP_S, voicing), &step), vec![60, 61]);
        // A vibrato of ±0.6 semitone at 5.5 Hz stays one note either way.
        let vibrato = |k: usize| 60.0 + 0.6 * (std::f32::consts::TAU * 5.5 * k as f32 * HOP_S).sin();
        assert_eq!(run(NoteDecoder::new(HOP_S, voicing), &vibrato), vec![60]);
        assert_eq!(run(NoteDecoder::for_placement(HOP_S, voicing), &vibrato), vec![60]);
    }

    #[test]
    fn an_unsure_pitch_starts_and_changes_no_note() {
        // A phrase begins with 6 frames (32 ms) the listener hears an octave up but is unsure of
        // (the octave below competes), then the sung A2: one note, on A2.
        let slip = notes_with(&[(f32::NAN, 10, -90.0, 0.0), (57.0, 6, -20.0, 0.4), (45.0, 40, -20.0, 0.95)]);
        assert_eq!(slip.iter().map(|n| n.1).collect::<Vec<_>>(), vec![45], "{slip:?}");
        // A held C4, 8 frames of another voice a minor third up that the listener is unsure of,
        // C4 again: one note.
        let other = notes_with(&[(f32::NAN, 10, -90.0, 0.0), (60.0, 60, -20.0, 0.95), (63.0, 8, -20.0, 0.5), (60.0, 40, -20.0, 0.95)]);
        assert_eq!(other.iter().map(|n| n.1).collect::<Vec<_>>(), vec![60], "{other:?}");
        // The same minor third held and sure: the note changes.
        let sung = notes_with(&[(f32::NAN, 10, -90.0, 0.0), (60.0, 60, -20.0, 0.95), (63.0, 40, -20.0, 0.95)]);
        assert_eq!(sung.iter().map(|n| n.1).collect::<Vec<_>>(), vec![60, 63], "{sung:?}");
        // A voice the listener stays unsure of still plays, once the start has waited its longest.
        let unsure = notes_with(&[(f32::NAN, 10, -90.0, 0.0), (50.0, 40, -20.0, 0.5)]);
        assert_eq!(unsure, vec![(10 + WAIT_FRAMES, 50)], "{unsure:?}");
    }

    #[test]
    fn a_start_a_semitone_low_is_corrected_but_a_held_note_drifting_up_is_not() {
        // A scooped attack the listener hears settle 0.8 semitone low for 5 frames before it
        // reaches the sung E4 (63.9: the singer 10 cents flat): the note starts on 63, then
        // corrects to 64 (the legato change needs more than a semitone from the note's centre).
        let scoop = notes(&[(f32::NAN, 10, -90.0), (63.1, 5, -20.0), (63.9, 40, -20.0)]);
        assert_eq!(scoop.iter().map(|n| n.1).collect::<Vec<_>>(), vec![63, 64], "{scoop:?}");
        assert!(scoop[1].0 <= 15 + SETTLE_FRAMES as u64, "{scoop:?}");
        // The same rise after the note's first SCOOP_FRAMES is intonation, not a scoop: one note.
        let drift = notes(&[(f32::NAN, 10, -90.0), (63.1, 30, -20.0), (63.9, 40, -20.0)]);
        assert_eq!(drift.iter().map(|n| n.1).collect::<Vec<_>>(), vec![63], "{drift:?}");
    }

    #[test]
    fn a_quiet_voice_in_the_rest_starts_no_note() {
        // The lead at −20 dBFS, a rest where another voice sounds 20 dB lower, the lead again.
        let got = notes(&[(60.0, 80, -20.0), (f32::NAN, 20, -90.0), (67.0, 60, -40.0), (f32::NAN, 20, -90.0), (62.0, 60, -22.0)]);
        assert_eq!(got.iter().map(|n| n.1).collect::<Vec<_>>(), vec![60, 62], "{got:?}");
        // The same quiet voice with no lead before it is the lead: it plays.
        let alone = notes(&[(67.0, 60, -40.0)]);
        assert_eq!(alone.iter().map(|n| n.1).collect::<Vec<_>>(), vec![67]);
    }

    #[test]
    fn a_burst_of_huge_samples_does_not_gate_the_notes_after_it() {
        // A held note at −20 dBFS, two frames of a burst at +600 dB (1e30 samples) inside it, a
        // rest and the next note at −25 dBFS: it plays (the burst is shorter than LEAD_HOLD, and
        // no level above full scale counts).
        let got = notes(&[(60.0, 40, -20.0), (60.0, 2, 600.0), (60.0, 40, -20.0), (f32::NAN, 20, -90.0), (62.0, 60, -25.0)]);
        assert_eq!(got.iter().map(|n| n.1).collect::<Vec<_>>(), vec![60, 62], "{got:?}");
        // Held full-scale clipping counts only up to 0 dBFS: a note 14 dB under it still plays.
        let clipped = notes(&[(60.0, 40, 6.0), (f32::NAN, 20, -90.0), (62.0, 60, -14.0)]);
        assert_eq!(clipped.iter().map(|n| n.1).collect::<Vec<_>>(), vec![60, 62], "{clipped:?}");
    }
}

/// The trained listener and this decoder on phrases of the training singer (rendered, clean,
/// never in the training set: the training draws its phrases at random).
#[cfg(all(test, feature = "training"))]
mod tests {
    use crate::controls::Controls;
    use crate::eval::score_notes;
    use crate::model::Model;
    use crate::timing::Timing;
    use crate::train::evaluate::{listener_frames, track, Which};
    use crate::train::voice::{render_phrase, Note, Onset, Rand, Voice, VoiceParams, Vowel};
    use crate::ProcessMode;

    fn voice(vibrato_hz: f32) -> VoiceParams {
        VoiceParams {
            voice: Voice::Female,
            formant_scale: 1.15,
            tilt: 1.2,
            breath: 0.01,
            jitter: 0.004,
            shimmer: 0.04,
            vibrato_hz,
            attack_s: 0.02,
            hummed: false,
        }
    }

    fn note(start_s: f32, dur_s: f32, midi: f32, onset: Onset) -> Note {
        Note { start_s, dur_s, midi, vowel: Vowel::A, onset, level: 0.5, scoop: None, glide_s: 0.0, vibrato_cents: 0.0, fry_s: 0.0 }
    }

    /// The live notes (onset s, MIDI) of `notes` sung by `p`.
    fn decode(p: &VoiceParams, notes: &[Note], total_s: f32) -> Vec<(f32, f32)> {
        decode_seed(p, notes, total_s, 7).0
    }

    /// Notes as (onset s, MIDI).
    type Notes = Vec<(f32, f32)>;

    /// The live and the placed notes of `notes` sung by `p`, with the voice's random draws
    /// (jitter, shimmer, breath) from `seed`.
    fn decode_seed(p: &VoiceParams, notes: &[Note], total_s: f32, seed: u64) -> (Notes, Notes) {
        let sr = 48000.0;
        let clip = render_phrase(&mut Rand::new(seed), p, notes, sr, total_s);
        let model = Model::embedded();
        assert!(model.has_trained_listener());
        let t = Timing::new(sr, 512, ProcessMode::Offline);
        let frames = listener_frames(Which::Trained, &model, &clip.audio, &t).unwrap();
        let delay = crate::generator::detection_delay(crate::generator::ListenerKind::Trained, &model);
        let tr = track(Which::Trained, &model, &frames, &clip.audio, &t, &Controls::default(), delay);
        (tr.notes, tr.placed)
    }

    #[test]
    fn scooped_attacks_end_on_the_note_they_settle_on() {
        // Four syllables each scooped up from 1.0–1.8 semitones below (settling within 50 cents
        // 20–60 ms after the onset), sung with eight draws of the voice's jitter and breath.
        // Placed with lookahead, every syllable is one note on the pitch it settles on. Live,
        // where the note must start before the scoop has settled, a syllable's first note is
        // often a semitone low (right for 44 of 80 syllables over 20 draws, shipped listener),
        // but the note it ends on is the settled one: a scoop never leaves a wrong note
        // sounding. (One draw alone, all four syllables right live, held for 3 of the 20.)
        let mut notes = Vec::new();
        for (i, (midi, depth)) in [(64.0, 1.8), (67.1, 1.2), (62.9, 1.5), (69.0, 1.0)].into_iter().enumerate() {
            let mut n = note(0.3 + 0.6 * i as f32, 0.45, midi, if i % 2 == 0 { Onset::Vowel } else { Onset::Plosive { burst_hz: 4000.0, voiced: false } });
            n.scoop = Some((-depth, 0.04));
            notes.push(n);
        }
        let reference: Vec<(f32, f32)> = notes.iter().map(|n| (n.start_s, n.midi)).collect();
        for seed in 1..=8 {
            let (live, placed) = decode_seed(&voice(5.5), &notes, 3.0, seed);
            let s = score_notes(&reference, &placed, 0.05, 0.5);
            assert_eq!((s.matched, s.n_est), (4, 4), "draw {seed}: ref {reference:?}\nplaced {placed:?}");
            for (i, r) in reference.iter().enumerate() {
                let end = reference.get(i + 1).map_or(f32::MAX, |n| n.0 - 0.05);
                let last = live.iter().rev().find(|e| e.0 > r.0 - 0.05 && e.0 < end);
                assert_eq!(last.map(|e| e.1), Some(r.1.round()), "draw {seed}: syllable {r:?}, live {live:?}");
            }
        }
    }

    #[test]
    fn wide_vibrato_holds_one_note() {
        // ±90 cents at 5 Hz around a note sung 20 cents sharp: the pitch crosses both neighbours'
        // boundaries every cycle, and the note must not flip.
        let mut n = note(0.2, 1.8, 62.2, Onset::Vowel);
        n.vibrato_cents = 90.0;
        let est = decode(&voice(5.0), &[n], 2.4);
        assert_eq!(est.len(), 1, "{est:?}");
        assert_eq!(est[0].1, 62.0);
        assert!((est[0].0 - 0.2).abs() <= 0.05, "{est:?}");
    }

    #[test]
    fn legato_steps_and_a_resung_note_each_start_a_note() {
        // Slurred steps (glides of 50–60 ms) and a re-sung repeat ("na" on the same pitch).
        let mut notes = vec![note(0.3, 0.5, 60.0, Onset::Vowel)];
        let mut b = note(0.8, 0.4, 62.0, Onset::Slur);
        b.glide_s = 0.06;
        let mut c = note(1.2, 0.45, 64.1, Onset::Slur);
        c.glide_s = 0.05;
        notes.extend([b, c, note(1.75, 0.5, 64.1, Onset::Nasal)]);
        let est = decode(&voice(5.5), &notes, 2.6);
        // Glide onsets at their half-way point (see `glide_midpoint_reference`).
        let reference: Vec<(f32, f32)> = notes.iter().map(|n| (n.start_s + 0.5 * n.glide_s, n.midi)).collect();
        let s = score_notes(&reference, &est, 0.05, 0.5);
        assert_eq!((s.matched, s.n_est), (4, 4), "ref {reference:?}\nest {est:?}");
    }
}
