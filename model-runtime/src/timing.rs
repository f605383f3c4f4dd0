//! Frame sizes and latency, per sample rate and waiting policy.
//!
//! Durations are fixed and sample counts follow the rate, so the listener sees the same time
//! span at 8 kHz and at 192 kHz.
//!
//! The latency, exactly: analysis hop `j` holds input samples `[jH, (j+1)H)`. The listener's
//! frame `j` first hears a note clearly when the note began `c` hops earlier (its detection
//! delay), on average at `(j - c)H + H/2`. The tracker decides about hop `j` once it has seen
//! `d` more hops (its lookahead). In real time the result is used `B` samples after the frame
//! was handed to the worker (the slack: one host block plus a wake-up margin, so the worker runs
//! while the host processes its block); offline `B = 0` because the audio thread waits. The
//! piano frame for hop `j` then starts leaving the output at `(j + d + 1)H + B` and its attack
//! reaches half level `H/2` later. The latency is therefore `(c + d + 1)·H + B` samples; with
//! notes placed with lookahead, `P·H` more (`P` = [`Timing::placement_hops`]).

use crate::ProcessMode;

/// Analysis and synthesis hop, seconds (256 samples at 48 kHz).
pub const HOP_SECONDS: f64 = 256.0 / 48000.0;
/// Analysis window, seconds (2048 samples at 48 kHz): long enough for E2's harmonics.
pub const WINDOW_SECONDS: f64 = 2048.0 / 48000.0;
/// Hops the note tracker looks ahead before it commits to a decision.
pub const LOOKAHEAD_HOPS: usize = 0;
/// Hops of a note the listener must hear before its frames say "voiced, this pitch": the
/// analysis frame that first hears a note clearly ends this many hops after the sung onset
/// (measured: `cargo xtask eval` reports the median onset error with this included).
pub const DETECTION_HOPS: usize = 3;
/// Real-time slack beyond the host's largest block, seconds: time for the worker to wake.
pub const SLACK_MARGIN_SECONDS: f64 = 0.001;
/// Most real-time slack, seconds (larger host blocks than this produce late frames).
pub const MAX_SLACK_SECONDS: f64 = 0.1;
/// Highest frequency the listener looks at, Hz (the features stop at ≈ 4.9 kHz).
pub const ANALYSIS_MAX_HZ: f32 = 5200.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Samples per second.
    pub sample_rate: f32,
    /// Hop, samples (analysis and synthesis).
    pub hop: usize,
    /// Analysis window, samples (the newest `win_len` input samples).
    pub win_len: usize,
    /// Analysis FFT size, samples (next power of two ≥ `win_len`, zero padded).
    pub fft_len: usize,
    /// Analysis bins sent to the worker: those up to [`ANALYSIS_MAX_HZ`].
    pub analysis_bins: usize,
    /// Synthesis frame, samples (`2 * hop`, periodic Hann, 50 % overlap).
    pub synth_len: usize,
    /// Synthesis spectrum bins (`hop + 1`).
    pub synth_bins: usize,
    /// Tracker lookahead, hops.
    pub lookahead_hops: usize,
    /// Listener detection delay, hops.
    pub detection_hops: usize,
    /// Real-time slack, samples (0 offline): the result for a hop is needed this long after
    /// the hop's frame was handed over (one host block plus a wake-up margin).
    pub slack: usize,
    /// Hops the engine waits before playing notes placed with lookahead (0: notes play as
    /// they are decided; see [`Timing::placing_notes`]).
    pub placement_hops: usize,
    /// Reported latency, samples.
    pub latency: usize,
}

impl Timing {
    /// Sizes for `sample_rate`, the host's largest block and the waiting policy.
    pub fn new(sample_rate: f32, max_block: usize, mode: ProcessMode) -> Timing {
        let sr = sample_rate as f64;
        let hop = ((sr * HOP_SECONDS).round() as usize).max(8);
        let win_len = ((sr * WINDOW_SECONDS).round() as usize).max(4 * hop);
        let fft_len = win_len.next_power_of_two();
        let bin_hz = sample_rate / fft_len as f32;
        let analysis_bins = (((ANALYSIS_MAX_HZ.min(sample_rate * 0.5)) / bin_hz) as usize + 2).min(fft_len / 2 + 1);
        let slack = match mode {
            ProcessMode::Offline => 0,
            ProcessMode::Realtime => {
                let margin = (sr * SLACK_MARGIN_SECONDS).round() as usize;
                (max_block.max(1) + margin).min((sr * MAX_SLACK_SECONDS) as usize)
            }
        };
        let lookahead_hops = LOOKAHEAD_HOPS;
        Timing {
            sample_rate,
            hop,
            win_len,
            fft_len,
            analysis_bins,
            synth_len: 2 * hop,
            synth_bins: hop + 1,
            lookahead_hops,
            detection_hops: DETECTION_HOPS,
            slack,
            placement_hops: 0,
            latency: (DETECTION_HOPS + lookahead_hops + 1) * hop + slack,
        }
    }

    /// The same, with notes placed with lookahead ([`crate::lookahead`]): the notes, and the
    /// latency, come [`crate::lookahead::placement_hops`] hops later.
    pub fn placing_notes(mut self) -> Timing {
        self.latency -= self.placement_hops * self.hop;
        self.placement_hops = crate::lookahead::placement_hops(self.hop_seconds());
        self.latency += self.placement_hops * self.hop;
        self
    }

    /// Hop duration, seconds.
    pub fn hop_seconds(&self) -> f32 {
        self.hop as f32 / self.sample_rate
    }

    /// Latency, milliseconds.
    pub fn latency_ms(&self) -> f32 {
        self.latency as f32 * 1000.0 / self.sample_rate
    }
}
