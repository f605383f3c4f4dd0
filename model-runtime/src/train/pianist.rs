//! Training the pianist network (`cargo xtask train pianist`): Candle on the CPU, seeded.
//!
//! Data: every key of FluidR3's grand at [`TRAIN_VELOCITIES`] (and [`VAL_VELOCITIES`] for
//! validation), analysed by [`super::piano_data`]. Each step draws random analysed frames and
//! minimises
//! - partial amplitudes: squared error in log10 amplitude (1 = 20 dB), partials in band only,
//!   with everything more than [`REL_FLOOR`] below the frame's loudest partial treated as "at
//!   most the floor" (the analysis cannot see below it);
//! - partial frequencies: squared error of the deviation from `n·f₁` (units of 100 cents);
//! - noise: squared error of the log10 power density per band,
//!
//! with AdamW, warm-up then cosine decay.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

use super::piano_data::{PianoNote, LOG_FLOOR, NOISE_FLOOR_LOG10};
use super::voice::Rand;
use crate::model::HostTensor;
use crate::pianist_net::{self as net, NetTensors, AMP_OFFSET, CENTS_SCALE, IN, NET_SPECS, NOISE_BANDS, NOISE_OFFSET, OUT, PARTIALS};

pub use super::piano_data::{TRAIN_VELOCITIES, VAL_VELOCITIES};

/// Partials more than this far (log10) below the frame's loudest are "at most this".
pub const REL_FLOOR: f32 = 3.5;

#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub seed: u64,
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub log_every: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig { seed: 1, steps: 8000, batch: 512, lr: 2e-3, log_every: 500 }
    }
}

/// One row of the training log.
#[derive(Debug, Clone, Default)]
pub struct LogRow {
    pub step: usize,
    pub seconds: f64,
    pub lr: f64,
    pub loss: f32,
    pub amp_loss: f32,
    pub cents_loss: f32,
    pub noise_loss: f32,
    /// Validation: RMS amplitude error of partials within 40 dB of the loudest, dB.
    pub val_amp_db: f32,
    pub val_loss: f32,
}

pub enum Progress<'a> {
    Step { step: usize, total: usize, loss: f32 },
    Log(&'a LogRow),
}

/// Analysed frames flattened into training arrays.
pub struct FrameSet {
    pub n: usize,
    pub x: Vec<f32>,
    /// Amplitude targets (log10, raised to the frame's floor) and their floors.
    pub amp: Vec<f32>,
    pub floor: Vec<f32>,
    /// 1 for partials in band.
    pub mask: Vec<f32>,
    pub cents: Vec<f32>,
    pub noise: Vec<f32>,
}

impl FrameSet {
    pub fn new(notes: &[PianoNote]) -> FrameSet {
        let n: usize = notes.iter().map(|nt| nt.frames.len()).sum();
        let mut s = FrameSet {
            n,
            x: vec![0.0; n * IN],
            amp: vec![0.0; n * PARTIALS],
            floor: vec![0.0; n * PARTIALS],
            mask: vec![0.0; n * PARTIALS],
            cents: vec![0.0; n * PARTIALS],
            noise: vec![0.0; n * NOISE_BANDS],
        };
        let mut i = 0;
        for note in notes {
            let vel = note.velocity as f32 / 127.0;
            for fr in &note.frames {
                net::input_row(note.key, vel, fr.t, fr.r, &mut s.x[i * IN..(i + 1) * IN]);
                let loudest = fr.amp[..note.partials_in_band].iter().cloned().fold(LOG_FLOOR, f32::max);
                let floor = (loudest - REL_FLOOR).max(LOG_FLOOR);
                for p in 0..PARTIALS {
                    let j = i * PARTIALS + p;
                    s.floor[j] = floor;
                    s.amp[j] = fr.amp[p].max(floor);
                    s.mask[j] = (p < note.partials_in_band) as u8 as f32;
                    s.cents[j] = note.cents[p];
                }
                for b in 0..NOISE_BANDS {
                    s.noise[i * NOISE_BANDS + b] = fr.noise[b].max(NOISE_FLOOR_LOG10);
                }
                i += 1;
            }
        }
        s
    }

    fn batch(&self, picks: &[usize], dev: &Device) -> candle_core::Result<[Tensor; 6]> {
        let b = picks.len();
        let take = |src: &[f32], w: usize| -> Vec<f32> { picks.iter().flat_map(|&i| src[i * w..(i + 1) * w].iter().copied()).collect() };
        Ok([
            Tensor::from_vec(take(&self.x, IN), (b, IN), dev)?,
            Tensor::from_vec(take(&self.amp, PARTIALS), (b, PARTIALS), dev)?,
            Tensor::from_vec(take(&self.floor, PARTIALS), (b, PARTIALS), dev)?,
            Tensor::from_vec(take(&self.mask, PARTIALS), (b, PARTIALS), dev)?,
            Tensor::from_vec(take(&self.cents, PARTIALS), (b, PARTIALS), dev)?,
            Tensor::from_vec(take(&self.noise, NOISE_BANDS), (b, NOISE_BANDS), dev)?,
        ])
    }
}

