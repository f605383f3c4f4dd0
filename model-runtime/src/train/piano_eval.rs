//! Measurements of rendered piano notes, for `cargo xtask eval pianist` and the pianist's
//! integration tests: multi-resolution log-spectral distance, attack and decay times, tuning
//! of the fundamental, spectral centroid, loudness, and a broadband-burst (click) detector.
//!
//! Every function takes a mono signal whose note starts at (or very near) sample 0, unless it
//! says otherwise.

use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{RealFftPlanner, RealToComplex};

use crate::v0::midi_to_hz;

/// STFT sizes of [`log_spectral_distance_db`] in the evaluation (Hann, hop a quarter).
pub const LSD_SIZES: [usize; 3] = [256, 1024, 4096];
/// Floor of the log-spectral distance's magnitudes, dB re the amplitude of a sinusoid of the
/// signal's RMS (both signals are normalised to RMS 1 first).
pub const LSD_FLOOR_DB: f32 = -80.0;
/// Window of the attack envelope, seconds.
pub const ATTACK_WINDOW_S: f32 = 0.001;
/// Window and hop of the decay envelope, seconds (long enough to smooth beating partials).
pub const DECAY_WINDOW_S: f32 = 0.05;
pub const DECAY_HOP_S: f32 = 0.005;
/// Fade at both ends of a signal before [`max_burst_db`] looks for bursts, seconds.
pub const END_TAPER_S: f32 = 0.01;
/// Bins more than this below the loudest are left out of [`spectral_centroid_hz`], dB.
pub const CENTROID_RANGE_DB: f32 = 90.0;

/// Periodic Hann window.
pub fn hann(n: usize) -> Vec<f32> {
    (0..n).map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / n as f32).cos()).collect()
}

/// Root mean square (0 for an empty slice).
pub fn rms(x: &[f32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / x.len() as f64).sqrt() as f32
}

/// `20·log10(a)`, with a floor of −200 dB.
pub fn db(a: f32) -> f32 {
    20.0 * a.max(1e-10).log10()
}

/// Samples of `x` between `t0` and `t1` seconds (clipped to the signal).
pub fn segment(x: &[f32], sr: f32, t0: f32, t1: f32) -> &[f32] {
    let a = ((t0.max(0.0) * sr).round() as usize).min(x.len());
    let b = ((t1.max(0.0) * sr).round() as usize).clamp(a, x.len());
    &x[a..b]
}

/// Centred moving RMS over `win` samples, one value per sample (zeros outside the signal).
pub fn rms_envelope(x: &[f32], win: usize) -> Vec<f32> {
    let win = win.max(1);
    let mut prefix = Vec::with_capacity(x.len() + 1);
    prefix.push(0.0f64);
    for &v in x {
        prefix.push(prefix.last().copied().unwrap_or(0.0) + v as f64 * v as f64);
    }
    let half = win / 2;
    (0..x.len())
        .map(|i| {
            let a = i.saturating_sub(half);
            let b = (i + win - half).min(x.len());
            ((prefix[b] - prefix[a]).max(0.0) / win as f64).sqrt() as f32
        })
        .collect()
}

/// First sample where the centred [`ATTACK_WINDOW_S`] RMS envelope reaches `fraction` of its
/// peak (the onset, to within half that window, for aligning renders whose notes start a few
/// samples apart).
pub fn onset_sample(x: &[f32], sr: f32, fraction: f32) -> usize {
    let env = rms_envelope(x, (ATTACK_WINDOW_S * sr).round() as usize);
    let peak = env.iter().copied().fold(0.0f32, f32::max);
    env.iter().position(|&e| e >= fraction * peak && peak > 0.0).unwrap_or(0)
}

/// Span after the onset whose envelope sets the attack's reference level, seconds.
pub const ATTACK_REFERENCE_S: f32 = 0.1;

