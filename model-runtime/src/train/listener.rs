//! Training the listener network (`cargo xtask train listener`): Candle on the CPU, seeded.
//!
//! Each step draws a batch of random frames of the training clips, assembles their inputs
//! exactly as the streaming listener does ([`crate::listener_net::assemble`]), and minimises
//! - pitch: cross-entropy against a Gaussian (σ = 25 cents) around the true pitch, voiced
//!   frames only (optionally weighted up in a note's first 60 ms and its glide);
//! - voicing: binary cross-entropy;
//! - onset: binary cross-entropy with positives weighted up (a note starts in this hop or the
//!   one before),
//!
//! all about hop `t - detection_hops` for newest frame `t`. AdamW, warm-up then cosine decay.

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

use super::dataset::{make_examples, Example, Split};
use super::voice::Rand;
use crate::listener_net::{self as net, Context, NetTensors, CONTEXT, TRAIN_CONTEXT};
use crate::model::HostTensor;
use crate::v0::{CAND_MIN_MIDI, CAND_PER_SEMITONE, N_CANDIDATES, N_FEATURES};

#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub seed: u64,
    /// Training clips (seeds `seed * 1_000_000 ..`).
    pub clips: usize,
    /// Validation clips (held-out split).
    pub val_clips: usize,
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    /// Hops between the newest frame and the frame the outputs describe.
    pub detection_hops: usize,
    /// Context frames, as offsets back from the newest (the shipped listener's by default,
    /// [`TRAIN_CONTEXT`]).
    pub context: Context,
    /// Log (and validate) every this many steps.
    pub log_every: usize,
    /// Onset targets only where a new syllable starts (not at a slur's glide).
    pub articulated_onsets: bool,
    /// Onset loss of notes re-sung on the previous note's pitch (see
    /// [`super::dataset::repeated_onsets`]) × this, on top of the positive weight (1 = as shipped).
    pub repeat_weight: f32,
    /// Pitch-loss weight of voiced frames in a transition (a note's first 60 ms or its glide),
    /// relative to 1 elsewhere.
    pub transition_weight: f32,
    /// Hummed training phrases sung with a much steeper source slope (nearly sinusoidal hums;
    /// see [`super::dataset::make_clip_full`]).
    pub steep_hums: bool,
    /// The network with the global pitch layer ([`net::GLOBAL_NAMES`]; the shipped listener has
    /// it since the twenty-third session).
    pub global_pitch: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seed: 2,
            clips: 1000,
            val_clips: 16,
            steps: 3000,
            batch: 256,
            lr: 3e-3,
            detection_hops: crate::timing::DETECTION_HOPS,
            context: TRAIN_CONTEXT.to_vec(),
            log_every: 250,
            articulated_onsets: false,
            repeat_weight: 1.0,
            transition_weight: 1.0,
            steep_hums: false,
            global_pitch: true,
        }
    }
}

/// One row of the training log.
#[derive(Debug, Clone, Default)]
pub struct LogRow {
    pub step: usize,
    pub seconds: f64,
    pub lr: f64,
    pub loss: f32,
    pub pitch_loss: f32,
    pub voicing_loss: f32,
    pub onset_loss: f32,
    /// Validation: raw pitch accuracy (voiced reference frames within 50 cents).
    pub val_rpa: f32,
    /// Validation: voicing accuracy.
    pub val_voicing: f32,
    /// Validation: loss.
    pub val_loss: f32,
}

/// What the trainer reports while it runs.
pub enum Progress<'a> {
    /// Making the data: clips done of total.
    Data { done: usize, total: usize },
    Step { step: usize, total: usize, loss: f32 },
    Log(&'a LogRow),
}

/// Input rows, levels and targets of a batch of `(example, newest frame)` pairs.
struct Batch {
    rows: Vec<f32>,
    levels: Vec<f32>,
    pitch_target: Vec<f32>,
    voiced: Vec<f32>,
    /// Weight of each frame's pitch loss (0 where unvoiced).
    pitch_weight: Vec<f32>,
    onset: Vec<f32>,
    /// Weight of each frame's onset loss when it is an onset.
    onset_weight: Vec<f32>,
}

