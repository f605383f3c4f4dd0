//! A small formant singer: glottal-source harmonics shaped by vowel formants, with vibrato,
//! jitter, breath noise and consonant onsets. It makes the demo vocal and the test signals
//! (ground truth known exactly). The full training-data singer is the listener issue's.

use crate::v0::midi_to_hz;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceType {
    Male,
    Female,
    Child,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vowel {
    A,
    E,
    I,
    O,
    U,
    /// Closed-mouth hum.
    Hum,
}

/// One sung note.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SungNote {
    /// Onset, seconds.
    pub start_s: f32,
    /// Duration, seconds.
    pub dur_s: f32,
    /// Pitch, MIDI (may be fractional: detuning).
    pub midi: f32,
    pub vowel: Vowel,
    /// Peak level, linear (1 = full scale).
    pub level: f32,
    /// Starts with a consonant burst ("da", "ta") instead of a soft vowel onset.
    pub consonant: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Singer {
    pub voice: VoiceType,
    /// Vibrato rate, Hz.
    pub vibrato_hz: f32,
    /// Vibrato depth, cents (peak).
    pub vibrato_cents: f32,
    /// Breath noise relative to the voice, linear.
    pub breath: f32,
    /// Random pitch jitter, cents RMS.
    pub jitter_cents: f32,
    /// Seed of the noise generators.
    pub seed: u64,
    /// Onset ramp of each note, seconds (quadratic).
    pub attack_s: f32,
}

impl Default for Singer {
    fn default() -> Self {
        Singer { voice: VoiceType::Male, vibrato_hz: 5.5, vibrato_cents: 25.0, breath: 0.02, jitter_cents: 5.0, seed: 1, attack_s: 0.025 }
    }
}

/// (frequency Hz, bandwidth Hz, level dB) of four formants, male voice (also the training
/// singer's vowels, `train::voice`).
pub(crate) fn formants(v: Vowel) -> [(f32, f32, f32); 4] {
    match v {
        Vowel::A => [(800.0, 80.0, 0.0), (1150.0, 90.0, -6.0), (2900.0, 120.0, -20.0), (3900.0, 130.0, -30.0)],
        Vowel::E => [(400.0, 70.0, 0.0), (1600.0, 80.0, -12.0), (2700.0, 100.0, -18.0), (3300.0, 120.0, -26.0)],
        Vowel::I => [(270.0, 60.0, 0.0), (2140.0, 90.0, -16.0), (2950.0, 100.0, -20.0), (3900.0, 120.0, -30.0)],
        Vowel::O => [(450.0, 70.0, 0.0), (800.0, 80.0, -9.0), (2830.0, 100.0, -28.0), (3800.0, 130.0, -36.0)],
        Vowel::U => [(325.0, 50.0, 0.0), (700.0, 60.0, -12.0), (2700.0, 170.0, -30.0), (3800.0, 180.0, -38.0)],
        Vowel::Hum => [(250.0, 60.0, 0.0), (1000.0, 150.0, -24.0), (2500.0, 200.0, -36.0), (3500.0, 250.0, -42.0)],
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

impl Singer {
    /// Render `notes` into `total_s` seconds of mono audio at `sample_rate`.
    pub fn render(&self, notes: &[SungNote], sample_rate: f32, total_s: f32) -> Vec<f32> {
        let n = (total_s * sample_rate).max(0.0) as usize;
        let mut out = vec![0.0f32; n];
        let shift = match self.voice {
            VoiceType::Male => 1.0,
            VoiceType::Female => 1.17,
            VoiceType::Child => 1.3,
        };
        let mut rng = Rng(self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut sorted = notes.to_vec();
        sorted.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
        let attack = self.attack_s.max(1e-4);
        let release = 0.04;
        for (ni, note) in sorted.iter().enumerate() {
            let s0 = ((note.start_s * sample_rate) as isize).max(0) as usize;
            let s1 = (((note.start_s + note.dur_s + release) * sample_rate) as usize).min(n);
            if s0 >= s1 {
                continue;
            }
            let fm = formants(note.vowel);
            let mut phases = [0.0f64; 64];
            for (h, p) in phases.iter_mut().enumerate() {
                *p = (h as f64 * 1.3 + ni as f64 * 0.7) % std::f64::consts::TAU;
            }
            let f_base = midi_to_hz(note.midi);
            let mut jitter = 0.0f32;
            let mut amps = [0.0f32; 64];
            for s in s0..s1 {
                let t = (s - s0) as f32 / sample_rate;
                // Pitch: vibrato growing in after 150 ms, slow jitter.
                if s % 64 == 0 {
                    jitter = 0.9 * jitter + 0.1 * rng.next() * self.jitter_cents * 3.0;
                }
                let vib_depth = self.vibrato_cents * (t / 0.15).min(1.0);
                let cents = vib_depth * (std::f32::consts::TAU * self.vibrato_hz * t).sin() + jitter;
                let f0 = f_base * (cents / 1200.0).exp2();
                let env = if t < attack {
                    (t / attack).powi(2)
                } else if t > note.dur_s {
                    (1.0 - (t - note.dur_s) / release).max(0.0)
                } else {
                    1.0
                };
                // Harmonic amplitudes updated every 64 samples (source tilt × formants).
                let nh = ((0.45 * sample_rate.min(16000.0) / f0) as usize).clamp(1, 64);
                if s == s0 || s % 64 == 0 {
                    let mut norm = 0.0;
                    for h in 0..nh {
                        let fh = (h + 1) as f32 * f0;
                        let mut g = 0.0;
                        for &(ff, bw, db) in &fm {
                            let ff = ff * shift;
                            let x = fh / ff;
                            let resp = 1.0 / (((1.0 - x * x).powi(2) + (x * bw / ff).powi(2)).sqrt()) * (bw / ff);
                            g += resp * 10f32.powf(db / 20.0);
                        }
                        let source = 1.0 / ((h + 1) as f32).powf(1.2);
                        amps[h] = source * g.min(4.0);
                        norm += amps[h] * amps[h];
                    }
                    let norm = norm.sqrt().max(1e-6);
                    for a in amps.iter_mut().take(nh) {
                        *a /= norm;
                    }
                    for a in amps.iter_mut().skip(nh) {
                        *a = 0.0;
                    }
                }
                let mut v = 0.0f32;
                for h in 0..nh {
                    let step = std::f64::consts::TAU * (h + 1) as f64 * f0 as f64 / sample_rate as f64;
                    phases[h] = (phases[h] + step) % std::f64::consts::TAU;
                    v += amps[h] * phases[h].sin() as f32;
                }
                let breath = self.breath * rng.next();
                let mut x = (v * 0.7 + breath) * env;
                if note.consonant && t < 0.03 {
                    // Plosive burst: noise decaying over 30 ms, before the vowel opens.
                    x += 0.5 * rng.next() * (1.0 - t / 0.03);
                }
                out[s] += x * note.level;
            }
        }
        out
    }
}

/// The demo phrase: a short folk-like melody sung on "la"/"da"/"oo" by a male voice, 44.1 kHz.
pub fn demo_phrase() -> (Vec<SungNote>, f32) {
    // (midi, beats); 0 = rest. 100 bpm.
    let melody: [(f32, f32, Vowel, bool); 16] = [
        (57.0, 1.0, Vowel::A, false),
        (60.0, 1.0, Vowel::A, true),
        (62.0, 1.0, Vowel::O, false),
        (64.0, 2.0, Vowel::A, true),
        (0.0, 0.5, Vowel::A, false),
        (64.0, 0.5, Vowel::E, true),
        (62.0, 1.0, Vowel::A, false),
        (60.0, 1.0, Vowel::O, true),
        (62.0, 2.0, Vowel::U, false),
        (0.0, 1.0, Vowel::A, false),
        (67.0, 1.0, Vowel::A, true),
        (64.0, 1.0, Vowel::E, false),
        (62.0, 1.0, Vowel::A, true),
        (60.0, 1.0, Vowel::O, false),
        (57.0, 3.0, Vowel::A, true),
        (0.0, 1.0, Vowel::A, false),
    ];
    let beat = 0.6;
    let mut t = 0.3;
    let mut notes = Vec::new();
    for (midi, beats, vowel, consonant) in melody {
        if midi > 0.0 {
            notes.push(SungNote { start_s: t, dur_s: beats * beat - 0.08, midi, vowel, level: 0.5, consonant });
        }
        t += beats * beat;
    }
    (notes, t)
}
