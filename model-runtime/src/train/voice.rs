//! The training singer: a glottal-source + formant voice synthesizer with the ground truth of
//! every sample (f0, voicing, note onsets), and the negative examples (breaths, clicks, noise).
//!
//! A clip is a random phrase: male, female or child voice (formant scale, source tilt, breath,
//! jitter and shimmer drawn per voice); notes in the voice's range (E2–C6 overall) sung legato
//! or staccato with rests, repeated notes re-articulated, melismas, scoops and portamento up to
//! 200 ms, vibrato 4.5–7 Hz at ±20–100 cents, detuning ±30 cents, vocal fry at phrase ends;
//! syllables start with plosives (p t k b d g), fricatives (s sh f h), nasals (m n), a liquid
//! (l) or a bare vowel; some phrases are hummed. The note onset in the ground truth is where the
//! voiced part of the syllable starts (the consonant noise before it is unvoiced).
//!
//! Nothing here uses recorded or speech-synthesizer voices.

use std::f32::consts::TAU;

use biquad::{Biquad, Coefficients, DirectForm2Transposed, ToHertz, Type, Q_BUTTERWORTH_F32};

use crate::v0::{hz_to_midi, midi_to_hz};

/// Seeded random numbers with the few distributions the synthesizer needs.
pub struct Rand(fastrand::Rng);

impl Rand {
    pub fn new(seed: u64) -> Rand {
        Rand(fastrand::Rng::with_seed(seed))
    }
    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.0.f32()
    }
    pub fn chance(&mut self, p: f32) -> bool {
        self.0.f32() < p
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u = self.0.f32().max(1e-7);
        let v = self.0.f32();
        (-2.0 * u.ln()).sqrt() * (TAU * v).cos()
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.0.usize(..items.len())]
    }
    pub fn below(&mut self, n: usize) -> usize {
        self.0.usize(..n.max(1))
    }
    /// Uniform in `[-1, 1)` (white noise).
    pub fn white(&mut self) -> f32 {
        self.0.f32() * 2.0 - 1.0
    }
    pub fn seed(&mut self) -> u64 {
        self.0.u64(..)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voice {
    Male,
    Female,
    Child,
}

impl Voice {
    /// Sung range, MIDI (E2–E4, G3–A5, C4–C6).
    pub fn range(self) -> (f32, f32) {
        match self {
            Voice::Male => (40.0, 64.0),
            Voice::Female => (55.0, 81.0),
            Voice::Child => (60.0, 84.0),
        }
    }
    /// Formant scale relative to the male tables.
    fn formant_scale(self) -> (f32, f32) {
        match self {
            Voice::Male => (0.94, 1.06),
            Voice::Female => (1.1, 1.22),
            Voice::Child => (1.25, 1.42),
        }
    }
}

/// Vowels and voiced closed-mouth sounds, by their formants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vowel {
    A,
    E,
    I,
    O,
    U,
    /// Closed-mouth hum / nasal murmur ("mm", "nn").
    Nasal,
    /// The lateral "l".
    L,
}

const VOWELS: [Vowel; 5] = [Vowel::A, Vowel::E, Vowel::I, Vowel::O, Vowel::U];

/// (frequency Hz, bandwidth Hz, level dB) of four formants, male voice: the vowels are the demo
/// singer's table ([`crate::singer`]), the nasal murmur and "l" this singer's own.
fn formants(v: Vowel) -> [(f32, f32, f32); 4] {
    use crate::singer::{formants as vowel, Vowel as V};
    match v {
        Vowel::A => vowel(V::A),
        Vowel::E => vowel(V::E),
        Vowel::I => vowel(V::I),
        Vowel::O => vowel(V::O),
        Vowel::U => vowel(V::U),
        Vowel::Nasal => [(250.0, 60.0, 0.0), (1000.0, 150.0, -26.0), (2500.0, 200.0, -38.0), (3500.0, 250.0, -44.0)],
        Vowel::L => [(360.0, 60.0, 0.0), (1300.0, 120.0, -14.0), (2700.0, 150.0, -24.0), (3600.0, 200.0, -34.0)],
    }
}

