//! Augmentation of training clips: rooms (synthetic impulse responses, RT60 0.1–1.5 s), noise
//! (white, pink, mains hum, babble of other voices) at 5–40 dB SNR, EQ and telephone band,
//! level −40…0 dBFS and clipping.

use realfft::RealFftPlanner;

use super::voice::{random_eq, random_phrase, render_phrase, telephone, Clip, Rand, Voice};

/// A synthetic room impulse response: direct sound, a few early reflections and an
/// exponentially decaying noise tail with the given RT60.
pub fn room_ir(r: &mut Rand, sr: f32, rt60: f32) -> Vec<f32> {
    let len = ((rt60 * sr) as usize).max(16);
    let mut ir = vec![0.0f32; len];
    let decay = 6.91 / (rt60 * sr); // −60 dB over rt60
    let pre = (r.range(0.002, 0.02) * sr) as usize;
    for (n, v) in ir.iter_mut().enumerate().skip(pre) {
        *v = r.normal() * (-(decay * n as f32)).exp();
    }
    // Brighter early, darker late: a one-pole lowpass whose cutoff falls along the tail.
    let mut y = 0.0f32;
    for (n, v) in ir.iter_mut().enumerate() {
        let a = 0.2 + 0.75 * (n as f32 / len as f32);
        y = (1.0 - a) * *v + a * y;
        *v = y;
    }
    for _ in 0..6 {
        let at = pre + (r.range(0.001, 0.05) * sr) as usize;
        if at < len {
            ir[at] += r.range(-0.6, 0.6);
        }
    }
    // Normalise the reverberant energy to 1, then put the direct path in front.
    // Reverberant energy relative to the direct sound: −10…+6 dB.
    let e: f32 = ir.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-9);
    let wet = 10f32.powf(r.range(-10.0, 6.0) / 20.0);
    ir.iter_mut().for_each(|v| *v *= wet / e);
    ir[0] = 1.0;
    ir
}

