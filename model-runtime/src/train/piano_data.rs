//! Piano training data from real recordings: isolated notes of a SoundFont piano (FluidR3 GM's
//! preset 0, a sampled grand, from the Debian package `fluid-soundfont-gm`) rendered with
//! `rustysynth`, and analysed into what the pianist network produces: per key the partial
//! frequencies (fundamental and inharmonicity), per frame the amplitude of every partial and
//! the level of the noise between them (hammer, damper, the recordings' own noise).
//!
//! The analysis works on the sample-playback render at 44.1 kHz, reverb and chorus off:
//! - **Partial frequencies**: one long window well inside the held note; peaks are found one
//!   partial at a time from the fundamental up, each predicted by the stiff-string law
//!   `fₙ = n·f₁·√((1 + B·n²)/(1 + B))` fitted to the peaks found so far (least squares on
//!   `(fₙ/n)² = a + a·B·n²`). The fit, not the raw peaks, is the target.
//! - **Envelopes**: frames every [`FINE_HOP_S`] for the first half second after the strike and
//!   after the release, [`COARSE_HOP_S`] elsewhere; a Hann window of [`analysis_window`]
//!   samples (four periods of the fundamental, 1024 at least) so neighbouring partials
//!   separate; each partial's amplitude is the interpolated spectral peak at its frequency.
//! - **Noise**: the spectrum with every partial's main lobe masked, averaged in
//!   [`NOISE_BANDS`] log-spaced bands, as a one-sided power density (dB re 1/Hz).

use std::path::Path;
use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::RealFftPlanner;
use rustysynth::{SoundFont, Synthesizer, SynthesizerSettings};

use crate::pianist_net::{band_edges_hz, time_floor_s, FIRST_KEY, LAST_KEY, NOISE_BANDS, PARTIALS};
use crate::v0::midi_to_hz;

/// Sample rate of the renders, Hz.
pub const SR: u32 = 44100;
/// Where Debian's `fluid-soundfont-gm` installs FluidR3 (training source).
pub const FLUID_R3: &str = "/usr/share/sounds/sf2/FluidR3_GM.sf2";
/// Held-out piano for evaluation only (Debian `timgm6mb-soundfont`).
pub const TIMGM6MB: &str = "/usr/share/sounds/sf2/TimGM6mb.sf2";
/// MIDI velocities rendered for training (8 layers).
pub const TRAIN_VELOCITIES: [u8; 8] = [16, 32, 48, 64, 80, 96, 112, 127];
/// Velocities rendered for validation only (between the training layers).
pub const VAL_VELOCITIES: [u8; 2] = [40, 104];
/// Frame spacing near the strike and the release, seconds.
pub const FINE_HOP_S: f32 = 0.005;
/// Frame spacing elsewhere, seconds.
pub const COARSE_HOP_S: f32 = 0.02;
/// Seconds after the strike and after the release that use [`FINE_HOP_S`].
pub const FINE_SPAN_S: f32 = 0.5;
/// Seconds recorded after the release.
pub const RELEASE_S: f32 = 1.0;
/// Amplitude floor, log10 units (−120 dB).
pub const LOG_FLOOR: f32 = -6.0;
/// Noise power density floor, log10 (re 1/Hz): white noise at this density is −146 dBFS
/// at 44.1 kHz, under the quietest recorded noise (a soft treble note's high bands). A higher
/// floor (it was −16, −116 dBFS) became the target of those bands and the network played them
/// louder, relative to a soft note, than the recordings: soft treble notes came out brighter
/// than loud ones.
pub const NOISE_FLOOR_LOG10: f32 = -24.0;

/// Seconds a key is held before its release: long enough for the decay (low strings ring
/// longer): 12 s at A0 down to 3 s at C8.
pub fn hold_seconds(key: u8) -> f32 {
    let x = (key.clamp(FIRST_KEY, LAST_KEY) - FIRST_KEY) as f32 / (LAST_KEY - FIRST_KEY) as f32;
    12.0 - 9.0 * x
}

/// Analysis window for a key, samples at [`SR`]: four periods of the fundamental, 1024 at least.
pub fn analysis_window(key: u8) -> usize {
    let period = SR as f32 / midi_to_hz(key as f32);
    ((4.0 * period).ceil() as usize).max(1024)
}

