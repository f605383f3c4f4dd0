//! The trained listener: a small causal network over the engine's log-frequency features.
//!
//! Input, per analysis frame `t` (the newest): the log-frequency features (20-cent grid, see
//! [`crate::v0`]) of the frames `t - context[c]`, log-compressed relative to the loudest feature
//! of the last [`HISTORY`] frames (so level changes between frames stay visible), and the level
//! of each of those frames. For every 20-cent pitch candidate the network gathers the features
//! at the candidate's subharmonic, fundamental and harmonics 2–6 in every context frame, and at
//! the neighbouring candidates ("harmonic stacking": one gather with a fixed index), then runs
//! the same small MLP on every candidate → a pitch logit per candidate. Max and mean over the
//! candidates' hidden units plus the frame levels feed a second MLP → voicing and onset logits.
//!
//! Outputs describe hop `t - DETECTION_HOPS` (the network sees that many hops after it: its
//! fixed lookahead, part of the reported latency). A model file may carry other context offsets
//! (`listener.net.context`, 1 to [`MAX_CONTEXT_FRAMES`] of them, with its own detection delay in
//! the calibration): the first layer and the head then take that many frames ([`net_specs`]). `step`/`reset` stream frame by frame;
//! `forward` runs a batch of frames (same numbers). The training code
//! (`train::listener`, feature `training`) uses the same input assembly and forward.

use candle_core::{Device, Tensor};

use crate::listener::{first_max, ListenerFrame};
use crate::model::{HostTensor, Model};
use crate::timing::Timing;
use crate::v0::{candidate_midi, CAND_PER_SEMITONE, N_CANDIDATES, N_FEATURES};

/// Frames kept for the context and the normalisation (at least; see [`history`]).
pub const HISTORY: usize = 8;
/// Context frames, as offsets back from the newest frame, of a model file that names none (the
/// listeners shipped until the twenty-first session).
pub const CONTEXT: [usize; 6] = [0, 1, 2, 3, 5, 7];
/// Context frames of the shipped listener and of `cargo xtask train listener` by default: those of
/// [`CONTEXT`] and two reaching 64 and 171 ms back (a note's rise against the previous note's
/// reverberant tail; BENCHMARKS "Eight context frames").
pub const TRAIN_CONTEXT: [usize; 8] = [0, 1, 2, 3, 5, 7, 12, 32];
/// Context offsets of one network: [`CONTEXT`], or 1 to [`MAX_CONTEXT_FRAMES`] others that a
/// model file names (`listener.net.context`). The number of frames sets the input layer's and
/// the head's shapes ([`net_specs`]).
pub type Context = Vec<usize>;
/// Largest context offset a model file may ask for.
pub const MAX_CONTEXT_BACK: usize = 63;
/// Most context frames a model file may ask for.
pub const MAX_CONTEXT_FRAMES: usize = 12;

/// Whether a network may take `context`: 1 to [`MAX_CONTEXT_FRAMES`] offsets, none more than
/// [`MAX_CONTEXT_BACK`] hops back. The one check behind a model file's `listener.net.context`,
/// `train listener --context` and the trainer's configuration.
pub fn check_context(context: &[usize]) -> Result<(), String> {
    if !(1..=MAX_CONTEXT_FRAMES).contains(&context.len()) {
        return Err(format!("a listener takes 1 to {MAX_CONTEXT_FRAMES} context offsets, not {}", context.len()));
    }
    match context.iter().find(|&&c| c > MAX_CONTEXT_BACK) {
        Some(c) => Err(format!("context offset {c} lies more than {MAX_CONTEXT_BACK} hops back")),
        None => Ok(()),
    }
}

/// Frames a network with `context` keeps: the oldest context frame's, at least [`HISTORY`]
/// (the input normalisation looks at all of them).
pub fn history(context: &[usize]) -> usize {
    (context.iter().copied().max().unwrap_or(0) + 1).max(HISTORY)
}

