//! Listener v0: a harmonic-summation pitch estimator made of Candle tensor ops.
//!
//! Per frame: linear magnitudes → log-frequency features (matrix product with the
//! rate-specific interpolation matrix) → level-normalised log compression → harmonic salience
//! per 20-cent pitch candidate (matrix product with `listener.template`). The host side then
//! takes the best candidate (parabolic refinement), its salience (periodicity) and the positive
//! spectral flux against the previous frame (onsets). `step`/`reset` stream frame by frame;
//! `forward` runs a whole batch of frames at once (same numbers, used for offline batching).

use candle_core::{Device, Tensor, D};

use crate::model::Model;
use crate::timing::Timing;
use crate::v0::{candidate_midi, CAND_PER_SEMITONE, N_CANDIDATES, N_FEATURES};

/// Compression gain of the log features: `ln(1 + G·m/max) / ln(1 + G)`.
const LOG_GAIN: f64 = 100.0;

/// What the listener heard in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListenerFrame {
    /// Best pitch candidate, MIDI (fractional; refined between candidates).
    pub pitch_midi: f32,
    /// How sure the listener is of that pitch, 0…1 (the trained listener: the share of its pitch
    /// distribution within a semitone of it); 1 for listeners that do not say.
    pub confidence: f32,
    /// Harmonic salience of that candidate, ≈0 (noise) … 1 (clean harmonic tone).
    pub periodicity: f32,
    /// Mean positive change of the log features since the previous frame, 0 … 1.
    pub flux: f32,
    /// The share of the pitch distribution within a semitone of the octave below that pitch,
    /// 0…1 (the trained listener; 0 for listeners that do not say): high when the listener may
    /// be hearing a low voice's second harmonic as its pitch.
    pub octave_below: f32,
}

/// The v0 listener on one device.
pub struct ListenerV0 {
    /// Device the tensors live on.
    device: Device,
    /// `[analysis_bins, N_FEATURES]` linear → log-frequency interpolation.
    interp: Tensor,
    /// `[N_FEATURES, N_CANDIDATES]` harmonic template.
    template: Tensor,
    /// Log features of the previous frame `[1, N_FEATURES]` (streaming state for the flux).
    prev: Option<Tensor>,
    /// The same on the host, for the per-frame `step` (flux computed on the host).
    prev_host: Vec<f32>,
    /// Scratch: this frame's log features on the host.
    feat_host: Vec<f32>,
    /// Number of analysis bins expected per frame.
    bins: usize,
    /// On the CPU, the per-frame path runs on the host: the projection and the template as
    /// sparse products (a feature reads 2–3 bins; 8 % of the template's cells are nonzero),
    /// no tensor per frame. On another device the tensors run.
    host: Option<Box<V0Host>>,
}

/// The v0 listener's two products as sparse matrices, for the per-frame step on the host.
struct V0Host {
    proj: crate::features::SparseRows,
    template: crate::features::SparseRows,
}

impl ListenerV0 {
    pub fn new(model: &Model, timing: &Timing, device: &Device) -> candle_core::Result<Self> {
        let interp = crate::features::log_frequency_matrix(timing.sample_rate, timing.fft_len, timing.analysis_bins);
        let t = model.tensor("listener.template");
        // The log compression's 1/ln(1+G) scale is folded into the template.
        let scale = (1.0 / (1.0 + LOG_GAIN).ln()) as f32;
        let template: Vec<f32> = t.data.iter().map(|v| v * scale).collect();
        let host = device.is_cpu().then(|| {
            Box::new(V0Host {
                proj: crate::features::SparseRows::from_dense(&interp, timing.analysis_bins, N_FEATURES),
                template: crate::features::SparseRows::from_dense(&template, N_FEATURES, N_CANDIDATES),
            })
        });
        let interp = Tensor::from_vec(interp, (timing.analysis_bins, N_FEATURES), device)?;
        let template = Tensor::from_vec(template, (N_FEATURES, N_CANDIDATES), device)?;
        Ok(ListenerV0 {
            device: device.clone(),
            interp,
            template,
            prev: None,
            prev_host: Vec::with_capacity(N_FEATURES),
            feat_host: Vec::with_capacity(N_FEATURES),
            bins: timing.analysis_bins,
            host,
        })
    }

