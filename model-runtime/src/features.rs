//! Sample-rate-independent log-frequency features: the matrix that maps the analysis FFT's
//! linear bins onto the fixed 20-cent feature grid of [`crate::v0`].

use crate::v0::{feature_hz, FEAT_PER_OCTAVE, N_FEATURES};

/// Row-major `[analysis_bins, N_FEATURES]` interpolation matrix for an FFT of `fft_len` at
/// `sample_rate`. Each feature is a triangular average of the linear bins around its centre,
/// as wide as the larger of the bin spacing and the feature spacing; features above Nyquist are
/// zero. Columns sum to 1 (or 0).
pub fn log_frequency_matrix(sample_rate: f32, fft_len: usize, analysis_bins: usize) -> Vec<f32> {
    let bin_hz = sample_rate / fft_len as f32;
    let mut m = vec![0.0f32; analysis_bins * N_FEATURES];
    let ratio = (1.0 / FEAT_PER_OCTAVE as f32).exp2() - 1.0;
    for f in 0..N_FEATURES {
        let fc = feature_hz(f);
        if fc >= 0.5 * sample_rate - bin_hz {
            continue;
        }
        let width = bin_hz.max(fc * ratio);
        let lo = ((fc - width) / bin_hz).floor().max(0.0) as usize;
        let hi = (((fc + width) / bin_hz).ceil() as usize).min(analysis_bins - 1);
        let mut sum = 0.0;
        for b in lo..=hi {
            let w = (1.0 - ((b as f32 * bin_hz) - fc).abs() / width).max(0.0);
            m[b * N_FEATURES + f] = w;
            sum += w;
        }
        if sum > 0.0 {
            for b in lo..=hi {
                m[b * N_FEATURES + f] /= sum;
            }
        }
    }
    m
}

/// A row-major `[n_in, n_out]` matrix kept as its nonzero entries per input row, for
/// vector × matrix products on the host where most entries are zero (the log-frequency
/// projection reads two or three bins per feature; the v0 harmonic template 8 % of its cells).
pub struct SparseRows {
    rows: Vec<Vec<(u32, f32)>>,
    n_out: usize,
}

impl SparseRows {
    pub fn from_dense(m: &[f32], n_in: usize, n_out: usize) -> SparseRows {
        assert_eq!(m.len(), n_in * n_out);
        let rows = (0..n_in)
            .map(|i| (0..n_out).filter(|&j| m[i * n_out + j] != 0.0).map(|j| (j as u32, m[i * n_out + j])).collect())
            .collect();
        SparseRows { rows, n_out }
    }

    /// `out = x · M` (`out` has `n_out` entries; `x` at most `n_in`, missing ones count as 0).
    pub fn apply(&self, x: &[f32], out: &mut [f32]) {
        let out = &mut out[..self.n_out];
        out.iter_mut().for_each(|v| *v = 0.0);
        for (&xi, row) in x.iter().zip(&self.rows) {
            if xi != 0.0 {
                for &(j, w) in row {
                    out[j as usize] += xi * w;
                }
            }
        }
    }
}

/// Fraction of the analysis window before its peak. The window rises slowly over the past
/// and falls quickly at the newest end, so the newest samples (a note that just started)
/// weigh far more than under a symmetric Hann window, where they weigh almost nothing.
pub const WINDOW_PEAK: f32 = 0.85;

/// The analysis window of `len` samples (oldest first): a rising half-Hann over the first
/// [`WINDOW_PEAK`] of it, a falling half-Hann over the rest.
pub fn analysis_window(len: usize) -> Vec<f32> {
    let m = ((len as f32 * WINDOW_PEAK) as usize).clamp(1, len.saturating_sub(1).max(1));
    (0..len)
        .map(|n| {
            if n < m {
                0.5 - 0.5 * (std::f32::consts::PI * n as f32 / m as f32).cos()
            } else {
                0.5 + 0.5 * (std::f32::consts::PI * (n - m) as f32 / (len - m) as f32).cos()
            }
        })
        .collect()
}

/// The analysis the engine's audio side runs every hop: window the newest `win_len` samples,
/// zero-pad to `fft_len`, forward FFT, magnitudes of the first `analysis_bins` bins scaled so a
/// full-scale sine reads 1. Plans and buffers are made in [`Analyzer::new`]; [`Analyzer::analyse`]
/// never allocates. Offline tools (`bench::analysis_frames`) use the same code, so their frames
/// are the engine's.
pub struct Analyzer {
    /// Analysis window, `win_len`.
    window: Vec<f32>,
    /// 2 / Σwindow: magnitude scale.
    mag_scale: f32,
    fft: std::sync::Arc<dyn realfft::RealToComplex<f32>>,
    /// FFT input, `fft_len` (windowed samples, zero padded).
    fft_in: Vec<f32>,
    /// FFT output, `fft_len / 2 + 1` bins.
    fft_out: Vec<realfft::num_complex::Complex32>,
    scratch: Vec<realfft::num_complex::Complex32>,
    /// Magnitudes, `analysis_bins`.
    mags: Vec<f32>,
}

impl Analyzer {
    pub fn new(t: &crate::timing::Timing) -> Analyzer {
        let fft = realfft::RealFftPlanner::<f32>::new().plan_fft_forward(t.fft_len);
        let window = analysis_window(t.win_len);
        let mag_scale = 2.0 / window.iter().sum::<f32>();
        Analyzer {
            window,
            mag_scale,
            fft_in: fft.make_input_vec(),
            fft_out: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
            mags: vec![0.0; t.analysis_bins],
        }
    }

    /// Magnitudes of `newest` (the last `win_len` input samples, oldest first).
    pub fn analyse(&mut self, newest: &[f32]) -> &[f32] {
        let n = self.window.len();
        debug_assert_eq!(newest.len(), n);
        for ((x, s), w) in self.fft_in.iter_mut().zip(newest).zip(&self.window) {
            *x = s * w;
        }
        self.fft_in[n..].iter_mut().for_each(|x| *x = 0.0);
        if self.fft.process_with_scratch(&mut self.fft_in, &mut self.fft_out, &mut self.scratch).is_ok() {
            for (m, z) in self.mags.iter_mut().zip(&self.fft_out) {
                *m = z.norm() * self.mag_scale;
            }
        } else {
            self.mags.iter_mut().for_each(|m| *m = 0.0);
        }
        &self.mags
    }
}