/// Attack time, seconds: the rise of the ~1 ms RMS envelope from 10 % to 90 % of the note's
/// early level (the last time below 10 % before the first time at 90 %).
///
/// The early level is the 90th percentile of the envelope over the [`ATTACK_REFERENCE_S`]
/// after the onset, not its single highest value: a 1 ms window is shorter than a period
/// below 1 kHz, so the envelope follows the waveform's crests, which swing by ±10 dB as
/// inharmonic partials drift in and out of phase; the highest crest can come 50 ms or more
/// after a note that was at full level within 3 ms (measured on FluidR3's C4 and the trained
/// pianist's), which would read as a 50 ms "attack".
pub fn attack_time_s(x: &[f32], sr: f32) -> f32 {
    rise_time_s(x, sr, 0.9)
}

/// [`attack_time_s`] up to `hi` (a fraction of the same reference) instead of 90 %.
pub fn rise_time_s(x: &[f32], sr: f32, hi: f32) -> f32 {
    let env = rms_envelope(x, (ATTACK_WINDOW_S * sr).round() as usize);
    let peak = env.iter().copied().fold(0.0f32, f32::max);
    if peak <= 0.0 {
        return 0.0;
    }
    let start = env.iter().position(|&e| e >= 0.01 * peak).unwrap_or(0);
    let end = (start + (ATTACK_REFERENCE_S * sr) as usize).min(env.len());
    let mut early = env[start..end].to_vec();
    early.sort_by(f32::total_cmp);
    let reference = early[((early.len() - 1) as f32 * 0.9) as usize];
    let i90 = start + env[start..].iter().position(|&e| e >= hi * reference).unwrap_or(0);
    let i10 = env[..i90].iter().rposition(|&e| e < 0.1 * reference).map_or(0, |i| i + 1);
    (i90 - i10.min(i90)) as f32 / sr
}

/// Frame levels of `x`: RMS over `win_s` windows every `hop_s`, as (frame centre s, RMS);
/// only frames entirely inside `x`.
pub fn frame_levels(x: &[f32], sr: f32, win_s: f32, hop_s: f32) -> Vec<(f32, f32)> {
    let win = ((win_s * sr).round() as usize).max(1);
    let hop = ((hop_s * sr).round() as usize).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    while start + win <= x.len() {
        out.push(((start as f32 + win as f32 / 2.0) / sr, rms(&x[start..start + win])));
        start += hop;
    }
    out
}

/// Decay time, seconds: from the peak of the [`DECAY_WINDOW_S`] RMS envelope to its first fall
/// `drop_db` below the peak, while the key is held (windows ending before `hold_s`); `None`
/// if the note does not fall that far while held.
pub fn decay_time_s(x: &[f32], sr: f32, hold_s: f32, drop_db: f32) -> Option<f32> {
    let held = segment(x, sr, 0.0, hold_s);
    let lv = frame_levels(held, sr, DECAY_WINDOW_S, DECAY_HOP_S);
    let (ip, &(tp, peak)) = lv.iter().enumerate().max_by(|a, b| a.1 .1.total_cmp(&b.1 .1))?;
    if peak <= 0.0 {
        return None;
    }
    let target = db(peak) - drop_db;
    for i in ip + 1..lv.len() {
        let (t, l) = lv[i];
        if db(l) <= target {
            // Interpolate in dB between this frame and the one before.
            let (t0, l0) = lv[i - 1];
            let (d0, d1) = (db(l0), db(l));
            let f = if (d0 - d1).abs() > 1e-9 { ((d0 - target) / (d0 - d1)).clamp(0.0, 1.0) } else { 1.0 };
            return Some(t0 + f * (t - t0) - tp);
        }
    }
    None
}

/// Windowed, zero-padded magnitude spectrum of `x` (Hann over all of `x`), `nfft ≥ len`.
fn magnitude_spectrum(planner: &mut RealFftPlanner<f32>, x: &[f32], nfft: usize) -> Vec<f32> {
    let fft = planner.plan_fft_forward(nfft);
    let w = hann(x.len());
    let mut buf = fft.make_input_vec();
    for (b, (&v, &w)) in buf.iter_mut().zip(x.iter().zip(&w)) {
        *b = v * w;
    }
    let mut spec = fft.make_output_vec();
    fft.process(&mut buf, &mut spec).expect("fft sizes");
    spec.iter().map(|z| z.norm()).collect()
}