/// How a syllable begins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Onset {
    /// A bare vowel ("ah", "oo"), soft or glottal attack.
    Vowel,
    /// Voiceless plosive: closure, burst at the given centre frequency, aspiration.
    Plosive { burst_hz: f32, voiced: bool },
    /// Fricative noise band (centre Hz, Q, relative level).
    Fricative { hz: f32, q: f32, level: f32 },
    /// Nasal murmur before the vowel ("ma", "na"): voiced, at the note's pitch.
    Nasal,
    /// "la": voiced lateral before the vowel.
    Lateral,
    /// Continue from the previous note without a new syllable (melisma / legato slur).
    Slur,
}

/// One sung note of a phrase.
#[derive(Debug, Clone, Copy)]
pub struct Note {
    /// Start of the voiced part (the reference onset), seconds.
    pub start_s: f32,
    /// Voiced duration, seconds.
    pub dur_s: f32,
    /// Nominal pitch plus detuning, MIDI.
    pub midi: f32,
    pub vowel: Vowel,
    pub onset: Onset,
    /// Peak amplitude (before the clip's final level).
    pub level: f32,
    /// Scoop: starting offset in semitones (negative = from below) and its time constant.
    pub scoop: Option<(f32, f32)>,
    /// Portamento from the previous note's pitch over this many seconds (legato).
    pub glide_s: f32,
    /// Vibrato depth, cents (peak).
    pub vibrato_cents: f32,
    /// Vocal fry over the last this-many seconds.
    pub fry_s: f32,
}

/// Voice settings drawn per clip.
#[derive(Debug, Clone, Copy)]
pub struct VoiceParams {
    pub voice: Voice,
    pub formant_scale: f32,
    /// Source spectral slope: harmonic `h` has amplitude `h^-tilt`.
    pub tilt: f32,
    /// Aspiration noise relative to the voice.
    pub breath: f32,
    /// Cycle-to-cycle period jitter, fraction.
    pub jitter: f32,
    /// Cycle-to-cycle amplitude shimmer, fraction.
    pub shimmer: f32,
    pub vibrato_hz: f32,
    /// Attack time of a vowel onset, seconds.
    pub attack_s: f32,
    /// Whether the phrase is hummed (closed mouth).
    pub hummed: bool,
}

/// A synthesized clip and its ground truth.
#[derive(Debug, Clone)]
pub struct Clip {
    pub sample_rate: f32,
    pub audio: Vec<f32>,
    /// Sung pitch per sample, MIDI (fractional, vibrato included); NaN where unvoiced.
    pub f0_midi: Vec<f32>,
    /// Reference notes (onset seconds, pitch MIDI).
    pub notes: Vec<(f32, f32)>,
    /// How each reference note was sung (same order as `notes`), for error breakdowns.
    pub sung: Vec<Note>,
}

impl Clip {
    /// The sung pitch in the middle of hop `j` of `hop` samples (the reference a listener's
    /// frame for that hop is scored against), MIDI; NaN where unvoiced or past the end.
    pub fn f0_at_hop(&self, hop: usize, j: usize) -> f32 {
        self.f0_midi.get(j * hop + hop / 2).copied().unwrap_or(f32::NAN)
    }
}

