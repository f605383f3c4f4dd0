//! Listener evaluation (`cargo xtask eval listener`): the v0 listener, a YIN baseline and the
//! trained listener side by side on the held-out synthetic set, each followed by the same note
//! tracker with the same settings.
//!
//! Per listener: raw pitch accuracy (voiced reference frames whose pitch estimate is within 50
//! cents), voicing accuracy (frames whose voiced/unvoiced decision matches the reference), and
//! note precision/recall/F1 with mir_eval's definitions (onset ±50 ms, pitch ±50 cents, offsets
//! ignored). Every listener sees the engine's causal analysis window and describes the hop
//! `DETECTION_HOPS` before its newest frame, as in the plugin.

use std::sync::Arc;

use candle_core::Device;
use rayon::prelude::*;

use super::dataset::{make_clip_with, Split};
use super::voice::{Clip, Voice};
use crate::controls::Controls;
use crate::eval::{score_notes, NoteScore};
use crate::generator::{posterior, AnyListener, ListenerKind};
use crate::listener::ListenerFrame;
use crate::lookahead::HopNote;
use crate::model::Model;
use crate::timing::Timing;
use crate::tracker::Voicing;
use crate::v0::hz_to_midi;
use crate::ProcessMode;

/// First seed of the held-out evaluation clips (the training's validation clips use
/// `seed * 1_000_000 + 500_000 …`; training clips `seed * 1_000_000 …`).
pub const HELDOUT_FIRST_SEED: u64 = 900_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    V0,
    Yin,
    Trained,
}

impl Which {
    pub fn name(self) -> &'static str {
        match self {
            Which::V0 => "v0 (harmonic summation)",
            Which::Yin => "YIN baseline",
            Which::Trained => "trained listener",
        }
    }
}

/// Scores of one listener over a set of clips.
#[derive(Debug, Clone, Default)]
pub struct Scores {
    pub voiced_ref_frames: usize,
    pub pitch_correct: usize,
    pub frames: usize,
    pub voicing_correct: usize,
    pub notes: NoteScore,
    /// The same notes against references whose legato glides start at the glide's half-way
    /// point instead of where the glide begins (see [`glide_midpoint_reference`]).
    pub notes_glide_mid: NoteScore,
    /// The notes placed with lookahead (a render of a file, [`crate::lookahead`]), against both
    /// references.
    pub notes_lookahead: NoteScore,
    pub notes_lookahead_glide_mid: NoteScore,
    /// Frames whose estimate is off by 11.5–12.5 semitones (octave errors), voiced reference.
    pub octave_errors: usize,
    /// Voiced reference frames in a note's first 60 ms or its glide (where the previous note's
    /// tail and the new attack meet), and those of them within 50 cents.
    pub start_ref_frames: usize,
    pub start_pitch_correct: usize,
}

impl Scores {
    pub fn rpa(&self) -> f32 {
        self.pitch_correct as f32 / self.voiced_ref_frames.max(1) as f32
    }
    /// Raw pitch accuracy on the frames of note starts (see [`Scores::start_ref_frames`]).
    pub fn start_rpa(&self) -> f32 {
        self.start_pitch_correct as f32 / self.start_ref_frames.max(1) as f32
    }
    pub fn voicing_accuracy(&self) -> f32 {
        self.voicing_correct as f32 / self.frames.max(1) as f32
    }
    pub fn add(&mut self, o: &Scores) {
        self.voiced_ref_frames += o.voiced_ref_frames;
        self.pitch_correct += o.pitch_correct;
        self.frames += o.frames;
        self.voicing_correct += o.voicing_correct;
        self.octave_errors += o.octave_errors;
        self.start_ref_frames += o.start_ref_frames;
        self.start_pitch_correct += o.start_pitch_correct;
        self.notes.add(&o.notes);
        self.notes_glide_mid.add(&o.notes_glide_mid);
        self.notes_lookahead.add(&o.notes_lookahead);
        self.notes_lookahead_glide_mid.add(&o.notes_lookahead_glide_mid);
    }
}

