//! Training and evaluation examples: synthesized, augmented clips turned into the engine's
//! features (the same analysis and log-frequency projection) with per-hop ground truth.

use rayon::prelude::*;

use super::augment::{augment, AugmentLog};
use super::voice::{random_phrase, render_negative, render_phrase, Clip, Onset, Rand, Voice};
use crate::timing::Timing;
use crate::v0::N_FEATURES;
use crate::ProcessMode;

/// Which set a clip belongs to. The seeds of the two sets never meet (different salts), and the
/// held-out set is rendered at the rates a DAW uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Heldout,
}

/// How long after a note's start its hops count as a transition, seconds.
pub const TRANSITION_S: f32 = 0.06;

/// One clip as features and labels.
#[derive(Debug, Clone)]
pub struct Example {
    pub seed: u64,
    pub sample_rate: f32,
    pub hop_s: f32,
    /// Linear log-frequency features, `[frames, N_FEATURES]`.
    pub feats: Vec<f32>,
    pub frames: usize,
    /// Sung pitch at the centre of each hop, MIDI; NaN where unvoiced.
    pub f0: Vec<f32>,
    /// A note starts inside this hop.
    pub onset: Vec<bool>,
    /// A note that starts a new syllable (not a slur) starts inside this hop. A legato note
    /// starts where its glide begins, which no causal listener can hear within its lookahead.
    pub onset_articulated: Vec<bool>,
    /// Per hop: whether a re-sung note on the previous note's pitch starts here (under 0.15 s
    /// after it, within half a semitone, not a slur): where only the onset head can tell.
    pub onset_repeat: Vec<bool>,
    /// The hop lies in a note's first [`TRANSITION_S`] or in its glide from the previous note:
    /// where the last note's tail and the new note's attack meet, and most pitch errors were.
    pub transition: Vec<bool>,
    /// Reference notes (onset seconds, MIDI).
    pub notes: Vec<(f32, f32)>,
    pub voice: Option<Voice>,
    pub augment: AugmentLog,
}

/// Per hop of `hop_s` seconds: whether it lies in a sung note's first [`TRANSITION_S`] or in its
/// glide from the previous note (whichever is longer).
pub fn transition_hops(clip: &Clip, hop_s: f32, frames: usize) -> Vec<bool> {
    let mut transition = vec![false; frames];
    for n in &clip.sung {
        let (a, b) = (n.start_s, n.start_s + TRANSITION_S.max(n.glide_s));
        let (ja, jb) = ((a / hop_s).floor() as usize, (b / hop_s).ceil() as usize);
        transition.iter_mut().take(jb.min(frames)).skip(ja).for_each(|v| *v = true);
    }
    transition
}

/// The audio of clip `seed` in `split`, with its ground truth.
pub fn make_clip(seed: u64, split: Split) -> (Clip, Option<Voice>, AugmentLog) {
    make_clip_with(seed, split, 1.0)
}

/// [`make_clip`] with the augmentation's strength (0: only a level change).
pub fn make_clip_with(seed: u64, split: Split, strength: f32) -> (Clip, Option<Voice>, AugmentLog) {
    make_clip_full(seed, split, strength, false)
}

/// Source slope of the hums in training clips made with `steep_hums` (harmonic `h` at `h^-tilt`:
/// 2 puts the second harmonic 12 dB under the fundamental, 6 puts it 36 dB under, nearly a sine;
/// a closed-mouth hum is close to that, while the phrases' own slopes stop at 1.9).
pub const STEEP_HUM_TILT: (f32, f32) = (2.0, 6.0);

/// [`make_clip_with`], and with `steep_hums` every hummed phrase sung with a source slope drawn
/// from [`STEEP_HUM_TILT`] (from a generator of its own: everything else about the clip is the
/// same).
pub fn make_clip_full(seed: u64, split: Split, strength: f32, steep_hums: bool) -> (Clip, Option<Voice>, AugmentLog) {
    let salt = match split {
        Split::Train => 0x7261_696e_u64,
        Split::Heldout => 0x6865_6c64_u64 << 20,
    };
    let mut r = Rand::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt);
    let sr = match split {
        Split::Train => r.pick(&[16000.0, 22050.0, 32000.0, 44100.0, 48000.0]),
        Split::Heldout => r.pick(&[44100.0, 48000.0]),
    };
    let total_s = r.range(3.5, 6.0);
    let (mut clip, voice) = if split == Split::Train && r.chance(0.08) {
        (render_negative(&mut r, sr, total_s), None)
    } else {
        let voice = r.pick(&[Voice::Male, Voice::Female, Voice::Child]);
        let (mut p, notes) = random_phrase(&mut r, voice, total_s);
        if steep_hums && p.hummed {
            p.tilt = Rand::new(seed ^ 0x6875_6d73).range(STEEP_HUM_TILT.0, STEEP_HUM_TILT.1);
        }
        (render_phrase(&mut r, &p, &notes, sr, total_s), Some(voice))
    };
    let log = augment(&mut clip, &mut r, strength);
    (clip, voice, log)
}