/// Frequency of the strongest spectral peak within ±`search_cents` of `expected_hz`, Hz, from
/// one Hann window over `t0..t1` s zero-padded to 8× (parabolic interpolation on log
/// magnitude). `None` if the segment is empty or silent.
pub fn peak_hz_near(x: &[f32], sr: f32, expected_hz: f32, t0: f32, t1: f32, search_cents: f32) -> Option<f32> {
    let seg = segment(x, sr, t0, t1);
    if seg.len() < 16 || rms(seg) <= 0.0 {
        return None;
    }
    let nfft = (8 * seg.len()).next_power_of_two();
    let mut planner = RealFftPlanner::<f32>::new();
    let mag = magnitude_spectrum(&mut planner, seg, nfft);
    let bin_hz = sr / nfft as f32;
    let r = 2f32.powf(search_cents / 1200.0);
    let lo = ((expected_hz / r / bin_hz).floor() as usize).max(1);
    let hi = ((expected_hz * r / bin_hz).ceil() as usize).min(mag.len() - 2);
    if lo > hi {
        return None;
    }
    let k = (lo..=hi).max_by(|&a, &b| mag[a].total_cmp(&mag[b]))?;
    let (a, b, c) = ((mag[k - 1] + 1e-20).ln(), (mag[k] + 1e-20).ln(), (mag[k + 1] + 1e-20).ln());
    let den = a - 2.0 * b + c;
    let d = if den.abs() > 1e-12 { (0.5 * (a - c) / den).clamp(-0.5, 0.5) } else { 0.0 };
    Some((k as f32 + d) * bin_hz)
}

/// Tuning of the fundamental of `key` against equal temperament (A4 = 440 Hz), cents,
/// measured over `t0..t1` s (the evaluation uses 0.1–0.6 s) within ±60 cents of the key.
pub fn pitch_error_cents(x: &[f32], sr: f32, key: u8, t0: f32, t1: f32) -> Option<f32> {
    let f_et = midi_to_hz(key as f32);
    peak_hz_near(x, sr, f_et, t0, t1, 60.0).map(|f| 1200.0 * (f / f_et).log2())
}

/// Spectral centroid over `t0..t1` s, Hz (magnitude-weighted mean frequency of one Hann
/// window over the segment, bins within [`CENTROID_RANGE_DB`] of the loudest).
pub fn spectral_centroid_hz(x: &[f32], sr: f32, t0: f32, t1: f32) -> f32 {
    let seg = segment(x, sr, t0, t1);
    if seg.len() < 16 {
        return 0.0;
    }
    let nfft = seg.len().next_power_of_two();
    let mut planner = RealFftPlanner::<f32>::new();
    let mag = magnitude_spectrum(&mut planner, seg, nfft);
    let bin_hz = sr / nfft as f32;
    let floor = mag.iter().copied().fold(0.0f32, f32::max) * 10f32.powf(-CENTROID_RANGE_DB / 20.0);
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (k, &m) in mag.iter().enumerate().filter(|(_, &m)| m >= floor) {
        num += k as f64 * bin_hz as f64 * m as f64;
        den += m as f64;
    }
    if den > 0.0 { (num / den) as f32 } else { 0.0 }
}