fn make_batch(examples: &[Example], picks: &[(usize, usize)], d: usize, cfg: &TrainConfig) -> Batch {
    let n = picks.len();
    let (row, nc) = (net::row_len(cfg.context.len()), cfg.context.len());
    let mut b = Batch {
        rows: vec![0.0; n * row],
        levels: vec![0.0; n * nc],
        pitch_target: vec![0.0; n * N_CANDIDATES],
        voiced: vec![0.0; n],
        pitch_weight: vec![0.0; n],
        onset: vec![0.0; n],
        onset_weight: vec![ONSET_POS_WEIGHT; n],
    };
    let zeros = vec![0.0f32; N_FEATURES];
    let sigma = 1.25f32; // candidates (25 cents)
    for (i, &(e, t)) in picks.iter().enumerate() {
        let ex = &examples[e];
        net::assemble(
            |back| if back <= t { &ex.feats[(t - back) * N_FEATURES..(t - back + 1) * N_FEATURES] } else { &zeros },
            &cfg.context,
            &mut b.rows[i * row..(i + 1) * row],
            &mut b.levels[i * nc..(i + 1) * nc],
        );
        let j = t - d;
        let f0 = ex.f0[j];
        if f0.is_finite() {
            b.voiced[i] = 1.0;
            let c = (f0 - CAND_MIN_MIDI) * CAND_PER_SEMITONE as f32;
            let target = &mut b.pitch_target[i * N_CANDIDATES..(i + 1) * N_CANDIDATES];
            let mut sum = 0.0;
            for (k, v) in target.iter_mut().enumerate() {
                let z = (k as f32 - c) / sigma;
                if z.abs() < 4.0 {
                    *v = (-0.5 * z * z).exp();
                    sum += *v;
                }
            }
            if sum > 0.0 {
                target.iter_mut().for_each(|v| *v /= sum);
            } else {
                b.voiced[i] = 0.0; // outside the candidate range: treat as unvoiced
            }
        }
        if b.voiced[i] > 0.0 {
            b.pitch_weight[i] = if ex.transition[j] { cfg.transition_weight } else { 1.0 };
        }
        let onsets = if cfg.articulated_onsets { &ex.onset_articulated } else { &ex.onset };
        let on = onsets[j] || (j > 0 && onsets[j - 1]);
        b.onset[i] = on as u8 as f32;
        if on && (ex.onset_repeat[j] || (j > 0 && ex.onset_repeat[j - 1])) {
            b.onset_weight[i] = ONSET_POS_WEIGHT * cfg.repeat_weight;
        }
    }
    b
}

/// Positive weight of the onset loss (onsets are rare).
const ONSET_POS_WEIGHT: f32 = 6.0;

/// `-[w·y·log σ(x) + (1-y)·log(1-σ(x))]`, mean.
fn weighted_bce(logits: &Tensor, target: &Tensor, pos_weight: f64) -> candle_core::Result<Tensor> {
    let pos = (target * softplus(&logits.neg()?)?)?.affine(pos_weight, 0.0)?;
    let neg = (target.affine(-1.0, 1.0)? * softplus(logits)?)?;
    (pos + neg)?.mean_all()
}

/// [`weighted_bce`] with a positive weight per frame.
fn weighted_bce_each(logits: &Tensor, target: &Tensor, pos_weight: &Tensor) -> candle_core::Result<Tensor> {
    let pos = ((target * softplus(&logits.neg()?)?)? * pos_weight)?;
    let neg = (target.affine(-1.0, 1.0)? * softplus(logits)?)?;
    (pos + neg)?.mean_all()
}

/// softplus(z) = relu(z) + ln(1+e^-|z|); log σ(x) = -softplus(-x), log(1-σ(x)) = -softplus(x).
fn softplus(z: &Tensor) -> candle_core::Result<Tensor> {
    z.relu()? + z.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?
}

