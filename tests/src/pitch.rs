//! A small, transparent pitch estimator for judging rendered audio: average power spectrum of
//! the loud frames, then the dominant fundamental by peak picking with a harmonic check.
//!
//! The strongest spectral peak P is either the fundamental or one of its harmonics. For
//! k = 8, 7, …, 1 the candidate f0 = P / k is accepted when every multiple m·f0 (m = 1..k) has a
//! spectral peak within ±1.5 % (at least two bins) no more than 30 dB below P: the lowest
//! candidate whose whole harmonic series up to P is present wins. A piano A3 whose second partial
//! happens to be the loudest still reads as A3, and a missing 110 Hz keeps it from reading as A2.

use realfft::RealFftPlanner;

/// Average power spectrum.
#[derive(Debug, Clone)]
pub struct Spectrum {
    /// Power per bin, `n_fft / 2 + 1` bins.
    pub power: Vec<f64>,
    /// Width of one bin in Hz.
    pub bin_hz: f64,
    /// Frames that were loud enough to be averaged.
    pub frames: usize,
}

/// Hann-windowed power spectra of frames of `n_fft` samples (hop `n_fft / 2`), averaged over the
/// frames whose energy is within `floor_db` of the loudest frame.
pub fn average_spectrum(x: &[f32], sample_rate: u32, n_fft: usize, floor_db: f64) -> Spectrum {
    let mut planner = RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(n_fft);
    let window: Vec<f64> = (0..n_fft)
        .map(|i| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n_fft as f64).cos())
        .collect();
    let hop = n_fft / 2;
    let mut frames: Vec<(f64, Vec<f64>)> = Vec::new();
    let mut input = fft.make_input_vec();
    let mut output = fft.make_output_vec();
    let mut start = 0;
    while start + n_fft <= x.len().max(n_fft) {
        for (i, v) in input.iter_mut().enumerate() {
            *v = x.get(start + i).copied().unwrap_or(0.0) as f64 * window[i];
        }
        let energy: f64 = input.iter().map(|v| v * v).sum();
        if fft.process(&mut input, &mut output).is_ok() {
            frames.push((energy, output.iter().map(|c| c.norm_sqr()).collect()));
        }
        start += hop;
        if x.len() < n_fft {
            break;
        }
    }
    let loudest = frames.iter().map(|f| f.0).fold(0.0, f64::max);
    let gate = loudest * 10f64.powf(-floor_db / 10.0);
    let mut power = vec![0.0; n_fft / 2 + 1];
    let mut used = 0;
    for (e, p) in frames.iter() {
        if *e > 0.0 && *e >= gate {
            used += 1;
            for (a, b) in power.iter_mut().zip(p) {
                *a += b;
            }
        }
    }
    if used > 0 {
        for a in power.iter_mut() {
            *a /= used as f64;
        }
    }
    Spectrum {
        power,
        bin_hz: sample_rate as f64 / n_fft as f64,
        frames: used,
    }
}

/// A spectral peak: interpolated frequency and power.
#[derive(Debug, Clone, Copy)]
pub struct Peak {
    pub hz: f64,
    pub power: f64,
}

impl Spectrum {
    /// Local maxima between `lo_hz` and `hi_hz`, frequency refined by parabolic interpolation of
    /// the log power.
    pub fn peaks(&self, lo_hz: f64, hi_hz: f64) -> Vec<Peak> {
        let p = &self.power;
        let lo = ((lo_hz / self.bin_hz).floor() as usize).max(1);
        let hi = ((hi_hz / self.bin_hz).ceil() as usize).min(p.len().saturating_sub(2));
        let mut out = Vec::new();
        for i in lo..=hi {
            if p[i] > 0.0 && p[i] >= p[i - 1] && p[i] > p[i + 1] {
                let (a, b, c) = (
                    (p[i - 1] + 1e-30).ln(),
                    (p[i] + 1e-30).ln(),
                    (p[i + 1] + 1e-30).ln(),
                );
                let denom = a - 2.0 * b + c;
                let delta = if denom.abs() > 1e-12 {
                    (0.5 * (a - c) / denom).clamp(-0.5, 0.5)
                } else {
                    0.0
                };
                out.push(Peak {
                    hz: (i as f64 + delta) * self.bin_hz,
                    power: p[i],
                });
            }
        }
        out
    }
}