/// A short-time Fourier transform (Hann, frames entirely inside the signal).
pub struct Stft {
    n: usize,
    hop: usize,
    window: Vec<f32>,
    /// Amplitude scale: a sinusoid of amplitude 1 peaks at 1 (2/Σw).
    scale: f32,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl Stft {
    pub fn new(n: usize, hop: usize) -> Stft {
        let window = hann(n);
        let scale = 2.0 / window.iter().sum::<f32>();
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
        Stft { n, hop: hop.max(1), window, scale, fft }
    }

    pub fn bins(&self) -> usize {
        self.n / 2 + 1
    }

    /// Magnitudes in dB (re a sinusoid of amplitude 1), one `bins()` row per frame, floored
    /// at `floor_db`.
    pub fn db_frames(&self, x: &[f32], floor_db: f32) -> Vec<Vec<f32>> {
        let mut buf = self.fft.make_input_vec();
        let mut spec: Vec<Complex32> = self.fft.make_output_vec();
        let mut out = Vec::new();
        let mut start = 0;
        while start + self.n <= x.len() {
            for (b, (&v, &w)) in buf.iter_mut().zip(x[start..start + self.n].iter().zip(&self.window)) {
                *b = v * w;
            }
            self.fft.process(&mut buf, &mut spec).expect("fft sizes");
            out.push(spec.iter().map(|z| db(z.norm() * self.scale).max(floor_db)).collect());
            start += self.hop;
        }
        out
    }
}

/// `x` scaled to RMS 1 (unchanged if silent).
pub fn rms_normalised(x: &[f32]) -> Vec<f32> {
    let r = rms(x);
    if r > 0.0 { x.iter().map(|v| v / r).collect() } else { x.to_vec() }
}

/// Multi-resolution log-spectral distance between `x` and `reference`, dB: both cut to the
/// shorter length and normalised to RMS 1; for each STFT size in `sizes` (Hann, hop a
/// quarter) the mean absolute difference of the magnitudes in dB, floored at `floor_db`, over
/// the time-frequency cells where either signal is above the floor; then the mean over the
/// sizes. 0 for a signal against itself (or a scaled copy).
pub fn log_spectral_distance_db(x: &[f32], reference: &[f32], sizes: &[usize], floor_db: f32) -> f32 {
    let len = x.len().min(reference.len());
    let (a, b) = (rms_normalised(&x[..len]), rms_normalised(&reference[..len]));
    let mut total = 0.0f64;
    let mut used = 0;
    for &n in sizes {
        if n > len {
            continue;
        }
        let stft = Stft::new(n, n / 4);
        let (fa, fb) = (stft.db_frames(&a, floor_db), stft.db_frames(&b, floor_db));
        let (mut acc, mut cells) = (0.0f64, 0usize);
        for (ra, rb) in fa.iter().zip(&fb) {
            for (&da, &dbb) in ra.iter().zip(rb) {
                if da > floor_db || dbb > floor_db {
                    acc += (da - dbb).abs() as f64;
                    cells += 1;
                }
            }
        }
        if cells > 0 {
            total += acc / cells as f64;
        }
        used += 1;
    }
    if used == 0 { 0.0 } else { (total / used as f64) as f32 }
}

/// `x` high-passed above `cutoff_hz` (one FFT over the whole zero-padded signal; a raised-
/// cosine transition over the 1 kHz below the cutoff).
pub fn high_passed(x: &[f32], sr: f32, cutoff_hz: f32) -> Vec<f32> {
    let n = (x.len() + 4096).next_power_of_two();
    let mut planner = RealFftPlanner::<f32>::new();
    let fwd = planner.plan_fft_forward(n);
    let inv = planner.plan_fft_inverse(n);
    let mut buf = fwd.make_input_vec();
    buf[..x.len()].copy_from_slice(x);
    let mut spec = fwd.make_output_vec();
    fwd.process(&mut buf, &mut spec).expect("fft sizes");
    let bin_hz = sr / n as f32;
    let lo = cutoff_hz - 1000.0;
    for (k, z) in spec.iter_mut().enumerate() {
        let f = k as f32 * bin_hz;
        let g = if f >= cutoff_hz {
            1.0
        } else if f <= lo {
            0.0
        } else {
            0.5 - 0.5 * (std::f32::consts::PI * (f - lo) / (cutoff_hz - lo)).cos()
        };
        *z *= g / n as f32;
    }
    spec[0].im = 0.0;
    if let Some(last) = spec.last_mut() {
        last.im = 0.0;
    }
    inv.process(&mut spec, &mut buf).expect("fft sizes");
    buf.truncate(x.len());
    buf
}

/// The loudest broadband burst of `x`: the energy above `cutoff_hz` (a band the note's
/// partials barely reach, where a click's flat spectrum still puts a quarter of its energy at
/// 48 kHz with an 18 kHz cutoff) in `frame_s` frames, in dB relative to `level_rms²` (the
/// note's level); returns (dB, frame start s). A one-sample click of amplitude `A` in a 2 ms
/// frame at 48 kHz reads about `10·log10(A²/4/96 / level_rms²)`. The first and last
/// [`END_TAPER_S`] are faded (not judged).
pub fn max_burst_db(x: &[f32], sr: f32, cutoff_hz: f32, frame_s: f32, level_rms: f32) -> (f32, f32) {
    // The signal's ends are tapered (a render cut off mid-note would read as a step).
    let mut y = x.to_vec();
    let taper = ((END_TAPER_S * sr) as usize).min(y.len() / 2);
    for i in 0..taper {
        let g = 0.5 - 0.5 * (std::f32::consts::PI * i as f32 / taper as f32).cos();
        let n = y.len();
        y[i] *= g;
        y[n - 1 - i] *= g;
    }
    let hp = high_passed(&y, sr, cutoff_hz);
    let frame = ((frame_s * sr).round() as usize).max(1);
    let mut worst = (f32::NEG_INFINITY, 0.0);
    for (i, chunk) in hp.chunks(frame).enumerate() {
        let ms = chunk.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / frame as f64;
        let d = 10.0 * ((ms / (level_rms as f64 * level_rms as f64).max(1e-30)).max(1e-30)).log10() as f32;
        if d > worst.0 {
            worst = (d, (i * frame) as f32 / sr);
        }
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;

    const SR: f32 = 48000.0;

    fn decaying_sine(f: f32, tau: f32, seconds: f32) -> Vec<f32> {
        (0..(seconds * SR) as usize)
            .map(|i| {
                let t = i as f32 / SR;
                0.5 * (-t / tau).exp() * (2.0 * std::f32::consts::PI * f * t).sin()
            })
            .collect()
    }

    #[test]
    fn decay_time_of_an_exponential_is_tau_ln10() {
        let tau = 0.3;
        let x = decaying_sine(440.0, tau, 2.0);
        let d = decay_time_s(&x, SR, 2.0, 20.0).expect("falls 20 dB");
        let want = tau * 10f32.ln();
        assert!((d - want).abs() < 0.005, "decay {d} s, want {want}");
        // A note that barely decays does not get there while held.
        let slow = decaying_sine(440.0, 5.0, 2.0);
        assert_eq!(decay_time_s(&slow, SR, 2.0, 20.0), None);
    }

    #[test]
    fn attack_time_of_a_linear_ramp() {
        // 1 kHz (one period per envelope window) rising linearly over 4 ms, then slowly decaying.
        let ramp = 0.004;
        let x: Vec<f32> = (0..(0.5 * SR) as usize)
            .map(|i| {
                let t = i as f32 / SR;
                let g = if t < ramp { t / ramp } else { (-(t - ramp) / 5.0).exp() };
                g * (2.0 * std::f32::consts::PI * 1000.0 * t).sin()
            })
            .collect();
        let a = attack_time_s(&x, SR);
        // 10 %…90 % of a linear ramp: 0.8 of it.
        assert!((a - 0.8 * ramp).abs() < 0.0003, "attack {} ms", a * 1e3);
        // A sine switched on at full level: within the envelope window.
        let step = decaying_sine(1000.0, 1.0, 0.5);
        assert!(attack_time_s(&step, SR) <= 0.001, "{}", attack_time_s(&step, SR));
        // A later, higher crest (partials drifting into phase) does not lengthen the attack:
        // the same switched-on tone with a 3 dB swell 60 ms in.
        let crest: Vec<f32> = step
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let t = i as f32 / SR;
                v * (1.0 + 0.41 * (-((t - 0.06) / 0.002).powi(2)).exp())
            })
            .collect();
        assert!(attack_time_s(&crest, SR) <= 0.001, "{}", attack_time_s(&crest, SR));
    }