/// The context offsets `model`'s network was trained with (`listener.net.context` when the file
/// has it, else [`CONTEXT`]).
pub fn context_of(model: &Model) -> Context {
    match model.get("listener.net.context") {
        Some(t) => t.data.iter().map(|&v| v as usize).collect(),
        None => CONTEXT.to_vec(),
    }
}
/// Harmonic offsets in features (20-cent steps): ½, 1, 2, 3, 4, 5, 6 × the candidate.
pub const HARMONIC_OFFSETS: [isize; 7] = [-60, 0, 60, 95, 120, 139, 155];
/// Feature index of candidate 0 (C2 = 65.4 Hz = 55 Hz · 2^(15/60)).
pub const CAND0_FEATURE: isize = 15;
/// Neighbouring candidates gathered per candidate (−1, 0, +1).
pub const NEIGHBOURS: usize = 3;
/// Inputs per candidate with `frames` context frames.
pub const fn in_per_cand(frames: usize) -> usize {
    frames * HARMONIC_OFFSETS.len() * NEIGHBOURS
}
/// Width of one frame's input row with `frames` context frames: their features plus one zero
/// used for out-of-range taps.
pub const fn row_len(frames: usize) -> usize {
    frames * N_FEATURES + 1
}
/// Hidden widths.
pub const H1: usize = 48;
pub const H2: usize = 32;
/// Inputs of the voicing/onset head with `frames` context frames: pooled hidden units and
/// the frames' levels.
pub const fn head_in(frames: usize) -> usize {
    2 * H2 + frames
}
pub const HEAD_H: usize = 32;
/// Log compression gain.
pub const LOG_GAIN: f32 = 100.0;
/// Level input: dBFS mapped as `(dB + LEVEL_FLOOR_DB) / LEVEL_FLOOR_DB`, clamped to 0…1.
pub const LEVEL_FLOOR_DB: f32 = 100.0;

/// Names of the network's tensors in a model file, in [`NetTensors`] order, then the
/// calibration.
pub const NET_NAMES: [&str; 11] = [
    "listener.net.w1",
    "listener.net.b1",
    "listener.net.w2",
    "listener.net.b2",
    "listener.net.w3",
    "listener.net.b3",
    "listener.net.wh1",
    "listener.net.bh1",
    "listener.net.wh2",
    "listener.net.bh2",
    // [voicing threshold at sensitivity 0.5, onset threshold, detection hops, level gate dBFS]
    "listener.net.calib",
];

/// Names and shapes of the network's tensors ([`NET_NAMES`]) with `frames` context frames.
pub fn net_specs(frames: usize) -> Vec<(&'static str, Vec<usize>)> {
    let shapes = [
        vec![in_per_cand(frames), H1],
        vec![H1],
        vec![H1, H2],
        vec![H2],
        vec![H2, 1],
        vec![1],
        vec![head_in(frames), HEAD_H],
        vec![HEAD_H],
        vec![HEAD_H, 2],
        vec![2],
        vec![4],
    ];
    NET_NAMES.into_iter().zip(shapes).collect()
}

/// Names of the optional global pitch layer's tensors (a model file has all or none): every
/// candidate's hidden units `h2` go through one more layer, `relu(h2 · wc + pooled · wg + bc)`,
/// before `w3`, where `pooled` is the max and mean of `h2` over all candidates — so a candidate's
/// score can depend on what the whole frame holds (a new note rising beside an old one's tail).
pub const GLOBAL_NAMES: [&str; 3] = ["listener.net.wg", "listener.net.wc", "listener.net.bc"];

/// Names and shapes of the global pitch layer's tensors ([`GLOBAL_NAMES`]).
pub fn global_specs() -> Vec<(&'static str, Vec<usize>)> {
    GLOBAL_NAMES.into_iter().zip([vec![2 * H2, H2], vec![H2, H2], vec![H2]]).collect()
}

/// Names and shapes of the trainable tensors with `frames` context frames (and the global pitch
/// layer): [`net_specs`] without the calibration, then [`global_specs`]. The order of
/// [`NetTensors::to_vec`].
pub fn trainable_specs(frames: usize, global: bool) -> Vec<(&'static str, Vec<usize>)> {
    let global = if global { global_specs() } else { Vec::new() };
    net_specs(frames).into_iter().filter(|(n, _)| !n.ends_with("calib")).chain(global).collect()
}

/// Whether `model`'s network has the global pitch layer (the reader keeps all three tensors or
/// none).
pub fn has_global_layer(model: &Model) -> bool {
    model.get(GLOBAL_NAMES[0]).is_some()
}

/// Number of trainable parameters with `frames` context frames (and the global pitch layer).
pub fn parameter_count(frames: usize, global: bool) -> usize {
    trainable_specs(frames, global).iter().map(|(_, s)| s.iter().product::<usize>()).sum()
}

