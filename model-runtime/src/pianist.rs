//! Pianist v0: a parametric piano written straight into complex spectrum frames.
//!
//! Each voice is a struck string: partials at `fₙ = n·f₀·√(1 + B·n²)` (B per key from
//! `pianist.inharmonicity`), a spectral envelope that is darker for soft notes and for the
//! `tone` knob, a node at the hammer's strike point, a two-stage decay (prompt then aftersound,
//! T60 per key from `pianist.t60_s`, upper partials faster), a damper that stops the note with
//! the `release` time, and a short hammer-noise burst.
//!
//! Partials are placed with the exact transform of the periodic Hann synthesis window (a real,
//! symmetric kernel when the phase is referred to the frame centre), so overlap-adding the
//! inverse transforms at 50 % overlap reproduces continuous sinusoids: each partial's phase
//! advances by `2π·fₙ·hop/sr` per frame, so frame joins are seamless.

use realfft::num_complex::Complex32;

use crate::controls::Controls;
use crate::model::Model;
use crate::tracker::TrackEvent;
use crate::v0::{midi_to_hz, N_KEYS};

/// Sounding voices (overlapping tails of a melody).
pub const VOICES: usize = 8;
/// Partials per voice at most.
pub const PARTIALS: usize = 40;
/// Half-width of the window kernel, bins.
const KERNEL_HALF: usize = 6;
/// Kernel table points per bin.
const KERNEL_OVERSAMPLE: usize = 64;
/// Voices below this amplitude are freed.
const SILENT: f32 = 1.0e-5;
/// Strike point as a fraction of the string (a node near the 8th partial).
const STRIKE: f32 = 0.12;
/// Hammer-noise decay time constant, seconds.
const HAMMER_TAU_S: f32 = 0.006;


/// The exact transform of the periodic Hann synthesis window of length `n`, tabulated: places a
/// sinusoid of any (fractional-bin) frequency into a frame spectrum. With the phase referred to
/// the frame centre the kernel is real and symmetric; the bin sign `(-1)^k` moves the reference
/// to the frame start.
pub struct Kernel {
    table: Vec<f32>,
}

impl Kernel {
    pub fn new(n: usize) -> Kernel {
        let window: Vec<f64> = (0..n)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
            .collect();
        let points = 2 * KERNEL_HALF * KERNEL_OVERSAMPLE + 1;
        let table = (0..points)
            .map(|p| {
                let x = p as f64 / KERNEL_OVERSAMPLE as f64 - KERNEL_HALF as f64;
                let mut acc = 0.0;
                for (i, w) in window.iter().enumerate() {
                    let m = i as f64 - (n / 2) as f64;
                    acc += w * (2.0 * std::f64::consts::PI * x * m / n as f64).cos();
                }
                acc as f32
            })
            .collect();
        Kernel { table }
    }

    fn at(&self, x: f32) -> f32 {
        let pos = (x + KERNEL_HALF as f32) * KERNEL_OVERSAMPLE as f32;
        if pos < 0.0 || pos >= (self.table.len() - 1) as f32 {
            return 0.0;
        }
        let i = pos as usize;
        let f = pos - i as f32;
        self.table[i] * (1.0 - f) + self.table[i + 1] * f
    }

    /// Add `a·cos(2π·f·m/n + phase)` (m from the frame centre; `f` in bins) to `out`.
    pub fn add_sinusoid(&self, out: &mut [Complex32], f: f32, a: f32, phase: f32) {
        let bins = out.len();
        let half = 0.5 * a;
        let (s, co) = phase.sin_cos();
        let lo = (f - KERNEL_HALF as f32).ceil().max(0.0) as usize;
        let hi = ((f + KERNEL_HALF as f32).floor().max(0.0) as usize).min(bins - 1);
        for k in lo..=hi {
            let w = half * self.at(k as f32 - f);
            let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
            out[k] += Complex32::new(co, s) * (w * sign);
        }
        // Image at −f (matters near DC).
        if f < KERNEL_HALF as f32 {
            let hi = ((KERNEL_HALF as f32 - f).floor() as usize).min(bins - 1);
            for k in 0..=hi {
                let w = half * self.at(k as f32 + f);
                let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
                out[k] += Complex32::new(co, -s) * (w * sign);
            }
        }
    }
}