    #[test]
    fn pitch_error_of_a_detuned_decaying_sine() {
        for (key, cents) in [(36u8, 7.0f32), (60, -4.0), (96, 2.5)] {
            let f = midi_to_hz(key as f32) * 2f32.powf(cents / 1200.0);
            let x = decaying_sine(f, 0.5, 1.0);
            let e = pitch_error_cents(&x, SR, key, 0.1, 0.6).expect("a peak");
            assert!((e - cents).abs() < 0.2, "key {key}: {e} cents, want {cents}");
        }
    }

    #[test]
    fn log_spectral_distance_is_zero_to_itself_and_grows_with_difference() {
        let x = decaying_sine(261.6, 0.5, 1.0);
        assert_eq!(log_spectral_distance_db(&x, &x, &LSD_SIZES, LSD_FLOOR_DB), 0.0);
        // Level does not count.
        let quiet: Vec<f32> = x.iter().map(|v| 0.1 * v).collect();
        assert!(log_spectral_distance_db(&quiet, &x, &LSD_SIZES, LSD_FLOOR_DB) < 0.01);
        // An octave away is far; a little noise is near.
        let octave = decaying_sine(523.2, 0.5, 1.0);
        let far = log_spectral_distance_db(&octave, &x, &LSD_SIZES, LSD_FLOOR_DB);
        let mut seed = 1u32;
        let noisy: Vec<f32> = x
            .iter()
            .map(|v| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                v + 1e-4 * ((seed >> 8) as f32 / (1 << 24) as f32 - 0.5)
            })
            .collect();
        let near = log_spectral_distance_db(&noisy, &x, &LSD_SIZES, LSD_FLOOR_DB);
        assert!(far > 20.0 && near < far / 2.0, "octave {far} dB, noise {near} dB");
    }

    #[test]
    fn centroid_and_rms_of_known_signals() {
        let x: Vec<f32> = (0..SR as usize)
            .map(|i| {
                let t = i as f32 / SR;
                (2.0 * std::f32::consts::PI * 1000.0 * t).sin() + (2.0 * std::f32::consts::PI * 3000.0 * t).sin()
            })
            .collect();
        let c = spectral_centroid_hz(&x, SR, 0.1, 0.6);
        assert!((c - 2000.0).abs() < 20.0, "{c}");
        assert!((rms(&x) - 1.0).abs() < 1e-3);
    }

    #[test]
    fn burst_detector_flags_a_one_sample_click_and_not_a_clean_tone() {
        let mut x = decaying_sine(440.0, 0.5, 1.0);
        let level = rms(&x[..(0.5 * SR) as usize]);
        let (clean, _) = max_burst_db(&x, SR, 18000.0, 0.002, level);
        // (f32 FFT rounding sits near −90 dB.)
        assert!(clean < -80.0, "clean tone reads {clean} dB");
        // A click 26 dB below the note's RMS.
        x[(0.4 * SR) as usize] += 0.05 * level;
        let (clicked, at) = max_burst_db(&x, SR, 18000.0, 0.002, level);
        // Expected about 10·log10(0.05²/4/96) = −52 dB (less where a frame edge splits it).
        assert!(clicked > -60.0, "click reads {clicked} dB");
        assert!((at - 0.4).abs() < 0.003, "at {at} s");
    }

    #[test]
    fn onset_finds_a_delayed_note() {
        let mut x = vec![0.0f32; 4800];
        x.extend(decaying_sine(440.0, 0.5, 0.5));
        let o = onset_sample(&x, SR, 0.01);
        // Within the envelope's half window (0.5 ms) of the true onset.
        assert!((4800 - 24..=4800 + 24).contains(&o), "{o}");
    }
}