/// A SoundFont loaded for rendering, with the standard's velocity-to-cutoff modulator.
///
/// The SoundFont standard's default modulator "MIDI note-on velocity to filter cutoff"
/// (SF2.04 §8.4.2: source velocity, negative unipolar linear, amount −2400 cents) lowers the
/// cutoff of every voice's low-pass by `2400·(1 − v/128)` cents: two octaves at velocity 0,
/// none at 128. SoundFont players apply it; `rustysynth` applies no modulators. It is what
/// makes a soft note of a SoundFont piano darker than a loud one: FluidR3's grand has 9
/// velocity layers that differ only in release time, TimGM6mb's piano has one, so as
/// `rustysynth` plays them a soft note is a quieter copy of a loud one.
///
/// A modulator adds its amount to the generator it targets, so it is applied here exactly by
/// adding the shift to the piano instruments' own `initialFilterFc` generators (in a copy of the
/// file, one per velocity, loaded when first needed): `rustysynth` then plays the voice through
/// its own filter at the lowered cutoff, modulation envelope and all.
pub struct Font {
    bytes: Vec<u8>,
    plain: Arc<SoundFont>,
    /// Byte offsets (in `bytes`) of the amounts of every `initialFilterFc` generator of the
    /// instruments bank 0 program 0 plays.
    cutoff_amounts: Vec<usize>,
    by_velocity: std::sync::Mutex<std::collections::HashMap<u8, Arc<SoundFont>>>,
}

/// SoundFont generator numbers used here (SF2.04 §8.1.2).
const GEN_INITIAL_FILTER_FC: u16 = 8;
const GEN_SAMPLE_ID: u16 = 53;

/// Cutoff shift of the velocity-to-cutoff modulator at `velocity`, cents (see [`Font`]).
pub fn velocity_cutoff_shift_cents(velocity: u8) -> i32 {
    (-2400.0 * (1.0 - velocity.min(127) as f64 / 128.0)).round() as i32
}

/// The sub-chunks of a SoundFont's `pdta` list: id → (offset of the data, length). A RIFF walk
/// written here (a few lines; the `riff` crate would do it too).
fn pdta_chunks(bytes: &[u8]) -> Result<std::collections::HashMap<[u8; 4], (usize, usize)>, String> {
    let u32_at = |at: usize| -> Result<usize, String> {
        bytes.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize).ok_or_else(|| "truncated RIFF chunk".to_string())
    };
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"sfbk") {
        return Err("not a SoundFont (RIFF sfbk)".into());
    }
    let end = (8 + u32_at(4)?).min(bytes.len());
    let mut at = 12;
    while at + 12 <= end {
        let len = u32_at(at + 4)?;
        if &bytes[at..at + 4] == b"LIST" && &bytes[at + 8..at + 12] == b"pdta" {
            let mut out = std::collections::HashMap::new();
            let (mut sub, sub_end) = (at + 12, (at + 8 + len).min(end));
            while sub + 8 <= sub_end {
                let l = u32_at(sub + 4)?;
                let id: [u8; 4] = bytes[sub..sub + 4].try_into().expect("4 bytes");
                out.insert(id, (sub + 8, l.min(sub_end.saturating_sub(sub + 8))));
                sub += 8 + l + (l & 1);
            }
            return Ok(out);
        }
        at += 8 + len + (len & 1);
    }
    Err("no pdta list".into())
}

/// Offsets of the `initialFilterFc` amounts of `instruments` (indices into the `inst` chunk),
/// checking that every sample zone has one (its own or its instrument's global zone's).
fn cutoff_generators(bytes: &[u8], instruments: &[usize]) -> Result<Vec<usize>, String> {
    let chunks = pdta_chunks(bytes)?;
    let chunk = |id: &[u8; 4]| chunks.get(id).copied().ok_or_else(|| format!("no {} chunk", String::from_utf8_lossy(id)));
    let ((inst, inst_len), (ibag, ibag_len), (igen, igen_len)) = (chunk(b"inst")?, chunk(b"ibag")?, chunk(b"igen")?);
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let bag_of = |i: usize| -> Result<usize, String> {
        if (i + 2) * 22 > inst_len {
            return Err(format!("instrument {i} out of range"));
        }
        Ok(u16_at(inst + i * 22 + 20) as usize)
    };
    let gen_of = |b: usize| -> Result<usize, String> {
        if (b + 2) * 4 > ibag_len {
            return Err(format!("instrument bag {b} out of range"));
        }
        Ok(u16_at(ibag + b * 4) as usize)
    };
    let mut out = Vec::new();
    for &i in instruments {
        let mut global_has = false;
        for (n, b) in (bag_of(i)?..bag_of(i + 1)?).enumerate() {
            let (mut has, mut sample) = (None, false);
            for g in gen_of(b)?..gen_of(b + 1)? {
                if (g + 1) * 4 > igen_len {
                    return Err(format!("generator {g} out of range"));
                }
                match u16_at(igen + g * 4) {
                    GEN_INITIAL_FILTER_FC => has = Some(igen + g * 4 + 2),
                    GEN_SAMPLE_ID => sample = true,
                    _ => {}
                }
            }
            if let Some(at) = has {
                out.push(at);
            }
            if !sample && n == 0 {
                global_has = has.is_some();
            } else if sample && has.is_none() && !global_has {
                return Err(format!("instrument {i}: a zone plays at the default cutoff, which this cannot modulate"));
            }
        }
    }
    Ok(out)
}