/// The gather index `[N_CANDIDATES * in_per_cand(frames)]` into a frame's input row: for
/// candidate `b`, input `(c, h, n)` reads feature `CAND0 + b + (n - 1) + HARMONIC_OFFSETS[h]` of
/// context frame `c`, or the row's final zero when that is outside the feature grid.
pub fn gather_index(frames: usize) -> Vec<u32> {
    let zero = (row_len(frames) - 1) as u32;
    let mut idx = Vec::with_capacity(N_CANDIDATES * in_per_cand(frames));
    for b in 0..N_CANDIDATES as isize {
        for c in 0..frames {
            for &h in &HARMONIC_OFFSETS {
                for n in 0..NEIGHBOURS as isize {
                    let f = CAND0_FEATURE + b + n - 1 + h;
                    idx.push(if (0..N_FEATURES as isize).contains(&f) { (c * N_FEATURES) as u32 + f as u32 } else { zero });
                }
            }
        }
    }
    idx
}

/// The network's tensors (from a model file, or the training variables).
#[derive(Clone)]
pub struct NetTensors {
    pub w1: Tensor,
    pub b1: Tensor,
    pub w2: Tensor,
    pub b2: Tensor,
    pub w3: Tensor,
    pub b3: Tensor,
    pub wh1: Tensor,
    pub bh1: Tensor,
    pub wh2: Tensor,
    pub bh2: Tensor,
    /// The global pitch layer (`wg`, `wc`, `bc`; [`GLOBAL_NAMES`]), when the network has one.
    pub global: Option<[Tensor; 3]>,
}

impl NetTensors {
    /// In [`NET_NAMES`] order (without the calibration), then [`GLOBAL_NAMES`] if there are 13.
    pub fn from_vec(t: Vec<Tensor>) -> NetTensors {
        let global = t.len() == NET_NAMES.len() - 1 + GLOBAL_NAMES.len();
        let mut it = t.into_iter();
        let mut n = || it.next().expect("ten or thirteen network tensors");
        let mut net = NetTensors { w1: n(), b1: n(), w2: n(), b2: n(), w3: n(), b3: n(), wh1: n(), bh1: n(), wh2: n(), bh2: n(), global: None };
        if global {
            net.global = Some([n(), n(), n()]);
        }
        net
    }
    pub fn to_vec(&self) -> Vec<&Tensor> {
        let mut v = vec![&self.w1, &self.b1, &self.w2, &self.b2, &self.w3, &self.b3, &self.wh1, &self.bh1, &self.wh2, &self.bh2];
        v.extend(self.global.iter().flatten());
        v
    }
}

/// Forward pass: `rows` `[B, row_len(F)]` and `levels` `[B, F]` for `F` context frames, with
/// `index` = [`gather_index`]`(F)` →
/// pitch logits `[B, N_CANDIDATES]` and head logits `[B, 2]` (voicing, onset).
pub fn forward(net: &NetTensors, index: &Tensor, rows: &Tensor, levels: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
    let b = rows.dim(0)?;
    // The gather index defines each candidate's inputs.
    let x = rows.index_select(index, 1)?.reshape((b * N_CANDIDATES, index.dim(0)? / N_CANDIDATES))?;
    let h1 = x.matmul(&net.w1)?.broadcast_add(&net.b1)?.relu()?;
    let h2 = h1.matmul(&net.w2)?.broadcast_add(&net.b2)?.relu()?;
    let h2c = h2.reshape((b, N_CANDIDATES, H2))?;
    let (h2_max, h2_mean) = (h2c.max(1)?, h2c.mean(1)?);
    let last = match &net.global {
        None => h2,
        Some([wg, wc, bc]) => {
            let g = Tensor::cat(&[&h2_max, &h2_mean], 1)?.matmul(wg)?.broadcast_add(bc)?; // [B, H2]
            h2.matmul(wc)?.reshape((b, N_CANDIDATES, H2))?.broadcast_add(&g.unsqueeze(1)?)?.relu()?.reshape((b * N_CANDIDATES, H2))?
        }
    };
    let logits = last.matmul(&net.w3)?.broadcast_add(&net.b3)?.reshape((b, N_CANDIDATES))?;
    let pooled = Tensor::cat(&[h2_max, h2_mean, levels.clone()], 1)?;
    let hh = pooled.matmul(&net.wh1)?.broadcast_add(&net.bh1)?.relu()?;
    let heads = hh.matmul(&net.wh2)?.broadcast_add(&net.bh2)?;
    Ok((logits, heads))
}