/// YIN (de Cheveigné & Kawahara 2002, the `yin` crate) on the engine's analysis window: a frame
/// is voiced when YIN finds a period under its threshold (0.15) between 60 and 1100 Hz.
fn yin_frames(audio: &[f32], t: &Timing) -> Vec<ListenerFrame> {
    let est = yin_estimator(t.sample_rate);
    let frames = audio.len() / t.hop;
    let mut buf = vec![0.0f64; t.win_len];
    (0..frames)
        .map(|k| {
            let end = (k + 1) * t.hop;
            for (i, x) in buf.iter_mut().enumerate() {
                let s = end as isize - t.win_len as isize + i as isize;
                *x = if s >= 0 { audio[s as usize] as f64 } else { 0.0 };
            }
            match yin_midi(&est, &buf) {
                Some(m) => ListenerFrame { pitch_midi: m, confidence: 1.0, periodicity: 1.0, flux: 0.0, octave_below: 0.0 },
                None => ListenerFrame { pitch_midi: f32::NAN, confidence: 1.0, periodicity: 0.0, flux: 0.0, octave_below: 0.0 },
            }
        })
        .collect()
}

/// The YIN baseline's settings: threshold 0.15, periods of 60–1100 Hz.
pub fn yin_estimator(sample_rate: f32) -> yin::Yin {
    yin::Yin::init(0.15, 60.0, 1100.0, sample_rate as usize)
}

/// YIN's pitch of one window, MIDI; `None` when it finds no period under its threshold (or one
/// outside 55–1200 Hz).
pub fn yin_midi(est: &yin::Yin, window: &[f64]) -> Option<f32> {
    let f = est.estimate_freq(window);
    (f.is_finite() && f > 55.0 && f < 1200.0).then(|| hz_to_midi(f as f32))
}

/// Listener frames for `audio`, in order (frame `k` describes hop `k - DETECTION_HOPS`).
pub fn listener_frames(which: Which, model: &Model, audio: &[f32], t: &Timing) -> candle_core::Result<Vec<ListenerFrame>> {
    match which {
        Which::Yin => Ok(yin_frames(audio, t)),
        Which::V0 | Which::Trained => {
            let kind = if which == Which::V0 { ListenerKind::V0 } else { ListenerKind::Trained };
            let mut l = AnyListener::new(kind, model, t, &Device::Cpu)?;
            let (mags, frames) = crate::bench::analysis_frames(audio, t);
            l.forward(&mags, frames)
        }
    }
}

fn voicing_for(which: Which, model: &Model) -> Voicing {
    match which {
        Which::V0 => crate::generator::voicing_for(ListenerKind::V0, model),
        Which::Trained => crate::generator::voicing_for(ListenerKind::Trained, model),
        // YIN's frames are voiced (1) or not (0); the same level gate as v0.
        Which::Yin => Voicing { threshold: 0.5, ..crate::generator::voicing_for(ListenerKind::V0, model) },
    }
}

/// What the tracker makes of a clip's listener frames.
pub struct Tracked {
    /// Notes as the live decoder decides them (onset seconds, MIDI).
    pub notes: Vec<(f32, f32)>,
    /// Per frame: voiced at the decoder's threshold.
    pub voiced: Vec<bool>,
    /// The same notes placed with lookahead ([`crate::lookahead`]), as a render of a file (and
    /// the plugin with `Note timing` on `Lookahead`) plays them.
    pub placed: Vec<(f32, f32)>,
}

/// The tracker over `frames` (frame `k` describes hop `k - delay_hops`) of `audio`.
pub fn track(which: Which, model: &Model, frames: &[ListenerFrame], audio: &[f32], t: &Timing, controls: &Controls, delay_hops: usize) -> Tracked {
    let d = crate::lookahead::decode(frames, audio, t, voicing_for(which, model), controls, delay_hops);
    let onsets = |v: &[HopNote]| HopNote::onsets(v, t.hop_seconds());
    Tracked { notes: onsets(&d.notes), voiced: d.voiced, placed: onsets(&d.placed) }
}

