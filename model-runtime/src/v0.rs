//! The v0 generator's tensors: designed, not trained.
//!
//! - `listener.template` maps the log-frequency features to a harmonic salience per pitch
//!   candidate (harmonic summation with decaying weights and negative weights between the
//!   harmonics, which suppresses octave-up errors; the decaying weights suppress octave-down).
//! - `listener.voicing` holds the voicing calibration.
//! - `pianist.*` are per-key tables of the parametric piano (string inharmonicity, decay).
//!
//! `cargo xtask gen-weights` writes these to `assets/hummingface-v0.safetensors`; the trained
//! listener and pianist (later issues) replace them through the same file format.

use crate::model::HostTensor;

/// Lowest log-frequency feature, Hz.
pub const FEAT_MIN_HZ: f32 = 55.0;
/// Log-frequency features per octave (20 cents apart).
pub const FEAT_PER_OCTAVE: usize = 60;
/// Number of log-frequency features (55 Hz … ≈ 4.9 kHz).
pub const N_FEATURES: usize = 390;
/// MIDI pitch of the lowest pitch candidate (C2).
pub const CAND_MIN_MIDI: f32 = 36.0;
/// Pitch candidates per semitone (20 cents apart).
pub const CAND_PER_SEMITONE: usize = 5;
/// Number of pitch candidates (C2 … ≈ F6).
pub const N_CANDIDATES: usize = 270;
/// Harmonics summed per candidate (those below the top feature).
pub const MAX_HARMONIC: usize = 10;
/// Keys of the piano tables: MIDI 21 (A0) … 108 (C8).
pub const N_KEYS: usize = 88;

/// Name and shape of every tensor a model file must hold.
pub struct TensorSpec {
    pub name: &'static str,
    pub shape: &'static [usize],
}

pub const TENSOR_SPECS: &[TensorSpec] = &[
    TensorSpec { name: "listener.template", shape: &[N_FEATURES, N_CANDIDATES] },
    TensorSpec { name: "listener.voicing", shape: &[4] },
    TensorSpec { name: "pianist.inharmonicity", shape: &[N_KEYS] },
    TensorSpec { name: "pianist.t60_s", shape: &[N_KEYS] },
];

/// Centre frequency (Hz) of log-frequency feature `i`.
pub fn feature_hz(i: usize) -> f32 {
    FEAT_MIN_HZ * (i as f32 / FEAT_PER_OCTAVE as f32).exp2()
}

/// MIDI pitch of candidate `c`.
pub fn candidate_midi(c: usize) -> f32 {
    CAND_MIN_MIDI + c as f32 / CAND_PER_SEMITONE as f32
}

pub fn midi_to_hz(m: f32) -> f32 {
    440.0 * ((m - 69.0) / 12.0).exp2()
}

pub fn hz_to_midi(f: f32) -> f32 {
    69.0 + 12.0 * (f / 440.0).log2()
}

/// Fractional feature index of frequency `f`.
fn feature_pos(f: f32) -> f32 {
    FEAT_PER_OCTAVE as f32 * (f / FEAT_MIN_HZ).log2()
}

/// Adds `w` at fractional feature position `p` by linear interpolation.
fn splat(col: &mut [f32], p: f32, w: f32) {
    if p < 0.0 || p > (N_FEATURES - 1) as f32 {
        return;
    }
    let i = p.floor() as usize;
    let frac = p - i as f32;
    col[i] += w * (1.0 - frac);
    if i + 1 < N_FEATURES {
        col[i + 1] += w * frac;
    }
}

/// The v0 tensors, deterministic.
pub fn build_tensors() -> Vec<(&'static str, HostTensor)> {
    let top = feature_hz(N_FEATURES - 1);
    let mut template = vec![0.0f32; N_FEATURES * N_CANDIDATES];
    let mut col = vec![0.0f32; N_FEATURES];
    for c in 0..N_CANDIDATES {
        col.iter_mut().for_each(|v| *v = 0.0);
        let f0 = midi_to_hz(candidate_midi(c));
        let w = |h: usize| 0.85f32.powi(h as i32 - 1);
        let mut neg = vec![0.0f32; N_FEATURES];
        let mut positive = 0.0;
        let mut negative = 0.0;
        for h in 1..=MAX_HARMONIC {
            let fh = h as f32 * f0;
            if fh > top {
                break;
            }
            splat(&mut col, feature_pos(fh), w(h));
            positive += w(h);
            // Half way between harmonics h and h+1 (and below the first): a real partial there
            // means the candidate is an octave (or more) too high; energy there is noise.
            for mid in [h as f32 + 0.5, if h == 1 { 0.5 } else { 0.0 }] {
                if mid > 0.0 && mid * f0 <= top {
                    splat(&mut neg, feature_pos(mid * f0), w(h));
                    negative += w(h);
                }
            }
        }
        // Balanced: a flat (noise) spectrum scores 0, a clean harmonic one up to 1.
        for (i, v) in col.iter().enumerate() {
            template[i * N_CANDIDATES + c] = (v - neg[i] * positive / negative.max(1e-6)) / positive;
        }
    }
    // Voicing calibration: [periodicity threshold at sensitivity 0.5, logistic slope,
    // loudness gate dBFS at sensitivity 0.5, gate change per unit sensitivity (dB)].
    let voicing = vec![0.26f32, 18.0, -50.0, 30.0];
    let keys = |f: &dyn Fn(f32) -> f32| (0..N_KEYS).map(|k| f((k + 21) as f32)).collect::<Vec<f32>>();
    let inharmonicity = keys(&|m| 1.0e-4 * ((m - 60.0) / 14.0).exp2() + 2.5e-4 * (-(m - 21.0) / 7.0).exp());
    let t60 = keys(&|m| 18.0 * (-(m - 21.0) / 20.0).exp2());
    vec![
        ("listener.template", HostTensor { shape: vec![N_FEATURES, N_CANDIDATES], data: template }),
        ("listener.voicing", HostTensor { shape: vec![4], data: voicing }),
        ("pianist.inharmonicity", HostTensor { shape: vec![N_KEYS], data: inharmonicity }),
        ("pianist.t60_s", HostTensor { shape: vec![N_KEYS], data: t60 }),
    ]
}

/// The v0 model as safetensors bytes (what `cargo xtask gen-weights` writes).
pub fn build_file_bytes() -> Vec<u8> {
    crate::model::Model::serialize("hummingface-v0", &build_tensors())
        .expect("v0 tensors have consistent shapes")
}