impl Font {
    pub fn open(path: &Path) -> Result<Font, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let plain = SoundFont::new(&mut std::io::Cursor::new(&bytes)).map_err(|e| format!("{}: not a readable SoundFont: {e:?}", path.display()))?;
        let preset = plain
            .get_presets()
            .iter()
            .find(|p| p.get_bank_number() == 0 && p.get_patch_number() == 0)
            .ok_or_else(|| format!("{}: no bank 0 program 0", path.display()))?;
        let mut instruments: Vec<usize> = preset.get_regions().iter().map(|r| r.get_instrument_id()).collect();
        instruments.sort_unstable();
        instruments.dedup();
        let cutoff_amounts = cutoff_generators(&bytes, &instruments).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Font { bytes, plain: Arc::new(plain), cutoff_amounts, by_velocity: Default::default() })
    }

    /// The SoundFont as a note at `velocity` plays it: the piano's cutoffs lowered by
    /// [`velocity_cutoff_shift_cents`] (the file as it is at a shift of 0).
    pub fn at_velocity(&self, velocity: u8) -> Arc<SoundFont> {
        let shift = velocity_cutoff_shift_cents(velocity);
        if shift == 0 {
            return self.plain.clone();
        }
        let mut cache = self.by_velocity.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(velocity.min(127))
            .or_insert_with(|| {
                let mut bytes = self.bytes.clone();
                for &at in &self.cutoff_amounts {
                    let cents = i16::from_le_bytes([bytes[at], bytes[at + 1]]) as i32;
                    // The standard's range of initialFilterFc: 1500…13500 cents.
                    let shifted = (cents + shift).clamp(1500, 13500) as i16;
                    bytes[at..at + 2].copy_from_slice(&shifted.to_le_bytes());
                }
                Arc::new(SoundFont::new(&mut std::io::Cursor::new(&bytes)).expect("the same file with other cutoffs"))
            })
            .clone()
    }

    /// One isolated note, mono: struck at sample 0, released after `hold_s`, `tail_s` more;
    /// played with the velocity-to-cutoff modulator (see [`Font`]).
    pub fn render_note(&self, key: u8, velocity: u8, hold_s: f32, tail_s: f32, sr: u32) -> Vec<f32> {
        Self::render_on(&self.at_velocity(velocity), key, velocity, hold_s, tail_s, sr)
    }

    /// [`Font::render_note`] on a given copy of the file: a synthesizer at `sr` with reverb and
    /// chorus off, channel 0 on program 0 (grand piano).
    fn render_on(font: &Arc<SoundFont>, key: u8, velocity: u8, hold_s: f32, tail_s: f32, sr: u32) -> Vec<f32> {
        let mut settings = SynthesizerSettings::new(sr as i32);
        settings.enable_reverb_and_chorus = false;
        let mut synth = Synthesizer::new(font, &settings).expect("valid synthesizer settings");
        let hold = (hold_s * sr as f32).round() as usize;
        let tail = (tail_s * sr as f32).round() as usize;
        let mut out = Vec::with_capacity(hold + tail);
        synth.note_on(0, key as i32, velocity as i32);
        render_into(&mut synth, hold, &mut out);
        synth.note_off(0, key as i32);
        render_into(&mut synth, tail, &mut out);
        out
    }
}