/// Losses of a batch: (total, pitch, voicing, onset), and the outputs (pitch logits, heads).
#[allow(clippy::type_complexity)]
fn losses(vars: &NetTensors, index: &Tensor, b: &Batch, n: usize, dev: &Device) -> candle_core::Result<((Tensor, Tensor, Tensor, Tensor), (Tensor, Tensor))> {
    let rows = Tensor::from_slice(&b.rows, (n, b.rows.len() / n), dev)?;
    let levels = Tensor::from_slice(&b.levels, (n, b.levels.len() / n), dev)?;
    let target = Tensor::from_slice(&b.pitch_target, (n, N_CANDIDATES), dev)?;
    let voiced = Tensor::from_slice(&b.voiced, n, dev)?;
    let onset = Tensor::from_slice(&b.onset, n, dev)?;
    let (logits, heads) = net::forward(vars, index, &rows, &levels)?;
    let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let ce = (target * logp)?.sum(D::Minus1)?.neg()?; // [n], 0 for unvoiced rows
    let weight = Tensor::from_slice(&b.pitch_weight, n, dev)?;
    let total_weight = b.pitch_weight.iter().sum::<f32>().max(1.0) as f64;
    let pitch = (ce * &weight)?.sum_all()?.affine(1.0 / total_weight, 0.0)?;
    let voicing = weighted_bce(&heads.narrow(1, 0, 1)?.squeeze(1)?, &voiced, 1.0)?;
    let onset_l = weighted_bce_each(&heads.narrow(1, 1, 1)?.squeeze(1)?, &onset, &Tensor::from_slice(&b.onset_weight, n, dev)?)?;
    let total = ((&pitch + voicing.affine(2.0, 0.0)?)? + onset_l.affine(2.0, 0.0)?)?;
    Ok(((total, pitch, voicing, onset_l), (logits, heads)))
}

/// Frame-level validation: (raw pitch accuracy, voicing accuracy, loss).
fn validate(vars: &NetTensors, index: &Tensor, val: &[Example], d: usize, cfg: &TrainConfig, dev: &Device) -> candle_core::Result<(f32, f32, f32)> {
    let (mut voiced_ref, mut pitch_ok, mut frames, mut voicing_ok, mut loss_sum, mut batches) = (0usize, 0usize, 0usize, 0usize, 0f32, 0usize);
    for (e, ex) in val.iter().enumerate() {
        let picks: Vec<(usize, usize)> = (d..ex.frames).map(|t| (e, t)).collect();
        for chunk in picks.chunks(512) {
            let n = chunk.len();
            let b = make_batch(val, chunk, d, cfg);
            let ((l, ..), (logits, heads)) = losses(vars, index, &b, n, dev)?;
            let lg = logits.to_vec2::<f32>()?;
            let hd = heads.to_vec2::<f32>()?;
            for (i, &(_, t)) in chunk.iter().enumerate() {
                let f0 = val[e].f0[t - d];
                let est_voiced = hd[i][0] > 0.0;
                if f0.is_finite() {
                    voiced_ref += 1;
                    if (net::decode_pitch(&lg[i]) - f0).abs() < 0.5 {
                        pitch_ok += 1;
                    }
                }
                voicing_ok += (est_voiced == f0.is_finite()) as usize;
                frames += 1;
            }
            loss_sum += l.to_scalar::<f32>()?;
            batches += 1;
        }
    }
    Ok((pitch_ok as f32 / voiced_ref.max(1) as f32, voicing_ok as f32 / frames.max(1) as f32, loss_sum / batches.max(1) as f32))
}

/// Deterministic initial weights (He-scaled normal, zero biases) for `frames` context frames
/// (and the global pitch layer, drawn after the rest so that the other weights start as without).
fn init_vars(seed: u64, frames: usize, global: bool, dev: &Device) -> candle_core::Result<Vec<Var>> {
    let mut r = Rand::new(seed ^ 0x5eed_1157);
    let mut vars = Vec::new();
    for (name, shape) in &net::trainable_specs(frames, global) {
        let count: usize = shape.iter().product();
        let data: Vec<f32> = if shape.len() == 2 {
            let std = (2.0 / shape[0] as f32).sqrt();
            (0..count).map(|_| r.normal() * std).collect()
        } else if *name == "listener.net.bh2" {
            vec![0.0, -2.0] // onsets are rare: start near their prior
        } else {
            vec![0.0; count]
        };
        vars.push(Var::from_tensor(&Tensor::from_vec(data, shape.as_slice(), dev)?)?);
    }
    Ok(vars)
}