/// (total, amp, cents, noise) losses and the decoded amplitude prediction (raised to the floor).
fn losses(net: &NetTensors, t: &[Tensor; 6]) -> candle_core::Result<(Tensor, Tensor, Tensor, Tensor, Tensor)> {
    let [x, amp, floor, mask, cents, noise] = t;
    let raw = net::forward(net, x)?;
    let pa = raw.narrow(1, 0, PARTIALS)?.affine(1.0, AMP_OFFSET as f64)?;
    // max(pred, floor) = floor + relu(pred − floor)
    let pa = (floor + (pa - floor)?.relu()?)?;
    let n_mask = mask.sum_all()?.to_scalar::<f32>()?.max(1.0) as f64;
    let amp_l = (((&pa - amp)?.sqr()? * mask)?.sum_all()?).affine(1.0 / n_mask, 0.0)?;
    let pc = raw.narrow(1, PARTIALS, PARTIALS)?;
    let cents_l = (((pc - cents.affine(1.0 / CENTS_SCALE as f64, 0.0)?)?.sqr()? * mask)?.sum_all()?).affine(1.0 / n_mask, 0.0)?;
    let pn = raw.narrow(1, 2 * PARTIALS, NOISE_BANDS)?.affine(1.0, NOISE_OFFSET as f64)?;
    let noise_l = (pn - noise)?.sqr()?.mean_all()?;
    let total = ((&amp_l + cents_l.affine(0.5, 0.0)?)? + noise_l.affine(0.1, 0.0)?)?;
    Ok((total, amp_l, cents_l, noise_l, pa))
}

/// Validation: mean loss and RMS dB error of partials within 40 dB of the loudest.
fn validate(net: &NetTensors, val: &FrameSet, dev: &Device) -> candle_core::Result<(f32, f32)> {
    let (mut loss, mut batches, mut se, mut count) = (0f32, 0usize, 0f64, 0usize);
    let all: Vec<usize> = (0..val.n).collect();
    for chunk in all.chunks(2048) {
        let t = val.batch(chunk, dev)?;
        let (l, _, _, _, pa) = losses(net, &t)?;
        loss += l.to_scalar::<f32>()?;
        batches += 1;
        let pa = pa.to_vec2::<f32>()?;
        for (row, &i) in pa.iter().zip(chunk) {
            let tgt = &val.amp[i * PARTIALS..(i + 1) * PARTIALS];
            let mask = &val.mask[i * PARTIALS..(i + 1) * PARTIALS];
            let loudest = tgt.iter().zip(mask).filter(|(_, &m)| m > 0.0).map(|(a, _)| *a).fold(LOG_FLOOR, f32::max);
            for p in 0..PARTIALS {
                if mask[p] > 0.0 && tgt[p] > loudest - 2.0 {
                    se += ((row[p] - tgt[p]) as f64 * 20.0).powi(2);
                    count += 1;
                }
            }
        }
    }
    Ok((loss / batches.max(1) as f32, (se / count.max(1) as f64).sqrt() as f32))
}

fn init_vars(seed: u64, data: &FrameSet, dev: &Device) -> candle_core::Result<Vec<Var>> {
    let mut r = Rand::new(seed ^ 0x091a_0157);
    // The output bias starts at the data's mean level per partial and band.
    let mut out_bias = vec![0.0f32; OUT];
    for p in 0..PARTIALS {
        let (mut s, mut c) = (0.0f64, 0usize);
        for i in 0..data.n {
            if data.mask[i * PARTIALS + p] > 0.0 {
                s += data.amp[i * PARTIALS + p] as f64;
                c += 1;
            }
        }
        out_bias[p] = if c > 0 { (s / c as f64) as f32 - AMP_OFFSET } else { LOG_FLOOR - AMP_OFFSET };
    }
    for b in 0..NOISE_BANDS {
        let m = (0..data.n).map(|i| data.noise[i * NOISE_BANDS + b] as f64).sum::<f64>() / data.n.max(1) as f64;
        out_bias[2 * PARTIALS + b] = m as f32 - NOISE_OFFSET;
    }
    let mut vars = Vec::new();
    for (name, shape) in NET_SPECS {
        let count: usize = shape.iter().product();
        let data: Vec<f32> = if shape.len() == 2 {
            let std = (2.0 / shape[0] as f32).sqrt() * if *name == "pianist.net.w4" { 0.1 } else { 1.0 };
            (0..count).map(|_| r.normal() * std).collect()
        } else if *name == "pianist.net.b4" {
            out_bias.clone()
        } else {
            vec![0.0; count]
        };
        vars.push(Var::from_tensor(&Tensor::from_vec(data, *shape, dev)?)?);
    }
    Ok(vars)
}

fn tensors_of(vars: &[Var]) -> NetTensors {
    NetTensors::from_vec(vars.iter().map(|v| v.as_tensor().clone()).collect())
}