/// The clip's reference notes with each legato glide's onset moved from where the glide begins
/// to its half-way point (where the sung pitch passes midway between the two notes; the
/// synthesizer's glide is a smoothstep, symmetric about that time). A causal transcriber with
/// 21 ms of latency cannot know a slow glide's destination 50 ms after it begins (a 200 ms
/// glide has covered 16 % of its interval by then), so this second reference is reported
/// beside the first; every other note is unchanged.
pub fn glide_midpoint_reference(clip: &Clip) -> Vec<(f32, f32)> {
    clip.notes.iter().zip(&clip.sung).map(|(&(t, m), s)| (if s.glide_s > 0.0 { t + 0.5 * s.glide_s } else { t }, m)).collect()
}

/// A diagnostic (`cargo xtask eval listener --oracle voicing,pitch,onset`): which parts of the
/// listener's frames to replace by the reference, to see what each part of the listener costs
/// in note F1 (onset: the articulated notes, as the listener is trained).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Oracle {
    pub voicing: bool,
    pub pitch: bool,
    /// The pitch only on the hops of note starts (a note's first 60 ms or its glide).
    pub start_pitch: bool,
    pub onset: bool,
}

impl Oracle {
    /// From a comma list of `voicing`, `pitch`, `onset`.
    pub fn parse(list: &str) -> Result<Oracle, String> {
        let mut o = Oracle::default();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "voicing" => o.voicing = true,
                "pitch" => o.pitch = true,
                "start-pitch" => o.start_pitch = true,
                "onset" => o.onset = true,
                other => return Err(format!("unknown oracle part {other:?} (expected voicing, pitch, start-pitch or onset)")),
            }
        }
        Ok(o)
    }
}

/// Replaces the parts `oracle` names by the reference. Frame `k` describes hop `k - delay_hops`;
/// `starts` marks the hops of note starts ([`super::dataset::transition_hops`]).
fn apply_oracle(oracle: Oracle, frames: &mut [ListenerFrame], clip: &Clip, t: &Timing, delay_hops: usize, starts: &[bool]) {
    if oracle == Oracle::default() {
        return;
    }
    // The onset target the listener is trained on: an articulated note starts in this hop or
    // the one before.
    let onsets = super::dataset::onset_hops(super::dataset::articulated_onsets(clip), clip.sample_rate, t.hop, frames.len());
    for (k, f) in frames.iter_mut().enumerate() {
        let Some(j) = k.checked_sub(delay_hops) else { continue };
        let r = clip.f0_at_hop(t.hop, j);
        if oracle.voicing {
            f.periodicity = if r.is_finite() { 1.0 } else { 0.0 };
        }
        if (oracle.pitch || (oracle.start_pitch && starts[j])) && r.is_finite() {
            f.pitch_midi = r;
            f.confidence = 1.0;
        }
        if oracle.onset {
            let on = j < onsets.len() && (onsets[j] || (j > 0 && onsets[j - 1]));
            f.flux = if on { 1.0 } else { 0.0 };
        }
    }
}

/// Scores of `which` on one clip. The listener's frame `k` is compared with the reference at
/// hop `k - delay_hops`; its voicing decision is the tracker's (threshold and level gate).
pub fn score_clip(which: Which, model: &Model, clip: &Clip, delay_hops: usize, oracle: Oracle, verbose: bool) -> candle_core::Result<Scores> {
    let t = Timing::new(clip.sample_rate, 512, ProcessMode::Offline);
    let mut frames = listener_frames(which, model, &clip.audio, &t)?;
    let starts = super::dataset::transition_hops(clip, t.hop_seconds(), frames.len());
    apply_oracle(oracle, &mut frames, clip, &t, delay_hops, &starts);
    let controls = Controls::default();
    let Tracked { notes, voiced, placed: refined } = track(which, model, &frames, &clip.audio, &t, &controls, delay_hops);
    let mut s = Scores::default();
    for (k, f) in frames.iter().enumerate() {
        let Some(j) = k.checked_sub(delay_hops) else { continue };
        let r = clip.f0_at_hop(t.hop, j);
        s.frames += 1;
        if voiced[k] == r.is_finite() {
            s.voicing_correct += 1;
        }
        if r.is_finite() {
            s.voiced_ref_frames += 1;
            let d = (f.pitch_midi - r).abs();
            if starts[j] {
                s.start_ref_frames += 1;
                s.start_pitch_correct += (d < 0.5) as usize;
            }
            if d < 0.5 {
                s.pitch_correct += 1;
            } else if (d - 12.0).abs() < 0.5 || (d - 24.0).abs() < 0.5 {
                s.octave_errors += 1;
            }
        }
    }
    s.notes = score_notes(&clip.notes, &notes, 0.05, 0.5);
    s.notes_glide_mid = score_notes(&glide_midpoint_reference(clip), &notes, 0.05, 0.5);
    s.notes_lookahead = score_notes(&clip.notes, &refined, 0.05, 0.5);
    s.notes_lookahead_glide_mid = score_notes(&glide_midpoint_reference(clip), &refined, 0.05, 0.5);
    if verbose {
        let fmt = |v: &[(f32, f32)]| v.iter().map(|(t, m)| format!("{t:.2}:{m:.1}")).collect::<Vec<_>>().join(" ");
        println!("  {which:?} ref: {}\n  {which:?} est: {}", fmt(&clip.notes), fmt(&notes));
    }
    Ok(s)
}