fn tensors_of(vars: &[Var]) -> NetTensors {
    NetTensors::from_vec(vars.iter().map(|v| v.as_tensor().clone()).collect())
}

/// The trained network as named host tensors (for a model file), calibration included.
pub fn export(vars: &NetTensors, detection_hops: usize, context: &[usize]) -> candle_core::Result<Vec<(&'static str, HostTensor)>> {
    let mut out = Vec::new();
    for ((name, shape), t) in net::trainable_specs(context.len(), vars.global.is_some()).into_iter().zip(vars.to_vec()) {
        out.push((name, HostTensor { shape, data: t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()? }));
    }
    // [voicing threshold, onset threshold, detection hops, level gate dBFS]: the trained voicing
    // already rejects noise and silence, so the level gate only stops near-silence (the clips
    // go down to −40 dBFS peak, a quiet voice's hops to −60 dBFS).
    out.push(("listener.net.calib", HostTensor { shape: vec![4], data: vec![0.5, 0.5, detection_hops as f32, -80.0] }));
    // Written unless the offsets are those a file without the tensor stands for.
    if context != CONTEXT {
        out.push(("listener.net.context", HostTensor { shape: vec![context.len()], data: context.iter().map(|&c| c as f32).collect() }));
    }
    Ok(out)
}