/// A random phrase for `voice`, `total_s` long.
pub fn random_phrase(r: &mut Rand, voice: Voice, total_s: f32) -> (VoiceParams, Vec<Note>) {
    let (fs_lo, fs_hi) = voice.formant_scale();
    let hummed = r.chance(0.12);
    let params = VoiceParams {
        voice,
        formant_scale: r.range(fs_lo, fs_hi),
        tilt: r.range(0.7, 1.9),
        breath: if r.chance(0.3) { r.range(0.03, 0.12) } else { r.range(0.003, 0.03) },
        jitter: r.range(0.001, 0.012),
        shimmer: r.range(0.01, 0.12),
        vibrato_hz: r.range(4.5, 7.0),
        attack_s: r.range(0.004, 0.06),
        hummed,
    };
    let (lo, hi) = voice.range();
    let mut pitch = r.range(lo + 3.0, hi - 3.0).round();
    let mut t = r.range(0.05, 0.6);
    let mut notes: Vec<Note> = Vec::new();
    let base_level = r.range(0.3, 1.0);
    let vib_base = if r.chance(0.75) { r.range(20.0, 100.0) } else { r.range(0.0, 15.0) };
    let fricatives = [
        Onset::Fricative { hz: 6000.0, q: 1.0, level: 0.25 }, // s
        Onset::Fricative { hz: 3000.0, q: 1.5, level: 0.25 }, // sh
        Onset::Fricative { hz: 2500.0, q: 0.4, level: 0.06 }, // f
        Onset::Fricative { hz: 1500.0, q: 0.8, level: 0.06 }, // h
    ];
    let plosives = [
        Onset::Plosive { burst_hz: 4000.0, voiced: false }, // t
        Onset::Plosive { burst_hz: 900.0, voiced: false },  // p
        Onset::Plosive { burst_hz: 2000.0, voiced: false }, // k
        Onset::Plosive { burst_hz: 3500.0, voiced: true },  // d
        Onset::Plosive { burst_hz: 800.0, voiced: true },   // b
        Onset::Plosive { burst_hz: 1800.0, voiced: true },  // g
    ];
    let mut melisma_left = 0usize;
    while t < total_s - 0.3 {
        let in_melisma = melisma_left > 0;
        let dur = if in_melisma {
            melisma_left -= 1;
            r.range(0.08, 0.18)
        } else if r.chance(0.25) {
            r.range(0.1, 0.25) // staccato-ish
        } else {
            r.range(0.25, 1.4)
        };
        let step = if r.chance(0.15) && !in_melisma {
            0.0 // repeated note
        } else if r.chance(0.1) {
            r.pick(&[-12.0, -7.0, 7.0, 12.0, -9.0, 9.0])
        } else {
            r.pick(&[-5.0, -4.0, -3.0, -2.0, -1.0, 1.0, 2.0, 3.0, 4.0, 5.0])
        };
        let mut next = pitch + step;
        if next < lo || next > hi {
            next = pitch - step;
        }
        pitch = next.clamp(lo, hi);
        let prev_end = notes.last().map(|n| n.start_s + n.dur_s);
        let repeated = notes.last().is_some_and(|n| (n.midi - pitch).abs() < 0.6);
        let legato = !repeated && prev_end.is_some_and(|e| t - e < 0.01) && (in_melisma || r.chance(0.5));
        let onset = if hummed {
            if legato { Onset::Slur } else { Onset::Nasal }
        } else if legato {
            Onset::Slur
        } else {
            match r.below(10) {
                0 | 1 => Onset::Vowel,
                2..=4 => r.pick(&plosives),
                5 | 6 => r.pick(&fricatives),
                7 | 8 => Onset::Nasal,
                _ => Onset::Lateral,
            }
        };
        // A repeated note must be re-articulated: never slurred.
        let onset = if repeated && onset == Onset::Slur { Onset::Nasal } else { onset };
        let vowel = if hummed { Vowel::Nasal } else { r.pick(&VOWELS) };
        let detune = (r.normal() * 0.12).clamp(-0.3, 0.3);
        // Scoop from below: 30–200 cents, settling within 50 cents in under ~150 ms.
        let scoop = (!legato && r.chance(0.3)).then(|| (-r.range(0.3, 2.0), r.range(0.015, 0.045)));
        let glide_s = if legato { r.range(0.03, 0.2).min(0.6 * dur) } else { 0.0 };
        let fry_s = if voice == Voice::Male && dur > 0.4 && r.chance(0.1) { r.range(0.08, 0.25) } else { 0.0 };
        notes.push(Note {
            start_s: t,
            dur_s: dur,
            midi: pitch + detune,
            vowel,
            onset,
            level: base_level * r.range(0.55, 1.0),
            scoop,
            glide_s,
            vibrato_cents: (vib_base * r.range(0.6, 1.2)).min(100.0),
            fry_s,
        });
        if melisma_left == 0 && r.chance(0.08) {
            melisma_left = 2 + r.below(5);
        }
        t += dur;
        // Gap: legato (none), a short breath gap, or a rest.
        let next_legato = melisma_left > 0 || r.chance(0.35);
        if !next_legato {
            t += if r.chance(0.3) { r.range(0.2, 0.9) } else { r.range(0.04, 0.15) };
        }
    }
    (params, notes)
}