/// Scores per listener (in `which` order), overall and per voice, on `n` held-out clips from
/// clip `first` on (seeds `HELDOUT_FIRST_SEED + first ..`).
pub fn evaluate(which: &[Which], model: Arc<Model>, first: u64, n: usize, strength: f32, oracle: Oracle, verbose: bool) -> candle_core::Result<Vec<(Scores, [Scores; 3])>> {
    let per_clip: Vec<candle_core::Result<(Option<Voice>, Vec<Scores>)>> = (first..first + n as u64)
        .into_par_iter()
        .map(|i| {
            let (clip, voice, log) = make_clip_with(HELDOUT_FIRST_SEED + i, Split::Heldout, strength);
            // The trained listener describes the hop its calibration says (its training's
            // detection delay); v0 and YIN the engine's.
            let delay = |w: Which| crate::generator::detection_delay(if w == Which::Trained { ListenerKind::Trained } else { ListenerKind::V0 }, &model);
            let scores = crate::generator::single_threaded(|| which.iter().map(|&w| score_clip(w, &model, &clip, delay(w), oracle, verbose)).collect::<candle_core::Result<Vec<_>>>())?;
            if verbose {
                let f1: Vec<String> = which.iter().zip(&scores).map(|(w, s)| format!("{:?} F1 {:.2}", w, s.notes.f1())).collect();
                println!("clip {} {:?} {:.0} Hz {:?}: {}", HELDOUT_FIRST_SEED + i, voice, clip.sample_rate, log, f1.join(", "));
            }
            Ok((voice, scores))
        })
        .collect();
    let mut out: Vec<(Scores, [Scores; 3])> = which.iter().map(|_| Default::default()).collect();
    for r in per_clip {
        let (voice, scores) = r?;
        for (o, s) in out.iter_mut().zip(&scores) {
            o.0.add(s);
            let vi = match voice {
                Some(Voice::Male) => 0,
                Some(Voice::Female) => 1,
                _ => 2,
            };
            o.1[vi].add(s);
        }
    }
    Ok(out)
}