/// Key-up and sustain-pedal state of one voice, shared by both pianists.
#[derive(Debug, Clone, Copy, Default)]
pub struct Damper {
    /// Seconds since the damper fell, if it has.
    pub released_s: Option<f32>,
    /// The key is up but the sustain pedal holds the damper off.
    pub pedal_held: bool,
}

impl Damper {
    pub const UP: Damper = Damper { released_s: None, pedal_held: false };

    /// Key up: the damper falls now, or stays off while the pedal is down.
    pub fn key_up(&mut self, pedal_down: bool) {
        if self.released_s.is_none() {
            if pedal_down {
                self.pedal_held = true;
            } else {
                self.released_s = Some(0.0);
            }
        }
    }

    /// Pedal lifted: a voice held only by the pedal is damped now.
    pub fn pedal_up(&mut self) {
        if self.pedal_held {
            self.pedal_held = false;
            self.released_s = Some(0.0);
        }
    }
}

/// Deterministic Gaussian noise written into frame spectra (windowed by the synthesis Hann).
pub struct NoiseGen {
    rng: u64,
    /// Scratch: unwindowed noise spectrum.
    scratch: Vec<Complex32>,
}

impl NoiseGen {
    const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

    pub fn new(hop: usize) -> NoiseGen {
        NoiseGen { rng: Self::SEED, scratch: vec![Complex32::new(0.0, 0.0); hop + 1] }
    }

    pub fn reset(&mut self) {
        self.rng = Self::SEED;
    }

