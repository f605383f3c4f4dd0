//! Engine benchmarks: the real path, timed with `std::time` (a plain harness, because the
//! audio-thread figure must exclude the time spent letting the worker catch up, which
//! criterion/divan cannot leave out of a timed closure).
//!
//! `cargo xtask bench` runs it twice with `RAYON_NUM_THREADS=1`: group `audio` (audio thread
//! per 64-sample block × sample rate) unpinned, so the worker runs on another core as in a
//! host; group `core` (inference per hop × sample rate, offline render speed on the demo
//! vocal, and the pianist alone with 8 voices) pinned to one core with `taskset -c 0`. No
//! argument runs both; `pianist` runs only the pianist group.

use std::sync::atomic::Ordering;
use std::time::Instant;

use hummingface_runtime::generator::Generator;
use hummingface_runtime::*;
use realfft::num_complex::Complex32;

fn demo(sr: f32) -> Vec<f32> {
    let (notes, total) = singer::demo_phrase();
    Singer::default().render(&notes, sr, total)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p) as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let want = |g: &str| args.is_empty() || args.iter().any(|a| a == g);
    let model = Model::embedded();
    println!("HummingFace engine benchmarks (model {}, RAYON_NUM_THREADS={})", model.name(), std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into()));
    if want("audio") {
        audio_thread(&model);
    }
    if want("core") {
        inference(&model);
        render(&model);
    }
    if want("core") || want("pianist") {
        pianist(&model);
    }
}

/// The pianist alone: one synthesized frame with 8 sounding voices (a held chord struck again
/// every second, so voices are at every age), this thread: the trained network at its control
/// rate (the default), the same network run for every voice on every hop (each hop then costs
/// what a hop with a forward pass costs), and v0.
fn pianist(model: &std::sync::Arc<Model>) {
    use hummingface_runtime::generator::{AnyPianist, PianistKind};
    use hummingface_runtime::pianist_net::{PianistNet, MAX_CONTROL_HOPS};
    use hummingface_runtime::tracker::TrackEvent;
    println!();
    println!("pianist per hop, 8 sounding voices (this thread, CPU)");
    println!("{:>18} {:>8} {:>10} {:>10} {:>10} {:>8} {:>16}", "pianist", "rate", "mean µs", "p99 µs", "max µs", "voices", "forwards/hop");
    let c = Controls::default();
    for (name, control) in [("trained", Some(MAX_CONTROL_HOPS)), ("trained every hop", Some(1)), ("v0", None)] {
        for sr in [44100.0f32, 48000.0, 96000.0] {
            let t = Timing::new(sr, 512, ProcessMode::Offline);
            let mut p = match control {
                Some(hops) => {
                    let mut net = PianistNet::new(model, t.sample_rate, t.hop, &candle_core::Device::Cpu).unwrap();
                    net.set_max_control_hops(hops);
                    AnyPianist::Net(Box::new(net))
                }
                None => {
                    let m = std::sync::Arc::new((**model).clone().with_pianist(PianistKind::V0));
                    AnyPianist::new(PianistKind::V0, &m, &t, &candle_core::Device::Cpu).unwrap()
                }
            };
            let mut spec = vec![Complex32::new(0.0, 0.0); t.synth_bins];
            let hops_per_s = (sr as usize / t.hop).max(1);
            let keys = [36u8, 43, 48, 55, 60, 64, 67, 72];
            let mut times = Vec::new();
            let mut voices = 0;
            let forwards = |p: &AnyPianist| match p {
                AnyPianist::Net(n) => n.forward_passes(),
                AnyPianist::V0(_) => 0,
            };
            let mut counted = (0u64, 0u64);
            for k in 0..hops_per_s * 6 {
                if k % hops_per_s == 0 {
                    // Restrike the chord (the old voices fade; keep 8 sounding).
                    for (i, &key) in keys.iter().enumerate() {
                        p.event(TrackEvent::Off { note: key }, &c);
                        p.event(TrackEvent::On { note: key, velocity: 0.3 + 0.08 * i as f32 }, &c);
                    }
                }
                let before = forwards(&p);
                let start = Instant::now();
                p.synthesize(&mut spec).unwrap();
                let us = start.elapsed().as_secs_f64() * 1e6;
                if k % hops_per_s > 4 {
                    // Steady state: 8 voices (the restruck ones have faded).
                    times.push(us);
                    voices = voices.max(p.active_voices());
                    counted = (counted.0 + forwards(&p) - before, counted.1 + 1);
                }
            }
            let mean = times.iter().sum::<f64>() / times.len() as f64;
            let max = times.iter().cloned().fold(0.0, f64::max);
            let p99 = percentile(&mut times, 0.99);
            let per_hop = if control.is_some() { format!("{:.2}", counted.0 as f64 / counted.1 as f64) } else { "–".into() };
            println!("{:>18} {:>8} {:>10.1} {:>10.1} {:>10.1} {:>8} {:>16}", name, sr, mean, p99, max, voices, per_hop);
        }
    }
}