/// Render `n` samples of `synth` (mono mix) onto `out`.
pub fn render_into(synth: &mut Synthesizer, n: usize, out: &mut Vec<f32>) {
    const BLOCK: usize = 1024;
    let mut left = [0.0f32; BLOCK];
    let mut right = [0.0f32; BLOCK];
    let mut left_n = n;
    while left_n > 0 {
        let m = left_n.min(BLOCK);
        synth.render(&mut left[..m], &mut right[..m]);
        out.extend(left[..m].iter().zip(&right[..m]).map(|(l, r)| 0.5 * (l + r)));
        left_n -= m;
    }
}

/// One analysed frame of a note.
#[derive(Debug, Clone)]
pub struct PianoFrame {
    /// Seconds since the strike (frame centre).
    pub t: f32,
    /// Seconds since the release (frame centre), negative while held.
    pub r: f32,
    /// Per-partial amplitude, log10 (≥ [`LOG_FLOOR`]); [`LOG_FLOOR`] above the band.
    pub amp: [f32; PARTIALS],
    /// Noise power density per band, log10 (re 1/Hz).
    pub noise: [f32; NOISE_BANDS],
}

/// One analysed note.
#[derive(Debug, Clone)]
pub struct PianoNote {
    pub key: u8,
    pub velocity: u8,
    /// Measured fundamental, Hz.
    pub f1_hz: f32,
    /// Fitted inharmonicity coefficient.
    pub b: f32,
    /// Partials the frequency fit found (of [`PARTIALS`]).
    pub partials_found: usize,
    /// Per-partial deviation from `n·f₁`, cents (the fit).
    pub cents: [f32; PARTIALS],
    /// How many partials lie below the analysis band's top.
    pub partials_in_band: usize,
    pub frames: Vec<PianoFrame>,
}

impl PianoNote {
    /// Tuning of the recording's fundamental against equal temperament, cents.
    pub fn tuning_cents(&self) -> f32 {
        1200.0 * (self.f1_hz / midi_to_hz(self.key as f32)).log2()
    }
}

/// Frequency of partial `n` (1-based) under the stiff-string law with fundamental `f1`.
pub fn partial_hz(f1: f32, b: f32, n: usize) -> f32 {
    let n = n as f32;
    n * f1 * ((1.0 + b * n * n) / (1.0 + b)).sqrt()
}

/// Highest partial frequency analysed and synthesized, Hz.
pub const TOP_HZ: f32 = 16000.0;

/// Magnitude spectrum of `x[start..start+len]` under a Hann window, zero padded to `nfft`.
struct Spectrum {
    nfft: usize,
    len: usize,
    window: Vec<f32>,
    /// Σw, for amplitude scaling.
    wsum: f32,
    /// Σw², for power density.
    w2sum: f32,
    fft: Arc<dyn realfft::RealToComplex<f32>>,
    buf: Vec<f32>,
    out: Vec<Complex32>,
    /// |X|² per bin.
    pub power: Vec<f32>,
}

impl Spectrum {
    fn new(planner: &mut RealFftPlanner<f32>, len: usize, nfft: usize) -> Spectrum {
        let window: Vec<f32> = (0..len).map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * (i as f32 + 0.5) / len as f32).cos()).collect();
        let wsum = window.iter().sum();
        let w2sum = window.iter().map(|w| w * w).sum();
        let fft = planner.plan_fft_forward(nfft);
        let out = fft.make_output_vec();
        Spectrum { nfft, len, window, wsum, w2sum, fft, buf: vec![0.0; nfft], out, power: vec![0.0; nfft / 2 + 1] }
    }

    /// Analyse the window centred at sample `centre` (zeros outside the signal).
    fn analyse(&mut self, x: &[f32], centre: isize) {
        let start = centre - (self.len / 2) as isize;
        self.buf.iter_mut().for_each(|v| *v = 0.0);
        for i in 0..self.len {
            let j = start + i as isize;
            if j >= 0 && (j as usize) < x.len() {
                self.buf[i] = x[j as usize] * self.window[i];
            }
        }
        self.fft.process(&mut self.buf, &mut self.out).expect("fft sizes");
        for (p, z) in self.power.iter_mut().zip(&self.out) {
            *p = z.norm_sqr();
        }
    }

    fn bin_hz(&self) -> f32 {
        SR as f32 / self.nfft as f32
    }

    /// Peak near `hz` (± `search_bins`): (frequency Hz, amplitude of the sinusoid).
    fn peak(&self, hz: f32, search_bins: f32) -> (f32, f32) {
        let c = hz / self.bin_hz();
        let lo = ((c - search_bins).floor().max(1.0)) as usize;
        let hi = ((c + search_bins).ceil() as usize).min(self.power.len() - 2);
        if lo > hi {
            return (hz, 0.0);
        }
        let k = (lo..=hi).max_by(|&a, &b| self.power[a].total_cmp(&self.power[b])).unwrap_or(lo);
        // Parabolic interpolation on log power.
        let (a, b, g) = (
            (self.power[k - 1] + 1e-30).ln(),
            (self.power[k] + 1e-30).ln(),
            (self.power[k + 1] + 1e-30).ln(),
        );
        let denom = a - 2.0 * b + g;
        let d = if denom.abs() > 1e-12 { (0.5 * (a - g) / denom).clamp(-0.5, 0.5) } else { 0.0 };
        let peak_ln_power = b - 0.25 * (a - g) * d;
        let mag = (0.5 * peak_ln_power).exp();
        ((k as f32 + d) * self.bin_hz(), 2.0 * mag / self.wsum)
    }
}