/// A training's result: the network tensors (name, values) and the log.
pub type Trained = (Vec<(&'static str, HostTensor)>, Vec<LogRow>);

/// Train; returns the network tensors and the log.
pub fn train(cfg: &TrainConfig, progress: &mut dyn FnMut(Progress)) -> candle_core::Result<Trained> {
    let dev = Device::Cpu;
    let d = cfg.detection_hops;
    assert!(d < net::history(&cfg.context), "detection hops must be inside the context");
    net::check_context(&cfg.context).map_err(candle_core::Error::Msg)?;
    progress(Progress::Data { done: 0, total: cfg.clips + cfg.val_clips });
    let train_set = make_examples(cfg.seed * 1_000_000, cfg.clips, Split::Train, cfg.steep_hums);
    progress(Progress::Data { done: cfg.clips, total: cfg.clips + cfg.val_clips });
    let val_set = make_examples(cfg.seed * 1_000_000 + 500_000, cfg.val_clips, Split::Heldout, false);
    progress(Progress::Data { done: cfg.clips + cfg.val_clips, total: cfg.clips + cfg.val_clips });
    // Every frame whose label hop exists.
    let all: Vec<(usize, usize)> = train_set.iter().enumerate().flat_map(|(e, ex)| (d..ex.frames).map(move |t| (e, t))).collect();
    let frames = cfg.context.len();
    let index = Tensor::from_vec(net::gather_index(frames), N_CANDIDATES * net::in_per_cand(frames), &dev)?;
    let vars = init_vars(cfg.seed, frames, cfg.global_pitch, &dev)?;
    let mut opt = AdamW::new(vars.clone(), ParamsAdamW { lr: cfg.lr, weight_decay: 1e-4, ..Default::default() })?;
    let mut r = Rand::new(cfg.seed ^ 0x0ba7_c4e5);
    let started = std::time::Instant::now();
    let mut log = Vec::new();
    let (mut acc, mut acc_p, mut acc_v, mut acc_o, mut acc_n) = (0f32, 0f32, 0f32, 0f32, 0usize);
    for step in 1..=cfg.steps {
        let lr = super::warmup_cosine_lr(step, cfg.steps, cfg.lr, 0.03);
        opt.set_learning_rate(lr);
        let picks: Vec<(usize, usize)> = (0..cfg.batch).map(|_| all[r.below(all.len())]).collect();
        let b = make_batch(&train_set, &picks, d, cfg);
        let t = tensors_of(&vars);
        let ((loss, p, v, o), _) = losses(&t, &index, &b, picks.len(), &dev)?;
        opt.backward_step(&loss)?;
        let l = loss.to_scalar::<f32>()?;
        acc += l;
        acc_p += p.to_scalar::<f32>()?;
        acc_v += v.to_scalar::<f32>()?;
        acc_o += o.to_scalar::<f32>()?;
        acc_n += 1;
        progress(Progress::Step { step, total: cfg.steps, loss: l });
        if step % cfg.log_every == 0 || step == cfg.steps {
            let k = acc_n.max(1) as f32;
            let (rpa, vacc, vloss) = if cfg.val_clips > 0 { validate(&t, &index, &val_set, d, cfg, &dev)? } else { (f32::NAN, f32::NAN, f32::NAN) };
            let row = LogRow {
                step,
                seconds: started.elapsed().as_secs_f64(),
                lr,
                loss: acc / k,
                pitch_loss: acc_p / k,
                voicing_loss: acc_v / k,
                onset_loss: acc_o / k,
                val_rpa: rpa,
                val_voicing: vacc,
                val_loss: vloss,
            };
            progress(Progress::Log(&row));
            log.push(row);
            (acc, acc_p, acc_v, acc_o, acc_n) = (0.0, 0.0, 0.0, 0.0, 0);
        }
    }
    Ok((export(&tensors_of(&vars), d, &cfg.context)?, log))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener_net::ListenerNet;
    use crate::timing::Timing;
    use crate::ProcessMode;

    #[test]
    fn a_tiny_training_lowers_the_loss() {
        // What CI can afford: 8 clips, 30 steps of 64 frames. The loss must fall clearly.
        let cfg = TrainConfig { clips: 8, val_clips: 0, steps: 30, batch: 64, log_every: 10, ..Default::default() };
        let (tensors, log) = train(&cfg, &mut |_| {}).unwrap();
        assert_eq!(log.len(), 3);
        let (first, last) = (log[0].loss, log[2].loss);
        eprintln!("loss over steps 1-10: {first:.3}, over steps 21-30: {last:.3}");
        assert!(first.is_finite() && last.is_finite());
        assert!(last < 0.8 * first, "loss did not fall: {first} -> {last}");
        // The network, its calibration, its context (not the offsets a file without one
        // stands for) and the global pitch layer.
        assert_eq!(tensors.len(), net::NET_NAMES.len() + 1 + net::GLOBAL_NAMES.len());
        // Seeded: the same command trains the same network.
        let (again, _) = train(&cfg, &mut |_| {}).unwrap();
        for ((n, a), (_, b)) in tensors.iter().zip(&again) {
            assert_eq!(a.data, b.data, "{n} differs between two runs with the same seed");
        }
    }

    #[test]
    fn streaming_steps_equal_the_batched_forward() {
        // The shipped context; a longer one as `train listener --hops 12 --context …` makes
        // (its own file tensor; 17 frames of history); and eight frames reaching 32 hops back
        // (a wider first layer and head).
        // The last adds the global pitch layer.
        for (context, delay, global) in [(CONTEXT.to_vec(), 3, false), (vec![0, 5, 9, 12, 14, 16], 12, false), (vec![0, 1, 2, 3, 5, 7, 12, 32], 3, false), (vec![0, 1, 2, 3, 5, 7, 12, 32], 3, true)] {
            let dev = Device::Cpu;
            let vars = init_vars(7, context.len(), global, &dev).unwrap();
            let mut all = crate::v0::build_tensors();
            all.extend(export(&tensors_of(&vars), delay, &context).unwrap());
            let bytes = crate::model::Model::serialize("test-net", &all).unwrap();
            let model = crate::model::Model::from_bytes(&bytes).unwrap();
            assert!(model.has_trained_listener());
            assert_eq!(model.get(net::GLOBAL_NAMES[0]).is_some(), global, "the file keeps the global pitch layer");
            assert_eq!(net::context_of(&model), context);
            assert_eq!(crate::generator::detection_delay(crate::generator::ListenerKind::Trained, &model), delay);
            // Only the engine's own delay plays.
            assert_eq!(model.clone().playable().is_ok(), delay == crate::timing::DETECTION_HOPS);
            let sr = 48000.0;
            let t = Timing::new(sr, 512, ProcessMode::Offline);
            let (clip, ..) = super::super::dataset::make_clip(3, Split::Heldout);
            let audio: Vec<f32> = if clip.sample_rate == sr { clip.audio } else { (0..48000).map(|i| (i as f32 * 0.05).sin() * 0.3).collect() };
            let (mags, frames) = crate::bench::analysis_frames(&audio, &t);
            let frames = frames.min(300);
            let mut a = ListenerNet::new(&model, &t, &dev).unwrap();
            let mut b = ListenerNet::new(&model, &t, &dev).unwrap();
            let batched = b.forward(&mags[..frames * t.analysis_bins], frames).unwrap();
            for (k, want) in batched.iter().enumerate() {
                let got = a.step(&mags[k * t.analysis_bins..(k + 1) * t.analysis_bins]).unwrap();
                assert!((got.pitch_midi - want.pitch_midi).abs() < 1e-3, "frame {k}: {got:?} vs {want:?}");
                assert!((got.confidence - want.confidence).abs() < 1e-3, "frame {k}: {got:?} vs {want:?}");
                assert!((got.periodicity - want.periodicity).abs() < 1e-4, "frame {k}: {got:?} vs {want:?}");
                assert!((got.flux - want.flux).abs() < 1e-4, "frame {k}: {got:?} vs {want:?}");
            }
            // The training reads stored frames by offset; the stream reads its ring: same rows.
            let feats: Vec<Vec<f32>> = (0..40).map(|k| (0..N_FEATURES).map(|f| ((k * 31 + f * 7) % 97) as f32 * 0.01).collect()).collect();
            let mut asm = net::InputAssembler::new(&context);
            let zeros = vec![0.0f32; N_FEATURES];
            let (row_len, nc) = (net::row_len(context.len()), context.len());
            for (k, f) in feats.iter().enumerate() {
                let (mut row, mut lv) = (vec![0.0; row_len], vec![0.0; nc]);
                asm.push(f, &mut row, &mut lv);
                let (mut row2, mut lv2) = (vec![0.0; row_len], vec![0.0; nc]);
                net::assemble(|back| if back <= k { &feats[k - back] } else { &zeros }, &context, &mut row2, &mut lv2);
                assert_eq!((row, lv), (row2, lv2), "frame {k}, context {context:?}");
            }
        }
    }

    #[test]
    fn a_model_file_whose_context_disagrees_with_its_layers_is_refused() {
        let vars = init_vars(7, 8, false, &Device::Cpu).unwrap();
        let file = |context: &[usize], tensors: &[(&'static str, HostTensor)]| {
            let mut all = crate::v0::build_tensors();
            all.extend(tensors.iter().filter(|(n, _)| *n != "listener.net.context").cloned());
            all.push(("listener.net.context", HostTensor { shape: vec![context.len()], data: context.iter().map(|&c| c as f32).collect() }));
            crate::model::Model::from_bytes(&crate::model::Model::serialize("test-net", &all).unwrap())
        };
        let eight = export(&tensors_of(&vars), 3, &[0, 1, 2, 3, 5, 7, 12, 32]).unwrap();
        assert!(file(&[0, 1, 2, 3, 5, 7, 12, 32], &eight).is_ok());
        // Eight frames' weights under six offsets: the first layer's shape is named.
        let err = file(&[0, 1, 2, 3, 5, 7], &eight).unwrap_err().to_string();
        assert!(err.contains("listener.net.w1") && err.contains("[168, 48]") && err.contains("[126, 48]"), "{err}");
        // More frames than a file may ask for, and none.
        let err = file(&[0; 13], &eight).unwrap_err().to_string();
        assert!(err.contains("1 to 12 context offsets, not 13"), "{err}");
        let err = file(&[], &eight).unwrap_err().to_string();
        assert!(err.contains("1 to 12 context offsets, not 0"), "{err}");
    }
}