/// Builds input rows from a stream of linear feature frames (host side).
#[derive(Clone)]
pub struct InputAssembler {
    /// Ring of the last `history` linear feature frames.
    ring: Vec<f32>,
    /// Frames pushed.
    frames: u64,
    context: Context,
    history: usize,
}

impl InputAssembler {
    pub fn new(context: &[usize]) -> Self {
        let history = history(context);
        let context = context.to_vec();
        InputAssembler { ring: vec![0.0; history * N_FEATURES], frames: 0, context, history }
    }

    pub fn reset(&mut self) {
        self.ring.iter_mut().for_each(|v| *v = 0.0);
        self.frames = 0;
    }

    /// Push frame `feats` (linear, `N_FEATURES`), then write its input row (`row_len`) and
    /// levels (one per context frame).
    pub fn push(&mut self, feats: &[f32], row: &mut [f32], levels: &mut [f32]) {
        let h = self.history as u64;
        let slot = (self.frames % h) as usize;
        for (d, &s) in self.ring[slot * N_FEATURES..(slot + 1) * N_FEATURES].iter_mut().zip(feats) {
            *d = if s.is_finite() { s.max(0.0) } else { 0.0 };
        }
        self.frames += 1;
        let newest = self.frames - 1;
        let ring = &self.ring;
        assemble(
            |back| {
                let k = ((newest + h - back as u64) % h) as usize;
                &ring[k * N_FEATURES..(k + 1) * N_FEATURES]
            },
            &self.context,
            row,
            levels,
        );
    }
}

/// The input row and levels of one frame, given `frame(back)`: the linear features of the frame
/// `back` hops before the newest (`back < history(context)`; zeros before the stream began).
/// Streaming ([`InputAssembler`]) and training (random frames of stored clips) both end here.
pub fn assemble<'a>(frame: impl Fn(usize) -> &'a [f32], context: &[usize], row: &mut [f32], levels: &mut [f32]) {
    let peak = (0..history(context)).map(|b| frame(b).iter().fold(0.0f32, |m, &v| m.max(v))).fold(0.0f32, f32::max) + 1e-9;
    let g = LOG_GAIN / peak;
    let norm = 1.0 / (1.0 + LOG_GAIN).ln();
    for (c, &back) in context.iter().enumerate() {
        let f = frame(back);
        let out = &mut row[c * N_FEATURES..(c + 1) * N_FEATURES];
        for (o, &v) in out.iter_mut().zip(f) {
            *o = (1.0 + g * v).ln() * norm;
        }
        let m = f.iter().fold(0.0f32, |m, &v| m.max(v));
        levels[c] = ((20.0 * (m + 1e-9).log10() + LEVEL_FLOOR_DB) / LEVEL_FLOOR_DB).clamp(0.0, 1.0);
    }
    row[context.len() * N_FEATURES] = 0.0;
}

/// Pitch (MIDI) from one frame's logits: softmax-weighted mean over ±2 candidates around the
/// most likely one.
pub fn decode_pitch(logits: &[f32]) -> f32 {
    let best = first_max(logits);
    let lo = best.saturating_sub(2);
    let hi = (best + 2).min(logits.len() - 1);
    let (mut num, mut den) = (0.0f32, 0.0f32);
    for (i, &v) in logits.iter().enumerate().take(hi + 1).skip(lo) {
        let w = (v - logits[best]).exp();
        num += w * i as f32;
        den += w;
    }
    let c = num / den.max(1e-9);
    candidate_midi(0) + c / CAND_PER_SEMITONE as f32
}

/// How sure one frame's pitch is: the softmax mass of the candidates within a semitone of the
/// most likely one (near 1 when one pitch stands out; low when an octave or another voice
/// competes).
pub fn pitch_confidence(logits: &[f32]) -> f32 {
    let best = first_max(logits);
    share_around(logits, best as isize, logits[best])
}

/// The softmax mass of the candidates within a semitone of candidate `centre` (which may lie
/// outside the candidates, e.g. an octave below the lowest).
pub fn pitch_share(logits: &[f32], centre: isize) -> f32 {
    share_around(logits, centre, logits[first_max(logits)])
}