/// Note scores of the trained listener's notes placed with each of `settings`
/// ([`crate::lookahead::Placement`]) on `n` held-out clips from clip `first` on (clean clips when
/// `strength` is 0), against the reference and against the half-way glide reference; the
/// listener hears each clip once. The live notes come first (index 0), then one per setting.
pub fn placement_curve(model: Arc<Model>, first: u64, n: usize, strength: f32, settings: &[crate::lookahead::Placement]) -> candle_core::Result<Vec<(NoteScore, NoteScore)>> {
    let per_clip: Vec<candle_core::Result<Vec<(NoteScore, NoteScore)>>> = (first..first + n as u64)
        .into_par_iter()
        .map(|i| {
            let (clip, _, _) = make_clip_with(HELDOUT_FIRST_SEED + i, Split::Heldout, strength);
            let t = Timing::new(clip.sample_rate, 512, ProcessMode::Offline);
            let delay = crate::generator::detection_delay(ListenerKind::Trained, &model);
            let frames = crate::generator::single_threaded(|| listener_frames(Which::Trained, &model, &clip.audio, &t))?;
            let voicing = voicing_for(Which::Trained, &model);
            let (reference, half_way) = (clip.notes.clone(), glide_midpoint_reference(&clip));
            let secs = |v: &[HopNote]| HopNote::onsets(v, t.hop_seconds());
            let score = |notes: &[(f32, f32)]| (score_notes(&reference, notes, 0.05, 0.5), score_notes(&half_way, notes, 0.05, 0.5));
            let mut out = Vec::with_capacity(settings.len() + 1);
            for (k, p) in settings.iter().enumerate() {
                let d = crate::lookahead::decode_with(&frames, &clip.audio, &t, voicing, &Controls::default(), delay, *p);
                if k == 0 {
                    out.push(score(&secs(&d.notes)));
                }
                out.push(score(&secs(&d.placed)));
            }
            Ok(out)
        })
        .collect();
    let mut total = vec![(NoteScore::default(), NoteScore::default()); settings.len() + 1];
    for r in per_clip {
        for (t, s) in total.iter_mut().zip(r?) {
            t.0.add(&s.0);
            t.1.add(&s.1);
        }
    }
    Ok(total)
}

/// First clip (after [`HELDOUT_FIRST_SEED`]) of the validation clips the decoder's thresholds
/// are fitted on (`cargo xtask eval fit-decoder`): the same generator and augmentation as the
/// held-out clips, seeds far past every held-out set the evaluations score (clips 0–299).
pub const VALIDATION_FIRST_CLIP: u64 = 10_000;

/// A clip the trained listener has heard once: its frames, kept to be decoded many times.
pub struct HeardClip {
    audio: Vec<f32>,
    /// Reference notes (onset seconds, MIDI).
    notes: Vec<(f32, f32)>,
    frames: Vec<ListenerFrame>,
    t: Timing,
}

impl HeardClip {
    fn hear(model: &Model, audio: Vec<f32>, sample_rate: f32, notes: Vec<(f32, f32)>) -> candle_core::Result<HeardClip> {
        let t = Timing::new(sample_rate, 512, ProcessMode::Offline);
        let frames = crate::generator::single_threaded(|| listener_frames(Which::Trained, model, &audio, &t))?;
        Ok(HeardClip { audio, notes, frames, t })
    }
}

/// First seed of the melodies of the other singer (`cargo xtask eval`'s, [`crate::Singer`])
/// that a fit of the decoder's thresholds also validates on; `cargo xtask eval` scores seeds
/// [`crate::eval::EVAL_FIRST_MELODY`] on.
pub const VALIDATION_FIRST_MELODY: u64 = 30_000;

/// The trained listener's frames on `n` melodies of the other singer from seed `first` on
/// (voices rotating male, female, child; 48 kHz), as `cargo xtask eval` sings them.
pub fn hear_melodies(model: &Model, first: u64, n: usize) -> candle_core::Result<Vec<HeardClip>> {
    (0..n as u64)
        .into_par_iter()
        .map(|i| {
            let (_, audio, notes) = crate::eval::sung_melody(first, i, 48_000.0);
            HeardClip::hear(model, audio, 48_000.0, notes)
        })
        .collect()
}

/// The trained listener's frames on `n` held-out-generator clips from clip `first` on (clean
/// clips when `strength` is 0).
pub fn hear_clips(model: &Model, first: u64, n: usize, strength: f32) -> candle_core::Result<Vec<HeardClip>> {
    (first..first + n as u64)
        .into_par_iter()
        .map(|i| {
            let (clip, _, _) = make_clip_with(HELDOUT_FIRST_SEED + i, Split::Heldout, strength);
            HeardClip::hear(model, clip.audio, clip.sample_rate, clip.notes)
        })
        .collect()
}