    fn next_gauss(&mut self) -> f32 {
        // Sum of uniforms ≈ Gaussian; plenty for noise.
        let mut acc = 0.0;
        for _ in 0..4 {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            acc += (self.rng >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        }
        acc * 1.732
    }

    /// Add noise whose per-sample standard deviation at bin `k` is `std(k)` (coloured white
    /// noise over a frame of `n` samples), windowed by the periodic Hann (a 3-tap convolution
    /// in frequency).
    pub fn add_shaped(&mut self, out: &mut [Complex32], n: usize, std: impl Fn(usize) -> f32) {
        let bins = out.len();
        // Complex bins of an n-sample white frame carry variance n·σ², half in each part.
        let scale = (n as f32).sqrt() * std::f32::consts::FRAC_1_SQRT_2;
        for k in 0..bins {
            let re = self.next_gauss();
            let im = self.next_gauss();
            self.scratch[k] = Complex32::new(re, im) * (scale * std(k));
        }
        self.scratch[0].im = 0.0;
        self.scratch[bins - 1].im = 0.0;
        for k in 0..bins {
            let left = if k > 0 { self.scratch[k - 1] } else { self.scratch[1].conj() };
            let right = if k + 1 < bins { self.scratch[k + 1] } else { self.scratch[bins - 2].conj() };
            out[k] += self.scratch[k] * 0.5 - (left + right) * 0.25;
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Voice {
    /// Sounding, or free.
    active: bool,
    /// MIDI key.
    key: u8,
    /// 0..1.
    velocity: f32,
    /// Seconds since the hammer struck, at the current frame centre.
    age_s: f32,
    /// Key up / pedal.
    damper: Damper,
    /// Per-partial frequency, bins of the synthesis FFT (0 = above the band).
    freq_bins: [f32; PARTIALS],
    /// Per-partial phase at the frame centre, radians (f64: long notes stay in tune).
    phase: [f64; PARTIALS],
    /// Per-partial initial amplitude.
    amp0: [f32; PARTIALS],
    /// Per-partial decay rates, 1/s: prompt and aftersound.
    decay: [(f32, f32); PARTIALS],
    /// Damper decay rate, 1/s.
    damp_rate: f32,
}

impl Voice {
    const FREE: Voice = Voice {
        active: false,
        key: 0,
        velocity: 0.0,
        age_s: 0.0,
        damper: Damper::UP,
        freq_bins: [0.0; PARTIALS],
        phase: [0.0; PARTIALS],
        amp0: [0.0; PARTIALS],
        decay: [(0.0, 0.0); PARTIALS],
        damp_rate: 0.0,
    };
}

pub struct PianistV0 {
    voices: [Voice; VOICES],
    /// Samples per second.
    sample_rate: f32,
    /// Hop, samples.
    hop: usize,
    /// Synthesis frame length, samples (2·hop).
    n: usize,
    kernel: Kernel,
    /// Inharmonicity per key (index = MIDI − 21).
    inharmonicity: Vec<f32>,
    /// T60 of the aftersound per key, seconds.
    t60: Vec<f32>,
    noise: NoiseGen,
    /// Sustain pedal down.
    pedal: bool,
}

impl PianistV0 {
    pub fn new(model: &Model, sample_rate: f32, hop: usize) -> Self {
        let n = 2 * hop;
        PianistV0 {
            voices: [Voice::FREE; VOICES],
            sample_rate,
            hop,
            n,
            kernel: Kernel::new(n),
            inharmonicity: model.tensor("pianist.inharmonicity").data.clone(),
            t60: model.tensor("pianist.t60_s").data.clone(),
            noise: NoiseGen::new(hop),
            pedal: false,
        }
    }

    pub fn reset(&mut self) {
        self.voices = [Voice::FREE; VOICES];
        self.noise.reset();
        self.pedal = false;
    }

    /// Voices sounding now.
    pub fn active_voices(&self) -> usize {
        self.voices.iter().filter(|v| v.active).count()
    }

    /// Sustain pedal: while down, released keys keep ringing; lifting it damps them.
    pub fn sustain(&mut self, down: bool) {
        self.pedal = down;
        if !down {
            self.voices.iter_mut().filter(|v| v.active).for_each(|v| v.damper.pedal_up());
        }
    }

    /// Apply a tracker event (at the frame about to be synthesized).
    pub fn event(&mut self, ev: TrackEvent, c: &Controls) {
        match ev {
            TrackEvent::Off { note } => {
                let pedal = self.pedal;
                self.voices.iter_mut().filter(|v| v.active && v.key == note).for_each(|v| v.damper.key_up(pedal));
            }
            TrackEvent::On { note, velocity } => {
                // A re-struck key first damps its old voice.
                let slot = self
                    .voices
                    .iter()
                    .position(|v| !v.active)
                    .or_else(|| {
                        // Steal the quietest released voice, else the oldest.
                        (0..VOICES).filter(|&i| self.voices[i].damper.released_s.is_some()).max_by(|&a, &b| {
                            self.voices[a].damper.released_s.unwrap_or(0.0).total_cmp(&self.voices[b].damper.released_s.unwrap_or(0.0))
                        })
                    })
                    .unwrap_or_else(|| {
                        (0..VOICES).max_by(|&a, &b| self.voices[a].age_s.total_cmp(&self.voices[b].age_s)).unwrap_or(0)
                    });
                let voice = self.strike(note, velocity, c);
                self.voices[slot] = voice;
            }
        }
    }

    fn strike(&self, key: u8, velocity: f32, c: &Controls) -> Voice {
        let k = (key as usize).clamp(21, 108) - 21;
        let k = k.min(N_KEYS - 1);
        let b = self.inharmonicity[k];
        let t60 = self.t60[k].max(0.05);
        let f0 = midi_to_hz(key as f32);
        let bin_hz = self.sample_rate / self.n as f32;
        let nyq = (0.45 * self.sample_rate).min(16000.0);
        let vel = velocity.clamp(0.0, 1.0);
        // Soft notes and a dark tone tilt the spectrum down.
        let tilt = (1.1 + 1.3 * (1.0 - vel) - 0.6 * c.tone).max(0.3);
        let level = 0.02 + 0.28 * vel.powf(1.5);
        let mut v = Voice::FREE;
        v.active = true;
        v.key = key;
        v.velocity = vel;
        let mut energy = 0.0;
        for p in 0..PARTIALS {
            let nf = (p + 1) as f32;
            let f = nf * f0 * (1.0 + b * nf * nf).sqrt();
            if f >= nyq {
                break;
            }
            v.freq_bins[p] = f / bin_hz;
            let strike_node = (std::f32::consts::PI * nf * STRIKE).sin().abs().max(0.05);
            let a = strike_node / nf.powf(tilt);
            v.amp0[p] = a;
            energy += a * a;
            // Aftersound decays over t60; upper partials faster; the prompt sound 5× faster.
            let slow = 6.91 / t60 * (1.0 + 0.12 * (nf - 1.0));
            v.decay[p] = (5.0 * slow, slow);
            // Deterministic spread of initial phases (no peaky waveform at the strike).
            v.phase[p] = (p as f64 * 2.399_963) % std::f64::consts::TAU;
        }
        let norm = level / energy.sqrt().max(1e-9);
        for a in v.amp0.iter_mut() {
            *a *= norm;
        }
        v.damp_rate = 6.91 / (c.release_ms / 1000.0).max(0.01);
        v
    }

    /// Write the next frame's spectrum (`hop + 1` bins, DFT of the windowed frame) into `out`
    /// and advance time by one hop.
    pub fn synthesize(&mut self, out: &mut [Complex32]) {
        out.iter_mut().for_each(|z| *z = Complex32::new(0.0, 0.0));
        let bins = self.hop + 1;
        let hop_s = self.hop as f32 / self.sample_rate;
        let mut noise_level = 0.0f32;
        let mut noise_cut_bins = 1.0f32;
        for vi in 0..VOICES {
            let v = self.voices[vi];
            if !v.active {
                continue;
            }
            let damp = v.damper.released_s.map_or(1.0, |r| (-v.damp_rate * r).exp());
            let mut loudest = 0.0f32;
            for p in 0..PARTIALS {
                let f = v.freq_bins[p];
                if f <= 0.0 {
                    break;
                }
                let (fast, slow) = v.decay[p];
                let env = 0.35 * (-fast * v.age_s).exp() + 0.65 * (-slow * v.age_s).exp();
                // Upper partials are damped a little faster too.
                let damp_p = if v.damper.released_s.is_some() { damp.powf(1.0 + 0.03 * p as f32) } else { 1.0 };
                let a = v.amp0[p] * env * damp_p;
                loudest = loudest.max(a);
                if a < 1e-7 {
                    continue;
                }
                self.kernel.add_sinusoid(out, f, a, v.phase[p] as f32);
            }
            // Hammer noise right after the strike.
            if v.age_s < 6.0 * HAMMER_TAU_S {
                let lvl = 0.02 * v.velocity * v.velocity * (-v.age_s / HAMMER_TAU_S).exp();
                noise_level += lvl;
                let cut_hz = 800.0 + 5000.0 * v.velocity;
                noise_cut_bins = noise_cut_bins.max(cut_hz / (self.sample_rate / self.n as f32));
            }
            let voice = &mut self.voices[vi];
            voice.age_s += hop_s;
            if let Some(r) = voice.damper.released_s.as_mut() {
                *r += hop_s;
            }
            for p in 0..PARTIALS {
                if voice.freq_bins[p] <= 0.0 {
                    break;
                }
                let step = std::f64::consts::PI * voice.freq_bins[p] as f64 * self.hop as f64 * 2.0 / self.n as f64;
                voice.phase[p] = (voice.phase[p] + step) % std::f64::consts::TAU;
            }
            if loudest < SILENT && (voice.damper.released_s.is_some() || voice.age_s > 1.0) {
                voice.active = false;
            }
        }
        if noise_level > 0.0 {
            // White noise of RMS `noise_level`, low-passed.
            self.noise.add_shaped(out, self.n, |k| noise_level / (1.0 + (k as f32 / noise_cut_bins).powi(2)).sqrt());
        }
        out[0].im = 0.0;
        out[bins - 1].im = 0.0;
    }
}