/// [`pitch_share`] given the largest logit `max`.
fn share_around(logits: &[f32], centre: isize, max: f32) -> f32 {
    let (mut near, mut total) = (0.0f32, 0.0f32);
    for (i, &v) in logits.iter().enumerate() {
        let w = (v - max).exp();
        total += w;
        if (i as isize).abs_diff(centre) <= CAND_PER_SEMITONE {
            near += w;
        }
    }
    near / total.max(1e-30)
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The network's weights and every buffer of one frame on the host, for the per-hop step on
/// the CPU: the same products as [`forward`] through the `gemm` kernels Candle's CPU matmul
/// calls, but no tensor is created per hop (measured: Candle's per-op tensors of up to 136 KB
/// made the allocator return and re-fault memory every hop; `gemm` still allocates its small
/// packing buffers per product, on this inference thread). Outputs equal [`forward`]'s up to
/// float rounding (the feature projection skips zeros; the last layers sum in another order).
struct HostStep {
    /// The log-frequency projection (analysis bins → features).
    proj: crate::features::SparseRows,
    index: Vec<u32>,
    w1: Vec<f32>,
    b1: Vec<f32>,
    w2: Vec<f32>,
    b2: Vec<f32>,
    w3: Vec<f32>,
    b3: f32,
    wh1: Vec<f32>,
    bh1: Vec<f32>,
    wh2: Vec<f32>,
    bh2: Vec<f32>,
    x: Vec<f32>,
    h1: Vec<f32>,
    h2: Vec<f32>,
    logits: Vec<f32>,
    pooled: Vec<f32>,
    hh: Vec<f32>,
    /// Inputs per candidate.
    in_per_cand: usize,
    /// The global pitch layer (`wg`, `wc`, `bc`) and its buffers (`h3` per candidate, `g` per
    /// frame), when the network has one.
    global: Option<[Vec<f32>; 3]>,
    h3: Vec<f32>,
    g: Vec<f32>,
}

/// `dst[m×n] = lhs[m×k] · rhs[k×n]`, all row-major and contiguous, on this thread.
fn matmul(dst: &mut [f32], lhs: &[f32], rhs: &[f32], m: usize, k: usize, n: usize) {
    assert!(dst.len() >= m * n && lhs.len() >= m * k && rhs.len() >= k * n);
    // SAFETY: the three slices hold the m×n, m×k and k×n row-major matrices (checked above)
    // and do not overlap (`dst` is borrowed mutably).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

impl HostStep {
    /// `index`: [`gather_index`]`(frames)`.
    fn new(model: &Model, timing: &Timing, frames: usize, index: Vec<u32>) -> candle_core::Result<HostStep> {
        let m = crate::features::log_frequency_matrix(timing.sample_rate, timing.fft_len, timing.analysis_bins);
        let proj = crate::features::SparseRows::from_dense(&m, timing.analysis_bins, N_FEATURES);
        let get = |name: &str| -> candle_core::Result<Vec<f32>> {
            model.get(name).map(|t| t.data.clone()).ok_or_else(|| candle_core::Error::Msg(format!("model lacks {name}")))
        };
        Ok(HostStep {
            proj,
            index,
            w1: get("listener.net.w1")?,
            b1: get("listener.net.b1")?,
            w2: get("listener.net.w2")?,
            b2: get("listener.net.b2")?,
            w3: get("listener.net.w3")?,
            b3: get("listener.net.b3")?[0],
            wh1: get("listener.net.wh1")?,
            bh1: get("listener.net.bh1")?,
            wh2: get("listener.net.wh2")?,
            bh2: get("listener.net.bh2")?,
            x: vec![0.0; N_CANDIDATES * in_per_cand(frames)],
            h1: vec![0.0; N_CANDIDATES * H1],
            h2: vec![0.0; N_CANDIDATES * H2],
            logits: vec![0.0; N_CANDIDATES],
            pooled: vec![0.0; head_in(frames)],
            hh: vec![0.0; HEAD_H],
            in_per_cand: in_per_cand(frames),
            global: if has_global_layer(model) { Some([get(GLOBAL_NAMES[0])?, get(GLOBAL_NAMES[1])?, get(GLOBAL_NAMES[2])?]) } else { None },
            h3: vec![0.0; N_CANDIDATES * H2],
            g: vec![0.0; H2],
        })
    }

    /// Linear log-frequency features of one frame of magnitudes.
    fn project(&self, mags: &[f32], feats: &mut [f32]) {
        self.proj.apply(mags, feats);
    }

    /// Pitch logits (in `self.logits`) and head logits of one input row.
    fn run(&mut self, row: &[f32], levels: &[f32]) -> [f32; 2] {
        for (x, &i) in self.x.iter_mut().zip(&self.index) {
            *x = row[i as usize];
        }
        matmul(&mut self.h1, &self.x, &self.w1, N_CANDIDATES, self.in_per_cand, H1);
        for r in self.h1.chunks_exact_mut(H1) {
            for (v, b) in r.iter_mut().zip(&self.b1) {
                *v = (*v + b).max(0.0);
            }
        }
        matmul(&mut self.h2, &self.h1, &self.w2, N_CANDIDATES, H1, H2);
        let (max, rest) = self.pooled.split_at_mut(H2);
        let (mean, lv) = rest.split_at_mut(H2);
        max.iter_mut().for_each(|v| *v = f32::NEG_INFINITY);
        mean.iter_mut().for_each(|v| *v = 0.0);
        // Without the global pitch layer the logits come straight from `h2`; with it, below.
        let plain = self.global.is_none();
        for (r, logit) in self.h2.chunks_exact_mut(H2).zip(self.logits.iter_mut()) {
            let mut l = 0.0f32;
            for (j, (v, b)) in r.iter_mut().zip(&self.b2).enumerate() {
                *v = (*v + b).max(0.0);
                if plain {
                    l += *v * self.w3[j];
                }
                max[j] = max[j].max(*v);
                mean[j] += *v;
            }
            *logit = l + self.b3;
        }
        mean.iter_mut().for_each(|v| *v /= N_CANDIDATES as f32);
        lv.copy_from_slice(levels);
        if let Some([wg, wc, bc]) = &self.global {
            self.g.copy_from_slice(bc);
            for (i, p) in self.pooled[..2 * H2].iter().enumerate() {
                for (g, w) in self.g.iter_mut().zip(&wg[i * H2..(i + 1) * H2]) {
                    *g += p * w;
                }
            }
            matmul(&mut self.h3, &self.h2, wc, N_CANDIDATES, H2, H2);
            for (r, logit) in self.h3.chunks_exact(H2).zip(self.logits.iter_mut()) {
                let mut l = self.b3;
                for ((v, g), w) in r.iter().zip(&self.g).zip(&self.w3) {
                    l += (v + g).max(0.0) * w;
                }
                *logit = l;
            }
        }
        for (j, h) in self.hh.iter_mut().enumerate() {
            let mut s = self.bh1[j];
            for (i, p) in self.pooled.iter().enumerate() {
                s += p * self.wh1[i * HEAD_H + j];
            }
            *h = s.max(0.0);
        }
        let mut heads = [self.bh2[0], self.bh2[1]];
        for (i, h) in self.hh.iter().enumerate() {
            heads[0] += h * self.wh2[i * 2];
            heads[1] += h * self.wh2[i * 2 + 1];
        }
        heads
    }
}

/// The trained listener on one device.
pub struct ListenerNet {
    device: Device,
    interp: Tensor,
    index: Tensor,
    net: NetTensors,
    asm: InputAssembler,
    bins: usize,
    row: Vec<f32>,
    levels: Vec<f32>,
    feats: Vec<f32>,
    /// The per-hop step on the CPU (`None` on other devices, which step through Candle).
    host: Option<Box<HostStep>>,
}

fn upload(t: &HostTensor, device: &Device) -> candle_core::Result<Tensor> {
    Tensor::from_slice(&t.data, t.shape.as_slice(), device)
}

impl ListenerNet {
    pub fn new(model: &Model, timing: &Timing, device: &Device) -> candle_core::Result<Self> {
        let interp = crate::features::log_frequency_matrix(timing.sample_rate, timing.fft_len, timing.analysis_bins);
        let interp = Tensor::from_vec(interp, (timing.analysis_bins, N_FEATURES), device)?;
        let mut ts = Vec::new();
        let context = context_of(model);
        let frames = context.len();
        for (name, _) in trainable_specs(frames, has_global_layer(model)) {
            let t = model.get(name).ok_or_else(|| candle_core::Error::Msg(format!("model lacks {name}")))?;
            ts.push(upload(t, device)?);
        }
        let gather = gather_index(frames);
        let index = Tensor::from_slice(&gather, gather.len(), device)?;
        Ok(ListenerNet {
            device: device.clone(),
            interp,
            index,
            net: NetTensors::from_vec(ts),
            asm: InputAssembler::new(&context),
            bins: timing.analysis_bins,
            row: vec![0.0; row_len(frames)],
            levels: vec![0.0; frames],
            feats: Vec::with_capacity(N_FEATURES),
            host: if device.is_cpu() { Some(Box::new(HostStep::new(model, timing, frames, gather)?)) } else { None },
        })
    }

    pub fn reset(&mut self) {
        self.asm.reset();
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    fn frame_out(logits: &[f32], heads: &[f32]) -> ListenerFrame {
        let best = first_max(logits);
        ListenerFrame {
            pitch_midi: decode_pitch(logits),
            confidence: pitch_confidence(logits),
            periodicity: sigmoid(heads[0]),
            flux: sigmoid(heads[1]),
            octave_below: share_around(logits, best as isize - 12 * CAND_PER_SEMITONE as isize, logits[best]),
        }
    }

    /// One frame of `bins` magnitudes.
    pub fn step(&mut self, mags: &[f32]) -> candle_core::Result<ListenerFrame> {
        if let Some(h) = self.host.as_deref_mut() {
            self.feats.resize(N_FEATURES, 0.0);
            h.project(&mags[..self.bins], &mut self.feats);
            self.asm.push(&self.feats, &mut self.row, &mut self.levels);
            let heads = h.run(&self.row, &self.levels);
            return Ok(Self::frame_out(&h.logits, &heads));
        }
        let x = Tensor::from_slice(&mags[..self.bins], (1, self.bins), &self.device)?;
        self.feats.clear();
        self.feats.extend(x.matmul(&self.interp)?.squeeze(0)?.to_vec1::<f32>()?);
        self.asm.push(&self.feats, &mut self.row, &mut self.levels);
        let rows = Tensor::from_slice(&self.row, (1, self.row.len()), &self.device)?;
        let levels = Tensor::from_slice(&self.levels, (1, self.levels.len()), &self.device)?;
        let (logits, heads) = forward(&self.net, &self.index, &rows, &levels)?;
        let logits = logits.squeeze(0)?.to_vec1::<f32>()?;
        let heads = heads.squeeze(0)?.to_vec1::<f32>()?;
        Ok(Self::frame_out(&logits, &heads))
    }

    /// A batch of consecutive frames `[T, bins]`, continuing the stream.
    pub fn forward(&mut self, mags: &[f32], frames: usize) -> candle_core::Result<Vec<ListenerFrame>> {
        self.forward_with_logits(mags, frames, None)
    }

    /// [`ListenerNet::forward`], also appending every frame's pitch logits (`N_CANDIDATES` per
    /// frame) to `logits_out` when given (for evaluation tools).
    pub fn forward_with_logits(&mut self, mags: &[f32], frames: usize, mut logits_out: Option<&mut Vec<f32>>) -> candle_core::Result<Vec<ListenerFrame>> {
        if frames == 0 {
            return Ok(Vec::new());
        }
        let x = Tensor::from_slice(&mags[..frames * self.bins], (frames, self.bins), &self.device)?;
        let feats = x.matmul(&self.interp)?.to_vec2::<f32>()?;
        let (row, nc) = (self.row.len(), self.levels.len());
        let mut rows = vec![0.0f32; frames * row];
        let mut levels = vec![0.0f32; frames * nc];
        for (k, f) in feats.iter().enumerate() {
            self.asm.push(f, &mut rows[k * row..(k + 1) * row], &mut levels[k * nc..(k + 1) * nc]);
        }
        let mut out = Vec::with_capacity(frames);
        // Chunks keep the gathered input (`N_CANDIDATES × in_per_cand` per frame) small.
        for start in (0..frames).step_by(256) {
            let n = (frames - start).min(256);
            let r = Tensor::from_slice(&rows[start * row..(start + n) * row], (n, row), &self.device)?;
            let l = Tensor::from_slice(&levels[start * nc..(start + n) * nc], (n, nc), &self.device)?;
            let (logits, heads) = forward(&self.net, &self.index, &r, &l)?;
            let logits = logits.to_vec2::<f32>()?;
            let heads = heads.to_vec2::<f32>()?;
            if let Some(o) = logits_out.as_deref_mut() {
                logits.iter().for_each(|l| o.extend_from_slice(l));
            }
            out.extend(logits.iter().zip(&heads).map(|(lg, h)| Self::frame_out(lg, h)));
        }
        Ok(out)
    }
}