pub fn export(net: &NetTensors) -> candle_core::Result<Vec<(&'static str, HostTensor)>> {
    let mut out = Vec::new();
    for ((name, shape), t) in NET_SPECS.iter().zip(net.to_vec()) {
        out.push((*name, HostTensor { shape: shape.to_vec(), data: t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()? }));
    }
    Ok(out)
}

/// A training's result: the network tensors (name, values) and the log.
pub type Trained = (Vec<(&'static str, HostTensor)>, Vec<LogRow>);

/// Train on `train_notes`, validating on `val_notes` every `log_every` steps.
pub fn train(
    cfg: &TrainConfig,
    train_notes: &[PianoNote],
    val_notes: &[PianoNote],
    progress: &mut dyn FnMut(Progress),
) -> candle_core::Result<Trained> {
    let dev = Device::Cpu;
    let data = FrameSet::new(train_notes);
    let val = FrameSet::new(val_notes);
    let vars = init_vars(cfg.seed, &data, &dev)?;
    let mut opt = AdamW::new(vars.clone(), ParamsAdamW { lr: cfg.lr, weight_decay: 1e-5, ..Default::default() })?;
    let mut r = Rand::new(cfg.seed ^ 0x9a40_b47c);
    let started = std::time::Instant::now();
    let mut log = Vec::new();
    let (mut acc, mut acc_a, mut acc_c, mut acc_n, mut k) = (0f32, 0f32, 0f32, 0f32, 0usize);
    for step in 1..=cfg.steps {
        let lr = super::warmup_cosine_lr(step, cfg.steps, cfg.lr, 0.02);
        opt.set_learning_rate(lr);
        let picks: Vec<usize> = (0..cfg.batch).map(|_| r.below(data.n)).collect();
        let t = data.batch(&picks, &dev)?;
        let net = tensors_of(&vars);
        let (loss, a, c, n, _) = losses(&net, &t)?;
        opt.backward_step(&loss)?;
        let l = loss.to_scalar::<f32>()?;
        acc += l;
        acc_a += a.to_scalar::<f32>()?;
        acc_c += c.to_scalar::<f32>()?;
        acc_n += n.to_scalar::<f32>()?;
        k += 1;
        progress(Progress::Step { step, total: cfg.steps, loss: l });
        if step % cfg.log_every == 0 || step == cfg.steps {
            let kk = k.max(1) as f32;
            let (vl, vdb) = if val.n > 0 { validate(&net, &val, &dev)? } else { (f32::NAN, f32::NAN) };
            let row = LogRow {
                step,
                seconds: started.elapsed().as_secs_f64(),
                lr,
                loss: acc / kk,
                amp_loss: acc_a / kk,
                cents_loss: acc_c / kk,
                noise_loss: acc_n / kk,
                val_amp_db: vdb,
                val_loss: vl,
            };
            progress(Progress::Log(&row));
            log.push(row);
            (acc, acc_a, acc_c, acc_n, k) = (0.0, 0.0, 0.0, 0.0, 0);
        }
    }
    Ok((export(&tensors_of(&vars))?, log))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::piano_data::{analyse_font, Font, FLUID_R3};

    /// Four treble keys at two velocities of the real recordings (short holds keep it quick).
    fn tiny_data() -> (Vec<PianoNote>, Vec<PianoNote>) {
        let font = Font::open(std::path::Path::new(FLUID_R3))
            .unwrap_or_else(|e| panic!("{e} (install fluid-soundfont-gm: `cargo xtask setup` as root)"));
        let keys = [84u8, 91, 96, 103];
        (analyse_font(&font, &[48, 112], keys.into_iter(), &|| {}), analyse_font(&font, &[80], keys.into_iter(), &|| {}))
    }

    #[test]
    fn a_tiny_training_on_the_recordings_lowers_the_loss_and_is_reproducible() {
        let (train_notes, val_notes) = tiny_data();
        let cfg = TrainConfig { steps: 60, batch: 128, log_every: 20, ..Default::default() };
        let (tensors, log) = train(&cfg, &train_notes, &val_notes, &mut |_| {}).unwrap();
        assert_eq!(log.len(), 3);
        let (first, last) = (log[0].loss, log[2].loss);
        eprintln!(
            "loss over steps 1-20: {first:.4}, over steps 41-60: {last:.4}; held-out partial level error {:.2} → {:.2} dB",
            log[0].val_amp_db, log[2].val_amp_db
        );
        assert!(first.is_finite() && last.is_finite());
        assert!(last < 0.7 * first, "loss did not fall: {first} -> {last}");
        assert_eq!(tensors.len(), NET_SPECS.len());
        let (again, _) = train(&cfg, &train_notes, &val_notes, &mut |_| {}).unwrap();
        for ((n, a), (_, b)) in tensors.iter().zip(&again) {
            assert_eq!(a.data, b.data, "{n} differs between two runs with the same seed");
        }
    }
}
