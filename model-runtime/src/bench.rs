//! CPU vs GPU measurements of the generator (issue 7): per-hop latency in real-time mode (one
//! frame at a time, so launch overhead counts), batched offline throughput of the listener,
//! the full offline render on each device, and the largest CPU/GPU differences.

use std::sync::Arc;
use std::time::Instant;

use candle_core::Device;
use serde_json::{json, Value};

use crate::generator::{AnyListener, ListenerKind};
use crate::listener::ListenerFrame;
use crate::model::{DeviceChoice, Model};
use crate::render::{render_offline, RenderOptions};
use crate::timing::Timing;
use crate::ProcessMode;

/// Analysis magnitudes of every hop of `audio`, row-major `[frames, analysis_bins]`, exactly
/// as the engine's audio side computes them.
pub fn analysis_frames(audio: &[f32], t: &Timing) -> (Vec<f32>, usize) {
    let mut analyzer = crate::features::Analyzer::new(t);
    let frames = audio.len() / t.hop;
    let mut out = Vec::with_capacity(frames * t.analysis_bins);
    let mut newest = vec![0.0f32; t.win_len];
    for k in 0..frames {
        let end = (k + 1) * t.hop;
        for (i, x) in newest.iter_mut().enumerate() {
            let s = end as isize - t.win_len as isize + i as isize;
            *x = if s >= 0 { audio[s as usize] } else { 0.0 };
        }
        out.extend_from_slice(analyzer.analyse(&newest));
    }
    (out, frames)
}

fn stats_us(mut v: Vec<f64>) -> Value {
    v.sort_by(|a, b| a.total_cmp(b));
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    let p = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
    json!({"mean_us": mean, "p50_us": p(0.5), "p99_us": p(0.99), "max_us": p(1.0), "n": v.len()})
}

fn device_report(device: &Device, model: &Model, t: &Timing, mags: &[f32], frames: usize, seconds: f64) -> candle_core::Result<(Value, Vec<ListenerFrame>)> {
    let bins = t.analysis_bins;
    // Real-time mode: one frame at a time, result read back every hop.
    // (On the CPU in a one-thread pool, exactly as the engine's worker runs it.)
    // The shipped listener (the trained one when the model carries it).
    let mut l = AnyListener::new(ListenerKind::Trained, model, t, device)?;
    let n_step = frames.min(1000);
    let times = crate::generator::single_threaded(|| -> candle_core::Result<Vec<f64>> {
        let mut sal = Vec::new();
        for k in 0..20.min(n_step) {
            l.step(&mags[k * bins..(k + 1) * bins], &mut sal)?;
        }
        l.reset();
        let mut times = Vec::with_capacity(n_step);
        for k in 0..n_step {
            let s = Instant::now();
            l.step(&mags[k * bins..(k + 1) * bins], &mut sal)?;
            times.push(s.elapsed().as_secs_f64() * 1e6);
        }
        Ok(times)
    })?;
    // Offline: batched frames.
    let mut batched = serde_json::Map::new();
    let mut reference = Vec::new();
    for batch in [64usize, 512, 4096] {
        let mut best = f64::INFINITY;
        for rep in 0..3 {
            l.reset();
            let s = Instant::now();
            let mut out = Vec::with_capacity(frames);
            let mut k = 0;
            while k < frames {
                let n = batch.min(frames - k);
                out.extend(l.forward(&mags[k * bins..(k + n) * bins], n)?);
                k += n;
            }
            device.synchronize()?;
            let el = s.elapsed().as_secs_f64();
            if rep > 0 || batch != 64 {
                best = best.min(el);
            }
            if batch == 512 {
                reference = out;
            }
        }
        batched.insert(format!("batch_{batch}"), json!({"seconds": best, "frames_per_s": frames as f64 / best, "x_realtime": seconds / best}));
    }
    let kind = format!("{:?}", l.kind());
    Ok((json!({"listener": kind, "step_per_hop": stats_us(times), "listener_batched": Value::Object(batched)}), reference))
}

/// Run the comparison on `audio` (mono) at `sample_rate`. CUDA is measured when it is usable.
pub fn compare_devices(audio: &[f32], sample_rate: f32, model: Arc<Model>) -> Result<Value, String> {
    crate::generator::pin_thread_count_env();
    let t = Timing::new(sample_rate, 1024, ProcessMode::Offline);
    let seconds = audio.len() as f64 / sample_rate as f64;
    let (mags, frames) = analysis_frames(audio, &t);
    let (cuda, cuda_note) = crate::generator::select_device(DeviceChoice::Cuda);
    let mut devices = vec![("cpu", Device::Cpu)];
    if cuda.is_cuda() {
        devices.push(("cuda", cuda));
    }
    let mut report = serde_json::Map::new();
    report.insert("input_seconds".into(), json!(seconds));
    report.insert("sample_rate".into(), json!(sample_rate));
    report.insert("frames".into(), json!(frames));
    report.insert("hop".into(), json!(t.hop));
    report.insert("cuda_note".into(), json!(cuda_note));
    let mut outputs: Vec<Vec<ListenerFrame>> = Vec::new();
    let mut renders: Vec<Vec<f32>> = Vec::new();
    for (name, dev) in &devices {
        let (mut r, frames_out) = device_report(dev, &model, &t, &mags, frames, seconds).map_err(|e| format!("{name}: {e}"))?;
        let choice = if *name == "cpu" { DeviceChoice::Cpu } else { DeviceChoice::Cuda };
        let opts = RenderOptions { device: choice, ..Default::default() };
        let mut best = f64::INFINITY;
        let mut last = None;
        for _ in 0..2 {
            let res = render_offline(&[audio.to_vec()], sample_rate, &opts, model.clone(), &mut |_| {}).map_err(|e| e.to_string())?;
            best = best.min(res.elapsed_s);
            last = Some(res);
        }
        let res = last.ok_or("no render")?;
        r["render_offline"] = json!({"seconds": best, "x_realtime": seconds / best, "device": res.device, "notes": res.notes.len()});
        report.insert(name.to_string(), r);
        outputs.push(frames_out);
        renders.push(res.channels[0].clone());
    }
    if outputs.len() == 2 {
        let (a, b) = (&outputs[0], &outputs[1]);
        let mut d_per = 0.0f32;
        let mut d_flux = 0.0f32;
        let mut pitch_disagree = 0;
        for (x, y) in a.iter().zip(b) {
            d_per = d_per.max((x.periodicity - y.periodicity).abs());
            d_flux = d_flux.max((x.flux - y.flux).abs());
            if (x.pitch_midi - y.pitch_midi).abs() > 0.01 {
                pitch_disagree += 1;
            }
        }
        let d_audio = renders[0].iter().zip(&renders[1]).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        report.insert(
            "cpu_vs_cuda".into(),
            json!({"max_abs_periodicity": d_per, "max_abs_flux": d_flux, "frames_pitch_differs": pitch_disagree, "max_abs_render_sample": d_audio}),
        );
    }
    Ok(Value::Object(report))
}