/// The estimate and the evidence behind it.
#[derive(Debug, Clone)]
pub struct PitchEstimate {
    /// Fundamental frequency, Hz.
    pub f0_hz: f64,
    /// `69 + 12·log2(f0 / 440)`.
    pub midi: f64,
    /// The strongest peak, Hz.
    pub strongest_hz: f64,
    /// Which harmonic of f0 the strongest peak is (1 = the fundamental itself).
    pub strongest_harmonic: usize,
    /// Level of harmonics 1..=6 relative to the strongest peak, dB (`None`: no peak there).
    pub harmonics_db: Vec<Option<f64>>,
}

/// Midi note number (fractional) of a frequency.
pub fn hz_to_midi(hz: f64) -> f64 {
    69.0 + 12.0 * (hz / 440.0).log2()
}

/// Dominant fundamental of `x` (see the module doc), or `None` for silence.
pub fn dominant_fundamental(x: &[f32], sample_rate: u32) -> Option<PitchEstimate> {
    // ~0.17 s frames: 5.9 Hz bins at 48 kHz, enough to separate semitones above ~60 Hz.
    let n_fft = ((sample_rate as f64 * 0.17) as usize).next_power_of_two();
    let spec = average_spectrum(x, sample_rate, n_fft, 30.0);
    if spec.frames == 0 {
        return None;
    }
    let peaks = spec.peaks(40.0, 5000.0);
    let strongest = *peaks.iter().max_by(|a, b| a.power.total_cmp(&b.power))?;
    let threshold = strongest.power * 1e-3; // −30 dB
    let find = |hz: f64| -> Option<Peak> {
        let tol = (hz * 0.015).max(2.0 * spec.bin_hz);
        peaks
            .iter()
            .filter(|p| (p.hz - hz).abs() <= tol)
            .max_by(|a, b| a.power.total_cmp(&b.power))
            .copied()
    };
    for k in (1..=8usize).rev() {
        let f0 = strongest.hz / k as f64;
        if f0 < 45.0 {
            continue;
        }
        let series_ok = (1..=k).all(|m| find(m as f64 * f0).is_some_and(|p| p.power >= threshold));
        if !series_ok {
            continue;
        }
        let fundamental = find(f0).map_or(f0, |p| p.hz);
        let harmonics_db = (1..=6)
            .map(|m| {
                find(m as f64 * fundamental).map(|p| 10.0 * (p.power / strongest.power).log10())
            })
            .collect();
        return Some(PitchEstimate {
            f0_hz: fundamental,
            midi: hz_to_midi(fundamental),
            strongest_hz: strongest.hz,
            strongest_harmonic: k,
            harmonics_db,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(f0: f64, amps: &[f64], sr: u32, secs: f64) -> Vec<f32> {
        let n = (sr as f64 * secs) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / sr as f64;
                amps.iter()
                    .enumerate()
                    .map(|(h, a)| a * (std::f64::consts::TAU * f0 * (h + 1) as f64 * t).sin())
                    .sum::<f64>() as f32
            })
            .collect()
    }

    #[test]
    fn finds_fundamental_even_when_a_harmonic_is_loudest() {
        let x = tone(220.0, &[0.3, 1.0, 0.5, 0.2], 48000, 1.0);
        let p = dominant_fundamental(&x, 48000).unwrap();
        assert!((p.midi - 57.0).abs() < 0.1, "{p:?}");
        assert_eq!(p.strongest_harmonic, 2);
    }

    #[test]
    fn does_not_drop_an_octave_without_a_subharmonic() {
        let x = tone(220.0, &[1.0, 0.6, 0.4], 44100, 1.0);
        let p = dominant_fundamental(&x, 44100).unwrap();
        assert!((p.f0_hz - 220.0).abs() < 2.0, "{p:?}");
    }

    #[test]
    fn silence_has_no_pitch() {
        assert!(dominant_fundamental(&vec![0.0; 48000], 48000).is_none());
    }
}