    /// Forget the previous frame.
    pub fn reset(&mut self) {
        self.prev = None;
        self.prev_host.clear();
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Log features `ln(1 + G·f/max f)` (without the 1/ln(1+G) scale, which the template
    /// carries) and salience for `[T, bins]` magnitudes.
    fn features_and_salience(&self, mags: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let feats = mags.matmul(&self.interp)?;
        let peak = (feats.max_keepdim(D::Minus1)? + 1e-9)?;
        let logf = (feats.broadcast_div(&peak)?.affine(LOG_GAIN, 1.0))?.log()?;
        let sal = logf.matmul(&self.template)?;
        Ok((logf, sal))
    }

    /// The per-frame path with fewer tensor ops: the features' peak is taken on the host (from
    /// the first product, read back into `feat_host`), so the device runs two products, one
    /// affine map and one log. Same numbers as [`Self::features_and_salience`] up to rounding.
    fn step_tensors(&mut self, mags: &[f32]) -> candle_core::Result<Tensor> {
        let x = Tensor::from_slice(&mags[..self.bins], (1, self.bins), &self.device)?;
        let feats = x.matmul(&self.interp)?;
        self.feat_host.clear();
        self.feat_host.extend(feats.squeeze(0)?.to_vec1::<f32>()?);
        let peak = self.feat_host.iter().fold(0.0f32, |m, &v| m.max(v)) + 1e-9;
        let logf = feats.affine(LOG_GAIN / peak as f64, 1.0)?.log()?;
        for v in self.feat_host.iter_mut() {
            *v = (1.0 + LOG_GAIN as f32 * *v / peak).ln();
        }
        self.prev = Some(logf.clone());
        logf.matmul(&self.template)
    }

    /// One frame of `bins` magnitudes; `salience` receives the `N_CANDIDATES` saliences.
    pub fn step(&mut self, mags: &[f32], salience: &mut Vec<f32>) -> candle_core::Result<ListenerFrame> {
        let sal = match self.host.as_deref() {
            Some(h) => {
                // The same numbers as `step_tensors` up to float rounding, on the host.
                self.feat_host.resize(N_FEATURES, 0.0);
                h.proj.apply(&mags[..self.bins], &mut self.feat_host);
                let peak = self.feat_host.iter().fold(0.0f32, |m, &v| m.max(v)) + 1e-9;
                for v in self.feat_host.iter_mut() {
                    *v = (1.0 + LOG_GAIN as f32 * *v / peak).ln();
                }
                salience.resize(N_CANDIDATES, 0.0);
                h.template.apply(&self.feat_host, salience);
                // A batch after these frames continues from the host copy (see `forward`).
                self.prev = None;
                None
            }
            None => Some(self.step_tensors(mags)?),
        };
        // Flux on the host, from the host copy of the log features.
        let scale = (1.0 / (1.0 + LOG_GAIN).ln()) as f32;
        let flux = if self.prev_host.len() == self.feat_host.len() {
            self.feat_host.iter().zip(&self.prev_host).map(|(a, b)| (a - b).max(0.0)).sum::<f32>() * scale
                / N_FEATURES as f32
        } else {
            0.0
        };
        std::mem::swap(&mut self.prev_host, &mut self.feat_host);
        if let Some(sal) = sal {
            salience.clear();
            salience.extend(sal.squeeze(0)?.to_vec1::<f32>()?);
        }
        Ok(decide(salience, flux))
    }

    /// A batch of consecutive frames `[T, bins]` (row-major `mags`), continuing the stream.
    pub fn forward(&mut self, mags: &[f32], frames: usize) -> candle_core::Result<Vec<ListenerFrame>> {
        if frames == 0 {
            return Ok(Vec::new());
        }
        let x = Tensor::from_slice(&mags[..frames * self.bins], (frames, self.bins), &self.device)?;
        let (logf, sal) = self.features_and_salience(&x)?;
        let prev = match &self.prev {
            Some(p) => p.clone(),
            // After host steps: their last log features.
            None if self.prev_host.len() == N_FEATURES => Tensor::from_slice(&self.prev_host, (1, N_FEATURES), &self.device)?,
            None => logf.narrow(0, 0, 1)?,
        };
        let shifted = Tensor::cat(&[&prev, &logf.narrow(0, 0, frames - 1)?], 0)?;
        let scale = 1.0 / (1.0 + LOG_GAIN).ln();
        let flux = ((&logf - &shifted)?.relu()?.mean(D::Minus1)? * scale)?.to_vec1::<f32>()?;
        let last = logf.narrow(0, frames - 1, 1)?;
        self.prev_host = last.squeeze(0)?.to_vec1::<f32>()?;
        self.prev = Some(last);
        // The best candidate and its two neighbours are picked on the device, so only 4 numbers
        // per frame come back instead of all the saliences (the read-back dominated on a GPU).
        let best = sal.argmax_keepdim(D::Minus1)?; // [T, 1] u32
        let pad = Tensor::zeros((frames, 1), sal.dtype(), &self.device)?;
        let padded = Tensor::cat(&[&pad, &sal, &pad], 1)?; // column c + 1 holds candidate c
        let offsets = Tensor::new(&[[0u32, 1, 2]], &self.device)?;
        let idx = best.broadcast_add(&offsets)?.contiguous()?; // candidates best-1, best, best+1
        let around = padded.gather(&idx, D::Minus1)?.to_vec2::<f32>()?;
        let best = best.squeeze(1)?.to_vec1::<u32>()?;
        let out = best
            .iter()
            .zip(&around)
            .zip(&flux)
            .map(|((&b, v), &f)| decide_around(b as usize, [v[0], v[1], v[2]], f))
            .collect();
        Ok(out)
    }
}

/// The frame for candidate `best`, given the saliences at `best - 1, best, best + 1` (the outer
/// two are ignored at the ends of the candidate range). Both the streaming and the batched
/// path end here.
fn decide_around(best: usize, v: [f32; 3], flux: f32) -> ListenerFrame {
    let flux = if flux.is_finite() { flux } else { 0.0 };
    if v[1] <= 0.0 {
        // Nothing harmonic (silence): one canonical answer, whatever the ties among the zeros.
        return ListenerFrame { pitch_midi: candidate_midi(0), confidence: 1.0, periodicity: 0.0, flux, octave_below: 0.0 };
    }
    let mut offset = 0.0;
    if best > 0 && best + 1 < N_CANDIDATES {
        let den = v[0] - 2.0 * v[1] + v[2];
        if den < 0.0 {
            offset = (0.5 * (v[0] - v[2]) / den).clamp(-0.5, 0.5);
        }
    }
    ListenerFrame { pitch_midi: candidate_midi(best) + offset / CAND_PER_SEMITONE as f32, confidence: 1.0, periodicity: v[1], flux, octave_below: 0.0 }
}

/// Index of the largest value, the first of equal maxima (0 for an empty slice).
pub fn first_max(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// Best candidate (the first of equal maxima) with parabolic refinement.
fn decide(sal: &[f32], flux: f32) -> ListenerFrame {
    let best = first_max(sal);
    let at = |i: Option<usize>| i.and_then(|i| sal.get(i)).copied().unwrap_or(0.0);
    decide_around(best, [at(best.checked_sub(1)), sal[best], at(Some(best + 1))], flux)
}