/// Features and labels of a clip, computed exactly as the engine analyses its input.
pub fn featurize(seed: u64, clip: &Clip, voice: Option<Voice>, augment: AugmentLog) -> Example {
    let t = Timing::new(clip.sample_rate, 512, ProcessMode::Offline);
    let (mags, frames) = crate::bench::analysis_frames(&clip.audio, &t);
    let m = crate::features::log_frequency_matrix(t.sample_rate, t.fft_len, t.analysis_bins);
    let proj = crate::features::SparseRows::from_dense(&m, t.analysis_bins, N_FEATURES);
    let mut feats = vec![0.0f32; frames * N_FEATURES];
    for k in 0..frames {
        proj.apply(&mags[k * t.analysis_bins..(k + 1) * t.analysis_bins], &mut feats[k * N_FEATURES..(k + 1) * N_FEATURES]);
    }
    let f0 = (0..frames).map(|j| clip.f0_at_hop(t.hop, j)).collect();
    let onset = onset_hops(clip.notes.iter().map(|n| n.0), clip.sample_rate, t.hop, frames);
    let onset_articulated = onset_hops(articulated_onsets(clip), clip.sample_rate, t.hop, frames);
    let onset_repeat = onset_hops(repeated_onsets(clip), clip.sample_rate, t.hop, frames);
    let transition = transition_hops(clip, t.hop_seconds(), frames);
    Example {
        seed,
        sample_rate: clip.sample_rate,
        hop_s: t.hop_seconds(),
        feats,
        frames,
        f0,
        onset,
        onset_articulated,
        onset_repeat,
        transition,
        notes: clip.notes.clone(),
        voice,
        augment,
    }
}

/// Onsets (seconds) of the clip's notes that start a new syllable (every note but slurs).
pub fn articulated_onsets(clip: &Clip) -> impl Iterator<Item = f32> + '_ {
    clip.sung.iter().filter(|n| n.onset != Onset::Slur).map(|n| n.start_s)
}

/// Onsets (seconds) of the notes re-sung on the previous note's pitch: under
/// [`REPEAT_GAP_S`] after it ends, within half a semitone of it, not a slur.
pub fn repeated_onsets(clip: &Clip) -> impl Iterator<Item = f32> + '_ {
    clip.sung.windows(2).filter(|w| w[1].onset != Onset::Slur && w[1].start_s - (w[0].start_s + w[0].dur_s) < REPEAT_GAP_S && (w[1].midi - w[0].midi).abs() < 0.5).map(|w| w[1].start_s)
}

/// Largest gap (seconds) before a re-sung note that [`repeated_onsets`] counts.
pub const REPEAT_GAP_S: f32 = 0.15;

/// Per hop (`frames` hops of `hop` samples): whether one of `onsets` (seconds) falls inside it.
pub fn onset_hops(onsets: impl Iterator<Item = f32>, sample_rate: f32, hop: usize, frames: usize) -> Vec<bool> {
    let mut v = vec![false; frames];
    for s in onsets {
        let j = (s * sample_rate) as usize / hop;
        if j < frames {
            v[j] = true;
        }
    }
    v
}

/// `count` examples with seeds `first..first + count`, made in parallel (`steep_hums`: see
/// [`make_clip_full`]).
pub fn make_examples(first: u64, count: usize, split: Split, steep_hums: bool) -> Vec<Example> {
    (0..count as u64)
        .into_par_iter()
        .map(|i| {
            let seed = first + i;
            let (clip, voice, log) = make_clip_full(seed, split, 1.0, steep_hums);
            featurize(seed, &clip, voice, log)
        })
        .collect()
}