fn audio_thread(model: &std::sync::Arc<Model>) {
    println!();
    println!("audio thread, 64-sample blocks (real-time mode; worker catch-up not timed)");
    println!("{:>8} {:>10} {:>10} {:>10} {:>12}", "rate", "mean µs", "p99 µs", "max µs", "% of core");
    for sr in [44100.0f32, 48000.0, 96000.0] {
        let audio = demo(sr);
        let mut engine = Engine::new(
            EngineConfig { sample_rate: sr, max_block: 64, mode: ProcessMode::Realtime, device: DeviceChoice::Cpu },
            model.clone(),
        )
        .unwrap();
        let stats = engine.stats();
        let mut wet = vec![0.0f32; 64];
        let mut times = Vec::new();
        for chunk in audio.chunks_exact(64) {
            let t = Instant::now();
            engine.process(chunk, &mut wet, &Controls::default(), &mut |_| {});
            times.push(t.elapsed().as_secs_f64() * 1e6);
            while stats.frames_done.load(Ordering::Acquire) < stats.frames.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        }
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        let max = times.iter().cloned().fold(0.0, f64::max);
        let p99 = percentile(&mut times, 0.99);
        let block_us = 64.0 / sr as f64 * 1e6;
        println!("{:>8} {:>10.2} {:>10.2} {:>10.1} {:>11.2}%", sr, mean, p99, max, 100.0 * mean / block_us);
    }

}

fn inference(model: &std::sync::Arc<Model>) {
    println!();
    println!("inference per hop (listener + tracker + pianist, this thread, CPU)");
    println!("{:>8} {:>8} {:>10} {:>10} {:>14}", "rate", "hop", "mean µs", "p99 µs", "hop budget µs");
    for sr in [44100.0f32, 48000.0, 96000.0] {
        let t = Timing::new(sr, 512, ProcessMode::Offline);
        let mut gen = Generator::new(model, &t, &candle_core::Device::Cpu).unwrap();
        let audio = demo(sr);
        // The frames exactly as the engine's audio side makes them.
        let (mags, frames) = hummingface_runtime::bench::analysis_frames(&audio, &t);
        let bins = t.analysis_bins;
        let mut spec = vec![Complex32::new(0.0, 0.0); t.synth_bins];
        let mut times = Vec::with_capacity(frames);
        let c = Controls::default();
        for k in 0..frames {
            let hop = &audio[k * t.hop..(k + 1) * t.hop];
            let start = Instant::now();
            gen.step(&mags[k * bins..(k + 1) * bins], hop, &c, &mut spec, &mut |_| {}).unwrap();
            times.push(start.elapsed().as_secs_f64() * 1e6);
        }
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        let p99 = percentile(&mut times, 0.99);
        println!("{:>8} {:>8} {:>10.1} {:>10.1} {:>14.0}", sr, t.hop, mean, p99, t.hop_seconds() as f64 * 1e6);
    }
}

fn render(model: &std::sync::Arc<Model>) {
    use hummingface_runtime::generator::PianistKind;
    println!();
    println!("offline render of the demo vocal (whole path: engine + worker + mixer), best of 3");
    println!("{:>8} {:>8} {:>10} {:>10} {:>14} {:>8}", "pianist", "rate", "audio s", "render s", "× real time", "notes");
    for kind in [PianistKind::Trained, PianistKind::V0] {
        let m = std::sync::Arc::new((**model).clone().with_pianist(kind));
        for sr in [44100.0f32, 48000.0] {
            let audio = demo(sr);
            let mut best = f64::INFINITY;
            let mut notes = 0;
            for _ in 0..3 {
                let r = render_offline(std::slice::from_ref(&audio), sr, &RenderOptions { device: DeviceChoice::Cpu, ..Default::default() }, m.clone(), &mut |_| {}).unwrap();
                best = best.min(r.elapsed_s);
                notes = r.notes.len();
            }
            let secs = audio.len() as f64 / sr as f64;
            println!("{:>8} {:>8} {:>10.2} {:>10.3} {:>14.1} {:>8}", kind.name(), sr, secs, best, secs / best, notes);
        }
    }
}
