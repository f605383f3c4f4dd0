//! What the editor shows about the running plugin, shared lock-free with the audio side: the
//! pitch feed (every decided frame, from the inference worker), input and output peak meters
//! (from `process()`), and which engine is running (set in `activate()`).
//!
//! Nothing here is computed while no editor is open: the editor turns the feed and the meters on
//! when it opens (and on every frame it draws), and `process()` turns them off once the editor's
//! window is gone (nice-plug-egui does not tell the editor when it closes).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use hummingface_runtime::{EngineStats, PitchFeed};

/// The running engine, as the editor describes it. Replaced on every activation.
#[derive(Debug, Clone)]
pub struct EngineInfo {
    /// Counters and readings of the engine (late frames, inference time, …).
    pub stats: Arc<EngineStats>,
    /// Device the generator runs on, e.g. `cpu` or `cuda:0`.
    pub device: String,
    /// Why the requested device was not used, if it was not.
    pub device_note: Option<String>,
    /// Host sample rate, Hz.
    pub sample_rate: f32,
    /// Analysis hop, samples (the inference worker has this long per frame).
    pub hop: usize,
    /// Whether the engine waits for every frame (an offline bounce).
    pub offline: bool,
    /// The model running, e.g. `hummingface-v1 (built in)` or `name (/path/file.safetensors)`.
    pub model: String,
    /// Why the model file asked for is not used (the built-in model runs instead), if so.
    pub model_note: Option<String>,
}

/// Shared between the plugin (audio thread, `activate()`) and the editor (GUI thread).
#[derive(Debug, Default)]
pub struct Monitor {
    /// Per-frame pitch and note; the inference worker pushes while it is enabled.
    pub feed: Arc<PitchFeed>,
    /// Whether `process()` measures the meters.
    metering: AtomicBool,
    /// Largest absolute input sample since the editor last read it, as `f32` bits (non-negative
    /// floats order like their bits, so `fetch_max` on the bits is a float maximum).
    input_peak: AtomicU32,
    /// The same for the output.
    output_peak: AtomicU32,
    /// The running engine; `None` while the plugin is not active. Locked only by `activate()`,
    /// `deactivate()` and the editor, never by the audio thread.
    engine: Mutex<Option<EngineInfo>>,
}

impl Monitor {
    /// Turn the feed and the meters on (editor opened) or off (editor closed).
    pub fn set_watching(&self, on: bool) {
        self.feed.set_enabled(on);
        self.metering.store(on, Ordering::Release);
        if !on {
            self.input_peak.store(0, Ordering::Relaxed);
            self.output_peak.store(0, Ordering::Relaxed);
        }
    }

    /// Whether the meters are wanted (audio thread: skip the peak scans otherwise).
    pub fn metering(&self) -> bool {
        self.metering.load(Ordering::Relaxed)
    }

    /// Audio thread: the peak of one block of input channels. Allocation- and lock-free.
    pub fn note_input(&self, channels: &[&mut [f32]]) {
        self.input_peak.fetch_max(peak(channels).to_bits(), Ordering::Relaxed);
    }

    /// Audio thread: the peak of one block of output channels.
    pub fn note_output(&self, channels: &[&mut [f32]]) {
        self.output_peak.fetch_max(peak(channels).to_bits(), Ordering::Relaxed);
    }

    /// GUI: the input and output peaks (linear) since the last call.
    pub fn take_peaks(&self) -> (f32, f32) {
        (
            f32::from_bits(self.input_peak.swap(0, Ordering::Relaxed)),
            f32::from_bits(self.output_peak.swap(0, Ordering::Relaxed)),
        )
    }

    /// `activate()` / `deactivate()`: the engine now running.
    pub fn set_engine(&self, info: Option<EngineInfo>) {
        if let Ok(mut slot) = self.engine.lock() {
            *slot = info;
        }
    }

    /// GUI: the engine now running.
    pub fn engine(&self) -> Option<EngineInfo> {
        self.engine.lock().ok().and_then(|e| e.clone())
    }
}

/// Largest finite absolute sample, ≥ 0.
fn peak(channels: &[&mut [f32]]) -> f32 {
    let mut p = 0.0f32;
    for ch in channels {
        for &x in ch.iter() {
            let a = x.abs();
            if a > p && a.is_finite() {
                p = a;
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_are_maxima_since_the_last_read() {
        let m = Monitor::default();
        let mut a = [0.1f32, -0.5, f32::NAN];
        let mut b = [0.25f32, f32::INFINITY];
        m.note_input(&[&mut a, &mut b]);
        let mut c = [0.3f32];
        m.note_input(&[&mut c]);
        m.note_output(&[&mut c]);
        assert_eq!(m.take_peaks(), (0.5, 0.3));
        assert_eq!(m.take_peaks(), (0.0, 0.0));
    }
}