/// Live and placed note scores of `clips`, the live notes decided with `live` and the placed
/// ones with `placed` (their decoder thresholds included), against the reference.
pub fn score_heard(model: &Model, clips: &[HeardClip], live: Voicing, placed: Voicing) -> (NoteScore, NoteScore) {
    let delay = crate::generator::detection_delay(ListenerKind::Trained, model);
    clips
        .par_iter()
        .map(|h| {
            let d = crate::lookahead::decode_tuned(&h.frames, &h.audio, &h.t, live, placed, &Controls::default(), delay, crate::lookahead::Placement::SHIPPED);
            let secs = |v: &[HopNote]| HopNote::onsets(v, h.t.hop_seconds());
            (score_notes(&h.notes, &secs(&d.notes), 0.05, 0.5), score_notes(&h.notes, &secs(&d.placed), 0.05, 0.5))
        })
        .reduce(Default::default, |mut a, b| {
            a.0.add(&b.0);
            a.1.add(&b.1);
            a
        })
}

/// The trained listener's voicing calibration from `model`, as the engine reads it.
pub fn trained_voicing(model: &Model) -> Voicing {
    voicing_for(Which::Trained, model)
}

/// Everything about the trained listener on held-out clip `i` that a note-error breakdown
/// needs, as JSON (`cargo xtask eval listener-dump`): the reference notes and how they were
/// sung, the reference pitch per hop, the listener's frames with the tracker's levels, and the
/// tracker's notes; the pitch logits (`N_CANDIDATES` per frame, f32) go to `logits`. The clip
/// itself comes back beside the JSON.
pub fn dump_clip(model: &Model, i: usize, strength: f32, oracle: Oracle, logits: &mut Vec<f32>) -> candle_core::Result<(serde_json::Value, Clip)> {
    use serde_json::json;
    let seed = HELDOUT_FIRST_SEED + i as u64;
    let (clip, voice, log) = make_clip_with(seed, Split::Heldout, strength);
    let t = Timing::new(clip.sample_rate, 512, ProcessMode::Offline);
    let delay = crate::generator::detection_delay(ListenerKind::Trained, model);
    let mut l = AnyListener::new(ListenerKind::Trained, model, &t, &Device::Cpu)?;
    let (mags, n) = crate::bench::analysis_frames(&clip.audio, &t);
    let mut frames = match &mut l {
        AnyListener::Net(net) => net.forward_with_logits(&mags, n, Some(logits))?,
        AnyListener::V0(_) => return Err(candle_core::Error::Msg("model has no trained listener".into())),
    };
    let starts = super::dataset::transition_hops(&clip, t.hop_seconds(), frames.len());
    apply_oracle(oracle, &mut frames, &clip, &t, delay, &starts);
    let controls = Controls::default();
    let Tracked { notes, placed: refined, .. } = track(Which::Trained, model, &frames, &clip.audio, &t, &controls, delay);
    let mut prev = 0.0f32;
    let rows: Vec<[f32; 5]> = frames
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let p = posterior(f, &clip.audio[k * t.hop..(k + 1) * t.hop], &mut prev);
            [p.pitch, p.periodicity, p.flux, p.hop_db, p.level_db]
        })
        .collect();
    let f0: Vec<f32> = (0..n).map(|j| clip.f0_at_hop(t.hop, j)).collect();
    let sung: Vec<serde_json::Value> = clip
        .sung
        .iter()
        .map(|s| json!({"start": s.start_s, "dur": s.dur_s, "midi": s.midi, "onset": format!("{:?}", s.onset), "scoop": s.scoop, "glide": s.glide_s, "fry": s.fry_s}))
        .collect();
    let nan = |v: f32| if v.is_finite() { json!(v) } else { serde_json::Value::Null };
    let dump = json!({
        "seed": seed,
        "voice": format!("{voice:?}"),
        "augment": format!("{log:?}"),
        "sample_rate": clip.sample_rate,
        "hop_s": t.hop_seconds(),
        "delay": delay,
        "ref": clip.notes,
        "sung": sung,
        "f0": f0.iter().map(|&v| nan(v)).collect::<Vec<_>>(),
        "frames": rows.iter().map(|r| r.iter().map(|&v| nan(v)).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "est": notes,
        "est_lookahead": refined,
    });
    Ok((dump, clip))
}