/// Sum of the four formant resonances at `f` (linear gain).
fn formant_gain(fm: &[(f32, f32, f32); 4], scale: f32, f: f32) -> f32 {
    let mut g = 0.0;
    for &(ff, bw, db) in fm {
        let ff = ff * scale;
        let bw = bw * scale;
        let x = f / ff;
        let resp = (bw / ff) / ((1.0 - x * x).powi(2) + (x * bw / ff).powi(2)).sqrt();
        g += resp * 10f32.powf(db / 20.0);
    }
    g.min(4.0)
}

fn bandpass(sr: f32, hz: f32, q: f32) -> DirectForm2Transposed<f32> {
    let hz = hz.min(0.45 * sr);
    let c = Coefficients::<f32>::from_params(Type::BandPass, sr.hz(), hz.hz(), q.max(0.1))
        .unwrap_or(Coefficients { a1: 0.0, a2: 0.0, b0: 0.0, b1: 0.0, b2: 0.0 });
    DirectForm2Transposed::<f32>::new(c)
}

/// Filtered noise burst added into `out` from sample `s0` for `len` samples, with a
/// raised-cosine envelope of `attack`/`release` samples.
#[allow(clippy::too_many_arguments)]
fn noise_burst(out: &mut [f32], seed: u64, sr: f32, s0: usize, len: usize, hz: f32, q: f32, level: f32) {
    let mut r = Rand::new(seed);
    let mut f = bandpass(sr, hz, q);
    let ramp = (len / 4).max(1);
    for i in 0..len {
        let s = s0 + i;
        if s >= out.len() {
            break;
        }
        let env = if i < ramp {
            0.5 - 0.5 * (std::f32::consts::PI * i as f32 / ramp as f32).cos()
        } else if i + ramp > len {
            0.5 - 0.5 * (std::f32::consts::PI * (len - i) as f32 / ramp as f32).cos()
        } else {
            1.0
        };
        out[s] += level * env * f.run(r.white());
    }
}