/// Fit `(fₙ/n)² = a·(1 + B·n²)` by weighted least squares; returns `(f₁, B)`.
fn fit_stiff_string(peaks: &[(usize, f32, f32)]) -> (f32, f32) {
    // y = a + c·x with x = n², y = (f/n)², weight w.
    let (mut sw, mut sx, mut sy, mut sxx, mut sxy) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for &(n, f, w) in peaks {
        let x = (n * n) as f64;
        let y = (f as f64 / n as f64).powi(2);
        let w = w as f64;
        sw += w;
        sx += w * x;
        sy += w * y;
        sxx += w * x * x;
        sxy += w * x * y;
    }
    let det = sw * sxx - sx * sx;
    if peaks.len() < 3 || det.abs() < 1e-9 {
        let f1 = peaks.first().map_or(0.0, |p| p.1 / p.0 as f32);
        return (f1, 0.0);
    }
    let c = (sw * sxy - sx * sy) / det;
    let a = (sy - c * sx) / sw;
    let b = (c / a).clamp(0.0, 0.01);
    // f₁ is the first partial under the law: √(a(1+B)).
    ((a * (1.0 + b)).sqrt() as f32, b as f32)
}

/// Analyse one rendered note (`x` at [`SR`], released at `hold_s`).
pub fn analyse(x: &[f32], key: u8, velocity: u8, hold_s: f32) -> PianoNote {
    let mut planner = RealFftPlanner::<f32>::new();
    let f_et = midi_to_hz(key as f32);
    // 1. Partial frequencies from one long window inside the held note.
    let long_len = ((0.5 * SR as f32) as usize).max(analysis_window(key) * 4).min((hold_s * SR as f32 * 0.6) as usize);
    let long_nfft = (long_len * 4).next_power_of_two();
    let mut long = Spectrum::new(&mut planner, long_len, long_nfft);
    let centre = (0.08 * SR as f32) as isize + (long_len / 2) as isize;
    long.analyse(x, centre);
    let (f1_peak, a1) = long.peak(f_et, f_et * 0.03 / long.bin_hz());
    let mut peaks: Vec<(usize, f32, f32)> = vec![(1, f1_peak, a1.max(1e-9))];
    let (mut f1, mut b) = (f1_peak, 0.0f32);
    let loudest = a1;
    let mut loudest_seen = loudest;
    for n in 2..=PARTIALS {
        let pred = partial_hz(f1, b, n);
        if pred >= TOP_HZ.min(0.45 * SR as f32) {
            break;
        }
        let (f, a) = long.peak(pred, 0.2 * f1 / long.bin_hz());
        loudest_seen = loudest_seen.max(a);
        // A partial, not the floor: within 70 dB of the loudest partial so far.
        if a > loudest_seen * 3e-4 {
            peaks.push((n, f, a.sqrt()));
            if peaks.len() >= 3 {
                (f1, b) = fit_stiff_string(&peaks);
            }
        }
    }
    let partials_found = peaks.len();
    // The fundamental itself, if found, pins f₁ (the fit's f₁ can drift when partial 1 is weak).
    let f1 = if a1 > loudest_seen * 1e-3 { f1_peak } else { f1 };
    let mut cents = [0.0f32; PARTIALS];
    let mut partials_in_band = 0;
    for (n0, c) in cents.iter_mut().enumerate() {
        let n = n0 + 1;
        *c = 1200.0 * (partial_hz(f1, b, n) / (n as f32 * f1)).log2();
        if partial_hz(f1, b, n) < TOP_HZ {
            partials_in_band = n;
        }
    }

    // 2. Frames.
    let len = analysis_window(key);
    let nfft = (2 * len).next_power_of_two();
    let mut spec = Spectrum::new(&mut planner, len, nfft);
    let edges = band_edges_hz();
    let total_s = x.len() as f32 / SR as f32;
    let t0 = time_floor_s(key);
    let mut times = Vec::new();
    let mut t = t0;
    while t + len as f32 / 2.0 / SR as f32 <= total_s {
        times.push(t);
        let near = t < FINE_SPAN_S || (t >= hold_s && t < hold_s + FINE_SPAN_S) || (t < hold_s && t + COARSE_HOP_S > hold_s);
        t += if near { FINE_HOP_S } else { COARSE_HOP_S };
    }
    let mut frames = Vec::with_capacity(times.len());
    let mut masked = vec![false; nfft / 2 + 1];
    // The Hann main lobe is ±2 bins of the unpadded transform; masking ±3 keeps the first
    // sidelobes of loud partials out of the noise estimate too.
    let lobe_bins = 3.0 * nfft as f32 / len as f32;
    let mut band_bins: Vec<f32> = Vec::with_capacity(nfft / 2);
    for n in 1..=partials_in_band {
        let c = partial_hz(f1, b, n) / spec.bin_hz();
        let lo = (c - lobe_bins).floor().max(0.0) as usize;
        let hi = ((c + lobe_bins).ceil() as usize).min(masked.len() - 1);
        masked[lo..=hi].iter_mut().for_each(|m| *m = true);
    }
    for &t in &times {
        spec.analyse(x, (t * SR as f32).round() as isize);
        let mut amp = [LOG_FLOOR; PARTIALS];
        for (n0, a) in amp.iter_mut().enumerate().take(partials_in_band) {
            let (_, mag) = spec.peak(partial_hz(f1, b, n0 + 1), 1.0);
            *a = mag.max(1e-12).log10().max(LOG_FLOOR);
        }
        let mut noise = [0.0f32; NOISE_BANDS];
        for (band, v) in noise.iter_mut().enumerate() {
            let lo = (edges[band] / spec.bin_hz()).ceil() as usize;
            let hi = ((edges[band + 1] / spec.bin_hz()).floor() as usize).min(masked.len() - 1);
            band_bins.clear();
            band_bins.extend((lo..=hi.max(lo)).filter(|&k| k < masked.len() && !masked[k]).map(|k| spec.power[k]));
            // The median, not the mean, of the unmasked bins: what leaks from the partials is
            // a few loud bins, noise is all of them. |X|² of Gaussian noise is exponential, so
            // its mean is the median / ln 2.
            let p = if band_bins.is_empty() {
                1e-30
            } else {
                let mid = band_bins.len() / 2;
                let (_, m, _) = band_bins.select_nth_unstable_by(mid, f32::total_cmp);
                *m as f64 / std::f64::consts::LN_2
            };
            // One-sided power density: E|X|² = S·(sr/2)·Σw².
            let s = 2.0 * p / (SR as f64 * spec.w2sum as f64);
            *v = (s.max(1e-30).log10() as f32).max(NOISE_FLOOR_LOG10);
        }
        frames.push(PianoFrame { t, r: t - hold_s, amp, noise });
    }
    PianoNote { key, velocity, f1_hz: f1, b, partials_found, cents, partials_in_band, frames }
}