/// Linear convolution `x * h`, truncated to `x.len()` (FFT, realfft).
pub fn convolve(x: &[f32], h: &[f32]) -> Vec<f32> {
    let n = (x.len() + h.len()).next_power_of_two();
    let mut planner = RealFftPlanner::<f32>::new();
    let fwd = planner.plan_fft_forward(n);
    let inv = planner.plan_fft_inverse(n);
    let mut a = fwd.make_input_vec();
    a[..x.len()].copy_from_slice(x);
    let mut b = fwd.make_input_vec();
    b[..h.len()].copy_from_slice(h);
    let mut fa = fwd.make_output_vec();
    let mut fb = fwd.make_output_vec();
    if fwd.process(&mut a, &mut fa).is_err() || fwd.process(&mut b, &mut fb).is_err() {
        return x.to_vec();
    }
    for (p, q) in fa.iter_mut().zip(&fb) {
        *p *= q;
    }
    let mut y = inv.make_output_vec();
    if inv.process(&mut fa, &mut y).is_err() {
        return x.to_vec();
    }
    y.truncate(x.len());
    let scale = 1.0 / n as f32;
    y.iter_mut().for_each(|v| *v *= scale);
    y
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

/// Pink noise (Paul Kellet's economy filter over white noise).
fn pink(r: &mut Rand, n: usize) -> Vec<f32> {
    let (mut b0, mut b1, mut b2) = (0.0f32, 0.0f32, 0.0f32);
    (0..n)
        .map(|_| {
            let w = r.white();
            b0 = 0.99765 * b0 + w * 0.0990460;
            b1 = 0.96300 * b1 + w * 0.2965164;
            b2 = 0.57000 * b2 + w * 1.0526913;
            b0 + b1 + b2 + w * 0.1848
        })
        .collect()
}

/// Background noise of a random kind, `n` samples (unit-free; scaled by the caller).
fn background(r: &mut Rand, sr: f32, n: usize) -> (Vec<f32>, &'static str) {
    match r.below(4) {
        0 => ((0..n).map(|_| r.white()).collect(), "white"),
        1 => (pink(r, n), "pink"),
        2 => {
            // Mains hum: 50 or 60 Hz with odd-heavy harmonics, plus a little hiss.
            let f = if r.chance(0.5) { 50.0 } else { 60.0 };
            let amps: Vec<f32> = (1..=8).map(|h| r.range(0.0, 1.0) / h as f32 * if h % 2 == 1 { 1.0 } else { 0.4 }).collect();
            let hum = (0..n)
                .map(|s| {
                    let t = s as f32 / sr;
                    amps.iter().enumerate().map(|(i, a)| a * (std::f32::consts::TAU * f * (i + 1) as f32 * t).sin()).sum::<f32>()
                        + 0.02 * r.white()
                })
                .collect();
            (hum, "hum")
        }
        _ => {
            // Babble: three other voices singing their own phrases, plus a little pink noise.
            let total_s = n as f32 / sr;
            let mut mix = pink(r, n);
            mix.iter_mut().for_each(|v| *v *= 0.05);
            for _ in 0..3 {
                let voice = r.pick(&[Voice::Male, Voice::Female, Voice::Child]);
                let (p, notes) = random_phrase(r, voice, total_s);
                let c = render_phrase(r, &p, &notes, sr, total_s);
                for (m, v) in mix.iter_mut().zip(&c.audio) {
                    *m += v;
                }
            }
            (mix, "babble")
        }
    }
}

/// What was done to a clip.
#[derive(Debug, Clone, Default)]
pub struct AugmentLog {
    pub rt60: Option<f32>,
    pub noise: Option<(&'static str, f32)>,
    pub eq: bool,
    pub telephone: bool,
    pub level_dbfs: f32,
    pub clipped: bool,
}

/// Apply a random chain of room, EQ, noise, telephone band, level and clipping to `clip`.
/// `strength` 0…1 scales how often each effect is applied (0 = only the level change).
pub fn augment(clip: &mut Clip, r: &mut Rand, strength: f32) -> AugmentLog {
    let sr = clip.sample_rate;
    let mut log = AugmentLog::default();
    let voiced_rms = {
        let v: Vec<f32> = clip.audio.iter().zip(&clip.f0_midi).filter(|(_, f)| f.is_finite()).map(|(a, _)| *a).collect();
        if v.is_empty() { rms(&clip.audio).max(1e-4) } else { rms(&v) }
    };
    if r.chance(0.4 * strength) {
        random_eq(&mut clip.audio, sr, r);
        log.eq = true;
    }
    if r.chance(0.6 * strength) {
        let rt60 = if r.chance(0.6) { r.range(0.1, 0.6) } else { r.range(0.6, 1.5) };
        let ir = room_ir(r, sr, rt60);
        let wet = convolve(&clip.audio, &ir);
        // Keep the overall level (the level is set at the end anyway).
        let g = rms(&clip.audio).max(1e-9) / rms(&wet).max(1e-9);
        clip.audio = wet.iter().map(|v| v * g).collect();
        log.rt60 = Some(rt60);
    }
    if r.chance(0.7 * strength) {
        let snr_db = if r.chance(0.3) { r.range(5.0, 15.0) } else { r.range(15.0, 40.0) };
        let (noise, kind) = background(r, sr, clip.audio.len());
        let g = voiced_rms * 10f32.powf(-snr_db / 20.0) / rms(&noise).max(1e-9);
        for (a, nz) in clip.audio.iter_mut().zip(&noise) {
            *a += g * nz;
        }
        log.noise = Some((kind, snr_db));
    }
    if r.chance(0.1 * strength) {
        telephone(&mut clip.audio, sr);
        log.telephone = true;
    }
    // Level: peak at −40…0 dBFS.
    let peak = clip.audio.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-9);
    let level_db = r.range(-40.0, -1.0);
    let mut g = 10f32.powf(level_db / 20.0) / peak;
    if r.chance(0.1 * strength) {
        // Overdriven input: 3–12 dB into a hard or soft clip.
        g *= 10f32.powf(r.range(3.0, 12.0) / 20.0);
        let soft = r.chance(0.5);
        for v in clip.audio.iter_mut() {
            let x = *v * g;
            *v = if soft { x.tanh() } else { x.clamp(-1.0, 1.0) };
        }
        log.clipped = true;
    } else {
        clip.audio.iter_mut().for_each(|v| *v *= g);
    }
    log.level_dbfs = level_db;
    log
}