/// Render a phrase at `sample_rate` into `total_s` seconds, with its ground truth.
pub fn render_phrase(r: &mut Rand, p: &VoiceParams, notes: &[Note], sample_rate: f32, total_s: f32) -> Clip {
    let sr = sample_rate;
    let n = (total_s * sr) as usize;
    let mut audio = vec![0.0f32; n];
    let mut f0_hz = vec![0.0f32; n];
    let mut amp = vec![0.0f32; n];
    // Per-sample vowel blend: index of the note whose vowel sounds, and a consonant colouring.
    let mut vowel_of = vec![usize::MAX; n];
    let mut fry = vec![false; n];
    let mut f0_midi = vec![f32::NAN; n];
    let mut reference = Vec::new();
    let mut sung = Vec::new();
    let release = 0.04;
    let mut prev_midi: Option<f32> = None;
    let mut prev_end = f32::NEG_INFINITY;
    for (ni, note) in notes.iter().enumerate() {
        let start = note.start_s;
        let s0 = (start * sr) as usize;
        let s_end = (((start + note.dur_s + release) * sr) as usize).min(n);
        let s_note_end = (((start + note.dur_s) * sr) as usize).min(n);
        if s0 >= n {
            break;
        }
        reference.push((start, note.midi));
        sung.push(*note);
        // Consonant before the voiced part.
        let mut attack = p.attack_s;
        match note.onset {
            Onset::Plosive { burst_hz, voiced } => {
                // Burst 5–15 ms ending just before the voicing, aspiration for voiceless ones.
                let burst = (r.range(0.005, 0.015) * sr) as usize;
                let asp = if voiced { 0 } else { (r.range(0.01, 0.04) * sr) as usize };
                let b0 = s0.saturating_sub(burst + asp);
                noise_burst(&mut audio, r.seed(), sr, b0, burst, burst_hz, 1.2, note.level * r.range(0.3, 1.0));
                if asp > 0 {
                    noise_burst(&mut audio, r.seed(), sr, b0 + burst, asp, 1500.0, 0.7, note.level * r.range(0.05, 0.2));
                }
                attack = attack.min(0.01);
            }
            Onset::Fricative { hz, q, level } => {
                let len = (r.range(0.05, 0.15) * sr) as usize;
                noise_burst(&mut audio, r.seed(), sr, s0.saturating_sub(len), len + (0.01 * sr) as usize, hz, q, note.level * level * r.range(0.5, 1.5));
            }
            _ => {}
        }
        let nasal_len = match note.onset {
            Onset::Nasal | Onset::Lateral => (r.range(0.04, 0.12).min(0.5 * note.dur_s) * sr) as usize,
            _ => 0,
        };
        let glide = if note.onset == Onset::Slur && start - prev_end < 0.02 { note.glide_s } else { 0.0 };
        let from = prev_midi.unwrap_or(note.midi);
        let fry_start = if note.fry_s > 0.0 { ((start + note.dur_s - note.fry_s) * sr) as usize } else { usize::MAX };
        for s in s0..s_end {
            let t = (s - s0) as f32 / sr;
            let mut midi = note.midi;
            if glide > 0.0 && t < glide {
                // Smooth portamento from the previous pitch.
                let x = t / glide;
                let w = x * x * (3.0 - 2.0 * x);
                midi = from + (note.midi - from) * w;
            } else if let Some((depth, tau)) = note.scoop {
                midi += depth * (-t / tau).exp();
            }
            let vib_on = ((t - 0.15) / 0.2).clamp(0.0, 1.0);
            midi += note.vibrato_cents / 100.0 * vib_on * (TAU * p.vibrato_hz * t).sin();
            let hz = midi_to_hz(midi);
            let env = if note.onset == Onset::Slur && glide > 0.0 {
                1.0
            } else if t < attack {
                let x = t / attack;
                x * x
            } else {
                1.0
            };
            let rel = if s >= s_note_end { (1.0 - (s - s_note_end) as f32 / (release * sr)).max(0.0) } else { 1.0 };
            let a = note.level * env * rel;
            // Overlap with the previous note's release: the louder one sets the pitch.
            if a >= amp[s] {
                amp[s] = a;
                f0_hz[s] = hz;
                vowel_of[s] = if s - s0 < nasal_len { usize::MAX - 1 - (note.onset == Onset::Lateral) as usize } else { ni };
                fry[s] = s >= fry_start && s < s_note_end;
            }
            // Ground truth: voiced from the start of the voiced part until the release falls
            // below −12 dB, outside fry.
            if rel > 0.25 && !(s >= fry_start && s < s_note_end) {
                f0_midi[s] = hz_to_midi(hz);
            }
        }
        prev_midi = Some(note.midi);
        prev_end = start + note.dur_s;
    }
    // Voiced source: harmonics with jitter/shimmer per cycle, shaped by the formants.
    let max_h = 60usize;
    let mut phase = 0.0f32; // fundamental phase, cycles
    let mut cyc_jit = 1.0f32;
    let mut cyc_shim = 1.0f32;
    let mut cycle_index = 0u64;
    let mut amps = vec![0.0f32; max_h];
    let mut last_update = usize::MAX;
    let mut breath_f = bandpass(sr, 1800.0, 0.5);
    let nyq = 0.5 * sr;
    let top = nyq.min(9000.0);
    for s in 0..n {
        let a = amp[s];
        if a <= 0.0 {
            phase = 0.0;
            continue;
        }
        let f0 = f0_hz[s] * cyc_jit;
        let nh = ((top / f0) as usize).clamp(1, max_h);
        if last_update == usize::MAX || s >= last_update + 32 || s == 0 {
            last_update = s;
            let fm = match vowel_of[s] {
                usize::MAX => formants(Vowel::Nasal),
                x if x == usize::MAX - 1 => formants(Vowel::Nasal),
                x if x == usize::MAX - 2 => formants(Vowel::L),
                x => formants(notes[x].vowel),
            };
            let mut norm = 0.0;
            for h in 0..nh {
                let fh = (h + 1) as f32 * f0;
                let g = ((h + 1) as f32).powf(-p.tilt) * formant_gain(&fm, p.formant_scale, fh);
                amps[h] = g;
                norm += g * g;
            }
            let norm = norm.sqrt().max(1e-6);
            amps.iter_mut().take(nh).for_each(|g| *g /= norm);
        }
        phase += f0 / sr;
        if phase >= 1.0 {
            phase -= 1.0;
            cycle_index += 1;
            cyc_jit = 1.0 + p.jitter * r.normal();
            cyc_shim = 1.0 + p.shimmer * r.normal();
        }
        let mut v = 0.0f32;
        for (h, g) in amps.iter().take(nh).enumerate() {
            v += g * (TAU * (h + 1) as f32 * phase).sin();
        }
        let mut gain = a * cyc_shim.max(0.0);
        if vowel_of[s] >= usize::MAX - 2 {
            // Nasal murmur or "l" before the vowel: about 8 dB quieter than the vowel.
            gain *= 0.4;
        }
        if fry[s] {
            // Vocal fry: alternate cycles collapse (period doubling), irregular.
            gain *= if cycle_index.is_multiple_of(2) { 1.0 } else { r.range(0.05, 0.4) };
        }
        let nasal = matches!(vowel_of[s], x if x >= usize::MAX - 1) || p.hummed;
        let breath = p.breath * breath_f.run(r.white()) * if nasal { 0.3 } else { 1.0 };
        audio[s] += gain * (0.7 * v + breath);
    }
    Clip { sample_rate: sr, audio, f0_midi, notes: reference, sung }
}