/// Render and analyse every key at `velocities` (in parallel over keys).
pub fn analyse_font(font: &Font, velocities: &[u8], keys: impl Iterator<Item = u8>, progress: &(dyn Fn() + Sync)) -> Vec<PianoNote> {
    use rayon::prelude::*;
    let jobs: Vec<(u8, u8)> = keys.flat_map(|k| velocities.iter().map(move |&v| (k, v))).collect();
    jobs.par_iter()
        .map(|&(key, vel)| {
            let hold = hold_seconds(key);
            let x = font.render_note(key, vel, hold, RELEASE_S, SR);
            let note = analyse(&x, key, vel, hold);
            progress();
            note
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The velocity-to-cutoff modulator on FluidR3's grand (installed by `cargo xtask setup`):
    /// the cutoff (its global zone's) is found; at velocity 127 (−19 cents) the render is the plain one
    /// within −40 dB; a soft note's centroid falls by more than 10 % while its level stays
    /// within 1 dB.
    #[test]
    fn soft_notes_play_through_the_lowered_cutoff() {
        use crate::train::piano_eval::{db, rms, spectral_centroid_hz};
        let font = Font::open(Path::new(FLUID_R3)).expect("fluid-soundfont-gm is installed by cargo xtask setup");
        assert!(!font.cutoff_amounts.is_empty());
        assert_eq!((velocity_cutoff_shift_cents(127), velocity_cutoff_shift_cents(64), velocity_cutoff_shift_cents(0)), (-19, -1200, -2400));
        let (key, hold, tail) = (72u8, 0.6, 0.1);
        // The file as it is, without the modulator.
        let plain = |v: u8| Font::render_on(&font.plain, key, v, hold, tail, SR);
        let loud = font.render_note(key, 127, hold, tail, SR);
        let plain_loud = plain(127);
        let diff: Vec<f32> = loud.iter().zip(&plain_loud).map(|(a, b)| a - b).collect();
        assert!(db(rms(&diff) / rms(&plain_loud)) < -40.0, "velocity 127 changed by {:.1} dB", db(rms(&diff) / rms(&plain_loud)));

        let soft = font.render_note(key, 20, hold, tail, SR);
        let plain_soft = plain(20);
        let sr = SR as f32;
        let (c_soft, c_plain) = (spectral_centroid_hz(&soft, sr, 0.05, 0.55), spectral_centroid_hz(&plain_soft, sr, 0.05, 0.55));
        let c_loud = spectral_centroid_hz(&loud, sr, 0.05, 0.55);
        assert!(c_soft < 0.9 * c_plain && c_soft < 0.9 * c_loud, "centroids soft {c_soft:.0} plain soft {c_plain:.0} loud {c_loud:.0} Hz");
        eprintln!("zones {}; centroid soft {c_soft:.0} Hz, plain soft {c_plain:.0} Hz, loud {c_loud:.0} Hz", font.cutoff_amounts.len());
        // The body of the note (its level) is unchanged within 1 dB.
        let level = db(rms(&soft) / rms(&plain_soft));
        assert!(level.abs() < 1.0, "soft level changed by {level:.2} dB");
    }

    #[test]
    fn stiff_string_fit_recovers_b() {
        let (f1, b) = (110.0, 4e-4);
        let peaks: Vec<(usize, f32, f32)> = (1..20).map(|n| (n, partial_hz(f1, b, n), 1.0)).collect();
        let (f, bb) = fit_stiff_string(&peaks);
        assert!((f - f1).abs() < 0.01, "{f}");
        assert!((bb - b).abs() < 1e-6, "{bb}");
    }

    #[test]
    fn analysis_finds_the_partials_of_a_synthetic_stiff_string() {
        // A decaying stiff string with known B and tuning.
        let (key, b) = (45u8, 3e-4f32);
        let f1 = midi_to_hz(key as f32) * 2f32.powf(5.0 / 1200.0);
        let hold = 3.0;
        let n = ((hold + RELEASE_S) * SR as f32) as usize;
        let x: Vec<f32> = (0..n)
            .map(|i| {
                let t = i as f32 / SR as f32;
                (1..=30)
                    .map(|p| {
                        let a = 0.1 / p as f32 * (-t * (0.5 + 0.1 * p as f32)).exp();
                        a * (2.0 * std::f32::consts::PI * partial_hz(f1, b, p) * t).sin()
                    })
                    .sum::<f32>()
            })
            .collect();
        let note = analyse(&x, key, 100, hold);
        assert!((note.tuning_cents() - 5.0).abs() < 0.5, "tuning {}", note.tuning_cents());
        assert!((note.b - b).abs() < 0.1 * b, "B {}", note.b);
        // Partial 3's amplitude at t ≈ 1 s: 0.1/3·e^{-0.8}.
        let fr = note.frames.iter().min_by(|a, c| (a.t - 1.0).abs().total_cmp(&(c.t - 1.0).abs())).unwrap();
        let want = (0.1f32 / 3.0 * (-(0.5f32 + 0.3) * fr.t).exp()).log10();
        assert!((fr.amp[2] - want).abs() < 0.02, "{} vs {want}", fr.amp[2]);
    }
}