/// A negative example: breaths, clicks, and silence (no notes, nothing voiced).
pub fn render_negative(r: &mut Rand, sample_rate: f32, total_s: f32) -> Clip {
    let sr = sample_rate;
    let n = (total_s * sr) as usize;
    let mut audio = vec![0.0f32; n];
    let mut t = r.range(0.0, 0.5);
    while t < total_s {
        let s0 = (t * sr) as usize;
        match r.below(3) {
            0 => {
                // A breath in or out: broadband noise through a vowel-like band, 0.2–0.7 s.
                let len = (r.range(0.2, 0.7) * sr) as usize;
                noise_burst(&mut audio, r.seed(), sr, s0, len, r.range(800.0, 2500.0), 0.6, r.range(0.02, 0.2));
            }
            1 => {
                // A click: a few samples, or a short ringing tick.
                let len = (r.range(0.0005, 0.004) * sr) as usize + 1;
                noise_burst(&mut audio, r.seed(), sr, s0, len, r.range(500.0, 6000.0), 0.7, r.range(0.1, 1.0));
            }
            _ => {
                // A lip smack / consonant without a vowel.
                let len = (r.range(0.02, 0.12) * sr) as usize;
                noise_burst(&mut audio, r.seed(), sr, s0, len, r.range(2000.0, 7000.0), 1.0, r.range(0.02, 0.3));
            }
        }
        t += r.range(0.15, 1.2);
    }
    Clip { sample_rate: sr, audio, f0_midi: vec![f32::NAN; n], notes: Vec::new(), sung: Vec::new() }
}

/// Lowpass-then-highpass (telephone band 300–3400 Hz).
pub fn telephone(x: &mut [f32], sr: f32) {
    let hp = Coefficients::<f32>::from_params(Type::HighPass, sr.hz(), 300.0.hz(), Q_BUTTERWORTH_F32);
    let lp = Coefficients::<f32>::from_params(Type::LowPass, sr.hz(), 3400.0f32.min(0.45 * sr).hz(), Q_BUTTERWORTH_F32);
    if let (Ok(hp), Ok(lp)) = (hp, lp) {
        let mut a = DirectForm2Transposed::<f32>::new(hp);
        let mut b = DirectForm2Transposed::<f32>::new(lp);
        let mut c = DirectForm2Transposed::<f32>::new(hp);
        let mut d = DirectForm2Transposed::<f32>::new(lp);
        for v in x.iter_mut() {
            *v = d.run(c.run(b.run(a.run(*v))));
        }
    }
}

/// Random EQ: a low shelf, a peak and a high shelf, each ±9 dB.
pub fn random_eq(x: &mut [f32], sr: f32, r: &mut Rand) {
    let bands = [
        Type::LowShelf(r.range(-9.0, 9.0)),
        Type::PeakingEQ(r.range(-9.0, 9.0)),
        Type::HighShelf(r.range(-9.0, 9.0)),
    ];
    let freqs = [r.range(80.0, 300.0), r.range(300.0, 3000.0), r.range(2000.0, 8000.0)];
    for (ty, f) in bands.into_iter().zip(freqs) {
        if let Ok(c) = Coefficients::<f32>::from_params(ty, sr.hz(), f.min(0.45 * sr).hz(), 0.8) {
            let mut flt = DirectForm2Transposed::<f32>::new(c);
            for v in x.iter_mut() {
                *v = flt.run(*v);
            }
        }
    }
}
