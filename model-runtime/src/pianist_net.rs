//! The trained pianist: a Candle network learned from real piano recordings (FluidR3's sampled
//! grand, see `train::piano_data`), conditioned on key, velocity, time since the strike and
//! time since the release, producing each frame's partial amplitudes, partial frequency
//! deviations (the string's inharmonicity) and noise levels; written into complex spectrum
//! frames with coherent phase for the engine's overlap-add (the same placement as v0).
//!
//! Network: the key one-hot (88) and eight continuous inputs ([`input_row`]) → three SiLU
//! layers of [`HIDDEN`] → [`PARTIALS`] log10 amplitudes, [`PARTIALS`] deviations from `n·f₁` in
//! cents, [`NOISE_BANDS`] log10 noise power densities. All sounding voices of a hop go through
//! one batched forward.
//!
//! Tuning: the fundamental is placed exactly on equal temperament (A4 = 440 Hz); only the
//! partials' deviations from `n·f₁` (inharmonicity) are learned, not the recordings' tuning.

use candle_core::{Device, Tensor};
use realfft::num_complex::Complex32;

use crate::controls::Controls;
use crate::model::{HostTensor, Model};
use crate::pianist::{Damper, Kernel, NoiseGen};
use crate::tracker::TrackEvent;
use crate::v0::midi_to_hz;

/// Lowest and highest piano key.
pub const FIRST_KEY: u8 = 21;
pub const LAST_KEY: u8 = 108;
pub const KEYS: usize = (LAST_KEY - FIRST_KEY + 1) as usize;
/// Partials per voice at most.
pub const PARTIALS: usize = 64;
/// Noise bands, log-spaced from [`NOISE_LO_HZ`] to [`NOISE_HI_HZ`].
pub const NOISE_BANDS: usize = 12;
pub const NOISE_LO_HZ: f32 = 40.0;
pub const NOISE_HI_HZ: f32 = 16000.0;
/// Rate of the analysed recordings, Hz (fixes the analysis windows and so the time floor).
pub const ANALYSIS_SR: f32 = 44100.0;
/// Continuous inputs after the key one-hot.
pub const CONT: usize = 8;
pub const IN: usize = KEYS + CONT;
pub const HIDDEN: usize = 128;
pub const OUT: usize = 2 * PARTIALS + NOISE_BANDS;
/// Output offsets: amplitudes and noise are `raw + offset` (log10), cents `raw · CENTS_SCALE`.
pub const AMP_OFFSET: f32 = -3.0;
pub const NOISE_OFFSET: f32 = -10.0;
pub const CENTS_SCALE: f32 = 100.0;
/// Sounding voices at most (the issue asks for 8; MIDI files want more).
pub const VOICES: usize = 16;
/// Highest partial synthesized, Hz (and 0.45 of the rate).
pub const TOP_HZ: f32 = 16000.0;
/// Seconds after the release the recordings cover; a voice is freed after this.
pub const RELEASE_HORIZON_S: f32 = 1.0;
/// Output gain over the recordings' level, dB: the SoundFont renders a mezzo-forte C4 about
/// 15 dB below the v0 piano; this brings the two to the same loudness (it scales partials and
/// noise alike, so the learned balance is untouched).
pub const OUTPUT_GAIN_DB: f32 = 15.0;
/// Voices below this amplitude are freed.
const SILENT: f32 = 1.0e-5;
/// Fade of a voice taken over by a new strike (same key, or stolen), 1/s (≈ 10 ms).
const STEAL_RATE: f32 = 690.0;
/// Control rate: a voice's network output is computed every hop while its envelope moves
/// fast and at most every [`MAX_CONTROL_HOPS`] hops later on, linearly interpolated between
/// (log amplitudes, so exponential decays are followed exactly). The step, in hops, is the
/// largest power of two that keeps it under this fraction of the time since the strike (and
/// since the release, once the damper falls): a 25 % step in the network's log-time input.
pub const CONTROL_STEP_FRACTION: f32 = 0.25;
/// Longest control step, hops (≈ 43 ms at the engine's ≈ 5.3 ms hop).
pub const MAX_CONTROL_HOPS: u64 = 8;

/// Names and shapes of the network's tensors in a model file.
pub const NET_SPECS: &[(&str, &[usize])] = &[
    ("pianist.net.w1", &[IN, HIDDEN]),
    ("pianist.net.b1", &[HIDDEN]),
    ("pianist.net.w2", &[HIDDEN, HIDDEN]),
    ("pianist.net.b2", &[HIDDEN]),
    ("pianist.net.w3", &[HIDDEN, HIDDEN]),
    ("pianist.net.b3", &[HIDDEN]),
    ("pianist.net.w4", &[HIDDEN, OUT]),
    ("pianist.net.b4", &[OUT]),
];

/// Trainable parameters.
pub fn parameter_count() -> usize {
    NET_SPECS.iter().map(|(_, s)| s.iter().product::<usize>()).sum()
}

/// Noise band edges, Hz (`NOISE_BANDS + 1`, log-spaced).
pub fn band_edges_hz() -> [f32; NOISE_BANDS + 1] {
    let mut e = [0.0; NOISE_BANDS + 1];
    for (i, v) in e.iter_mut().enumerate() {
        *v = NOISE_LO_HZ * (NOISE_HI_HZ / NOISE_LO_HZ).powf(i as f32 / NOISE_BANDS as f32);
    }
    e
}

/// Analysis window of a key at [`ANALYSIS_SR`], samples: four periods, 1024 at least.
pub fn analysis_window(key: u8) -> usize {
    let period = ANALYSIS_SR / midi_to_hz(key as f32);
    ((4.0 * period).ceil() as usize).max(1024)
}

/// Earliest frame centre analysed for a key, seconds (half its window): the network is asked
/// about no earlier time (a strike sounds at once; its first frame is this one).
pub fn time_floor_s(key: u8) -> f32 {
    analysis_window(key) as f32 / 2.0 / ANALYSIS_SR
}

/// The network's input for one voice: key one-hot, then velocity (0…1), its square, log and
/// linear time since the strike, released flag, log and linear time since the release, and
/// the key as a number. `r` is negative while the key is held.
pub fn input_row(key: u8, velocity: f32, t: f32, r: f32, row: &mut [f32]) {
    debug_assert_eq!(row.len(), IN);
    row.iter_mut().for_each(|v| *v = 0.0);
    let k = key.clamp(FIRST_KEY, LAST_KEY);
    row[(k - FIRST_KEY) as usize] = 1.0;
    let c = &mut row[KEYS..];
    let v = velocity.clamp(0.0, 1.0);
    let t = t.max(time_floor_s(k));
    c[0] = v;
    c[1] = v * v;
    c[2] = (t + 0.01).ln() / 3.0;
    c[3] = t / 10.0;
    if r >= 0.0 {
        c[4] = 1.0;
        c[5] = ((r + 0.01).ln() - 0.01f32.ln()) / 3.0;
        c[6] = r;
    }
    c[7] = (k as f32 - 64.5) / 43.5;
}

/// The network's tensors.
#[derive(Clone)]
pub struct NetTensors {
    pub w: [Tensor; 4],
    pub b: [Tensor; 4],
}

impl NetTensors {
    /// In [`NET_SPECS`] order.
    pub fn from_vec(t: Vec<Tensor>) -> NetTensors {
        let mut it = t.into_iter();
        let mut n = || it.next().expect("eight pianist tensors");
        let (w1, b1, w2, b2, w3, b3, w4, b4) = (n(), n(), n(), n(), n(), n(), n(), n());
        NetTensors { w: [w1, w2, w3, w4], b: [b1, b2, b3, b4] }
    }
    pub fn to_vec(&self) -> Vec<&Tensor> {
        (0..4).flat_map(|i| [&self.w[i], &self.b[i]]).collect()
    }
}

/// Raw network output `[B, OUT]` for input rows `[B, IN]` (before [`decode`]'s offsets).
pub fn forward(net: &NetTensors, x: &Tensor) -> candle_core::Result<Tensor> {
    let mut h = x.clone();
    for i in 0..3 {
        h = h.matmul(&net.w[i])?.broadcast_add(&net.b[i])?.silu()?;
    }
    h.matmul(&net.w[3])?.broadcast_add(&net.b[3])
}

/// One voice's decoded frame.
#[derive(Debug, Clone, Copy)]
pub struct PianoOut {
    /// log10 amplitude per partial.
    pub amp: [f32; PARTIALS],
    /// Deviation of partial n from `n·f₁`, cents.
    pub cents: [f32; PARTIALS],
    /// log10 one-sided noise power density per band (re 1/Hz).
    pub noise: [f32; NOISE_BANDS],
}

/// Decode one raw output row.
pub fn decode(raw: &[f32]) -> PianoOut {
    let mut o = PianoOut { amp: [0.0; PARTIALS], cents: [0.0; PARTIALS], noise: [0.0; NOISE_BANDS] };
    for p in 0..PARTIALS {
        o.amp[p] = raw[p] + AMP_OFFSET;
        o.cents[p] = raw[PARTIALS + p] * CENTS_SCALE;
    }
    o.cents[0] = 0.0;
    for b in 0..NOISE_BANDS {
        o.noise[b] = raw[2 * PARTIALS + b] + NOISE_OFFSET;
    }
    o
}

#[derive(Debug, Clone, Copy)]
struct Voice {
    active: bool,
    key: u8,
    velocity: f32,
    /// Seconds since the strike at the current frame centre.
    age_s: f32,
    /// Key up / pedal.
    damper: Damper,
    /// Fade-out rate of a voice being taken over (0 = none), 1/s; `fade` its current gain.
    steal_rate: f32,
    fade: f32,
    /// Tone knob at the strike: partial n is scaled by `n^(0.6·tone)`.
    tone: f32,
    /// Release knob: the recordings' damper time is stretched by `release_ms / 250`.
    release_stretch: f32,
    /// Partials in band (frequencies set at the strike).
    partials: usize,
    freq_bins: [f32; PARTIALS],
    phase: [f64; PARTIALS],
    /// Control segment: raw network outputs at its start and its end, the hops (global
    /// counter) they belong to, and whether the damper had fallen when they were computed.
    seg: Option<Segment>,
}

/// Two network outputs of one voice, `len` hops apart, interpolated in between.
#[derive(Debug, Clone, Copy)]
struct Segment {
    start_hop: u64,
    end_hop: u64,
    released: bool,
    start: [f32; OUT],
    end: [f32; OUT],
}

/// What a voice needs from this hop's forward pass.
#[derive(Debug, Clone, Copy)]
enum Need {
    /// Nothing: it is inside its segment.
    Inside,
    /// One row at this hop, used as is (envelope moving fast).
    Now { row: usize },
    /// A new segment from this hop (row, or the old segment's end) to `end_hop` (row).
    Segment { now_row: Option<usize>, end_row: usize, end_hop: u64 },
}

impl Voice {
    const FREE: Voice = Voice {
        active: false,
        key: 0,
        velocity: 0.0,
        age_s: 0.0,
        damper: Damper::UP,
        steal_rate: 0.0,
        fade: 1.0,
        tone: 0.0,
        release_stretch: 1.0,
        partials: 0,
        freq_bins: [0.0; PARTIALS],
        phase: [0.0; PARTIALS],
        seg: None,
    };

    /// Hops to the end of the control segment that starts at `hop`: a power of two (so voices
    /// share their forward passes), at most [`MAX_CONTROL_HOPS`], ending on a multiple of
    /// itself, 0 while the envelope moves fast (compute every hop).
    fn control_hops(&self, hop: u64, hop_s: f32, max_hops: u64) -> u64 {
        if max_hops < 2 {
            return 0;
        }
        let since = match self.damper.released_s {
            Some(r) => r.min(self.age_s),
            None => self.age_s.max(time_floor_s(self.key)),
        };
        let allowed = (CONTROL_STEP_FRACTION * since / hop_s).floor() as u64;
        if allowed < 2 {
            return 0;
        }
        let k = (1u64 << (63 - allowed.leading_zeros())).min(max_hops);
        k - hop % k
    }
}

/// For each bin of an `n`-point frame at `sample_rate`: the noise band below it and the fraction
/// of the way, in log frequency, to the next band centre (clamped at the outer centres); `None`
/// outside [`NOISE_LO_HZ`]…[`NOISE_HI_HZ`] (and above Nyquist).
fn noise_interpolation(centres: &[f32; NOISE_BANDS], sample_rate: f32, n: usize) -> Vec<Option<(usize, f32)>> {
    let bin_hz = sample_rate / n as f32;
    (0..n / 2 + 1)
        .map(|k| {
            let hz = k as f32 * bin_hz;
            if !(NOISE_LO_HZ..=NOISE_HI_HZ.min(0.5 * sample_rate)).contains(&hz) {
                return None;
            }
            let pos = ((hz / centres[0]).ln() / (centres[1] / centres[0]).ln()).clamp(0.0, (NOISE_BANDS - 1) as f32);
            let i = (pos as usize).min(NOISE_BANDS - 2);
            Some((i, pos - i as f32))
        })
        .collect()
}

/// The trained pianist on one device.
pub struct PianistNet {
    device: Device,
    net: NetTensors,
    voices: [Voice; VOICES],
    /// Voices about to be struck: their frequencies come from their first frame's output.
    fresh: [bool; VOICES],
    pedal: bool,
    sample_rate: f32,
    hop: usize,
    n: usize,
    kernel: Kernel,
    noise: NoiseGen,
    /// Scratch: input rows, what each voice needs from them, the forward pass's output.
    rows: Vec<f32>,
    needs: [Need; VOICES],
    out_rows: Vec<f32>,
    /// Hops synthesized since the start (the control segments' clock).
    hop_count: u64,
    /// Forward passes run (for benchmarks: the network runs on some hops only).
    forwards: u64,
    /// Longest control step, hops (1: the network runs every hop).
    max_control_hops: u64,
    /// Scratch: noise power density per band, summed over voices (linear).
    band_psd: [f32; NOISE_BANDS],
    /// Per bin: the band below it and the fraction of the way (in log frequency) to the next
    /// band centre, for the noise spectrum; `None` outside 40 Hz…16 kHz.
    noise_interp: Vec<Option<(usize, f32)>>,
    /// Centre of each noise band (geometric mean of its edges), Hz.
    band_centres: [f32; NOISE_BANDS],
}

/// The release knob as a stretch of the recorded damper (250 ms, the default, plays it as
/// recorded).
fn release_stretch(c: &Controls) -> f32 {
    let ms = if c.release_ms.is_finite() { c.release_ms.clamp(10.0, 3000.0) } else { 250.0 };
    ms / 250.0
}

fn upload(t: &HostTensor, device: &Device) -> candle_core::Result<Tensor> {
    Tensor::from_slice(&t.data, t.shape.as_slice(), device)
}

impl PianistNet {
    pub fn new(model: &Model, sample_rate: f32, hop: usize, device: &Device) -> candle_core::Result<Self> {
        let mut ts = Vec::new();
        for (name, _) in NET_SPECS {
            let t = model.get(name).ok_or_else(|| candle_core::Error::Msg(format!("model lacks {name}")))?;
            ts.push(upload(t, device)?);
        }
        let n = 2 * hop;
        let edges = band_edges_hz();
        let band_centres: [f32; NOISE_BANDS] = std::array::from_fn(|b| (edges[b] * edges[b + 1]).sqrt());
        Ok(PianistNet {
            device: device.clone(),
            net: NetTensors::from_vec(ts),
            voices: [Voice::FREE; VOICES],
            fresh: [false; VOICES],
            pedal: false,
            sample_rate,
            hop,
            n,
            kernel: Kernel::new(n),
            noise: NoiseGen::new(hop),
            rows: vec![0.0; 2 * VOICES * IN],
            needs: [Need::Inside; VOICES],
            out_rows: Vec::with_capacity(2 * VOICES * OUT),
            hop_count: 0,
            forwards: 0,
            max_control_hops: MAX_CONTROL_HOPS,
            band_psd: [0.0; NOISE_BANDS],
            noise_interp: noise_interpolation(&band_centres, sample_rate, n),
            band_centres,
        })
    }

    pub fn reset(&mut self) {
        self.voices = [Voice::FREE; VOICES];
        self.fresh = [false; VOICES];
        self.pedal = false;
        self.noise.reset();
        self.hop_count = 0;
    }

    /// Longest control step in hops ([`MAX_CONTROL_HOPS`] by default; 1 runs the network for
    /// every voice on every hop, the reference the control rate is measured against).
    pub fn set_max_control_hops(&mut self, hops: u64) {
        self.max_control_hops = hops.max(1);
        self.voices.iter_mut().for_each(|v| v.seg = None);
    }

    /// Forward passes of the network so far (it runs only on hops where some voice needs it).
    pub fn forward_passes(&self) -> u64 {
        self.forwards
    }

    pub fn active_voices(&self) -> usize {
        self.voices.iter().filter(|v| v.active).count()
    }

    /// Sustain pedal (CC64 ≥ 64 is down): while down, released keys keep ringing.
    pub fn sustain(&mut self, down: bool) {
        self.pedal = down;
        if !down {
            self.voices.iter_mut().filter(|v| v.active).for_each(|v| v.damper.pedal_up());
        }
    }

    pub fn event(&mut self, ev: TrackEvent, c: &Controls) {
        match ev {
            TrackEvent::Off { note } => {
                let pedal = self.pedal;
                for v in self.voices.iter_mut().filter(|v| v.active && v.key == note && v.damper.released_s.is_none() && v.steal_rate == 0.0) {
                    v.release_stretch = release_stretch(c);
                    v.damper.key_up(pedal);
                }
            }
            TrackEvent::On { note, velocity } => {
                // The same string struck again: its old voice fades out quickly.
                for v in self.voices.iter_mut().filter(|v| v.active && v.key == note) {
                    v.steal_rate = STEAL_RATE;
                }
                let slot = self.voices.iter().position(|v| !v.active).unwrap_or_else(|| {
                    // Steal: the longest-released voice, else the oldest.
                    (0..VOICES)
                        .max_by(|&a, &b| {
                            let score = |v: &Voice| (v.damper.released_s.is_some() as u8 as f32) * 1e6 + v.damper.released_s.unwrap_or(0.0) + v.age_s;
                            score(&self.voices[a]).total_cmp(&score(&self.voices[b]))
                        })
                        .unwrap_or(0)
                });
                let mut v = Voice::FREE;
                v.active = true;
                v.key = note.clamp(FIRST_KEY, LAST_KEY);
                v.velocity = velocity.clamp(0.0, 1.0);
                v.age_s = 0.0;
                v.tone = if c.tone.is_finite() { c.tone.clamp(-1.0, 1.0) } else { 0.0 };
                v.release_stretch = release_stretch(c);
                self.voices[slot] = v;
                self.fresh[slot] = true;
            }
        }
    }

    /// Decide what every sounding voice needs this hop, run one forward pass over all the rows
    /// wanted (none if every voice is inside its control segment) into `self.out_rows`.
    fn run_net(&mut self) -> candle_core::Result<()> {
        let hop_s = self.hop as f32 / self.sample_rate;
        let now = self.hop_count;
        let mut n = 0;
        for (i, v) in self.voices.iter_mut().enumerate() {
            self.needs[i] = Need::Inside;
            if !v.active {
                continue;
            }
            let released = v.damper.released_s.is_some();
            let valid = v.seg.is_some_and(|g| g.released == released && g.start_hop <= now && now < g.end_hop) && !self.fresh[i];
            if valid {
                continue;
            }
            // The damper as recorded, stretched by the release knob.
            let input_r = |r: Option<f32>| r.map_or(-1.0, |r| r / v.release_stretch);
            let k = v.control_hops(now, hop_s, self.max_control_hops);
            // A segment that ends on this hop already holds this hop's output.
            let ends_here = k > 0 && v.seg.is_some_and(|g| g.released == released && g.end_hop == now) && !self.fresh[i];
            let now_row = if ends_here {
                None
            } else {
                input_row(v.key, v.velocity, v.age_s, input_r(v.damper.released_s), &mut self.rows[n * IN..(n + 1) * IN]);
                n += 1;
                Some(n - 1)
            };
            if k == 0 {
                v.seg = None;
                self.needs[i] = Need::Now { row: n - 1 };
                continue;
            }
            let ahead = k as f32 * hop_s;
            input_row(v.key, v.velocity, v.age_s + ahead, input_r(v.damper.released_s.map(|r| r + ahead)), &mut self.rows[n * IN..(n + 1) * IN]);
            n += 1;
            self.needs[i] = Need::Segment { now_row, end_row: n - 1, end_hop: now + k };
        }
        self.out_rows.clear();
        if n > 0 {
            let x = Tensor::from_slice(&self.rows[..n * IN], (n, IN), &self.device)?;
            self.out_rows = forward(&self.net, &x)?.flatten_all()?.to_vec1::<f32>()?;
            self.forwards += 1;
        }
        Ok(())
    }

    /// This hop's raw network output for voice `i` (after [`Self::run_net`]): computed now,
    /// or interpolated in its control segment (which this may start).
    fn raw_output(&mut self, i: usize) -> [f32; OUT] {
        let now = self.hop_count;
        let row = |r: usize| -> [f32; OUT] { std::array::from_fn(|j| self.out_rows[r * OUT + j]) };
        let v = &mut self.voices[i];
        match self.needs[i] {
            Need::Now { row: r } => row(r),
            Need::Segment { now_row, end_row, end_hop } => {
                let start = match now_row {
                    Some(r) => row(r),
                    None => v.seg.expect("a segment that ends on this hop").end,
                };
                let released = v.damper.released_s.is_some();
                v.seg = Some(Segment { start_hop: now, end_hop, released, start, end: row(end_row) });
                start
            }
            Need::Inside => {
                let g = v.seg.as_ref().expect("a voice inside its segment has one");
                let w = (now - g.start_hop) as f32 / (g.end_hop - g.start_hop) as f32;
                std::array::from_fn(|j| g.start[j] + w * (g.end[j] - g.start[j]))
            }
        }
    }

    /// Write the next frame's spectrum (`hop + 1` bins) into `out` and advance one hop.
    pub fn synthesize(&mut self, out: &mut [Complex32]) -> candle_core::Result<()> {
        out.iter_mut().for_each(|z| *z = Complex32::new(0.0, 0.0));
        self.run_net()?;
        let bins = self.hop + 1;
        let bin_hz = self.sample_rate / self.n as f32;
        let top = TOP_HZ.min(0.45 * self.sample_rate);
        let hop_s = self.hop as f32 / self.sample_rate;
        self.band_psd = [0.0; NOISE_BANDS];
        for vi in 0..VOICES {
            if !self.voices[vi].active {
                continue;
            }
            let o = decode(&self.raw_output(vi));
            let v = &mut self.voices[vi];
            if self.fresh[vi] {
                self.fresh[vi] = false;
                let f0 = midi_to_hz(v.key as f32);
                v.partials = 0;
                for p in 0..PARTIALS {
                    let f = (p + 1) as f32 * f0 * 2f32.powf(o.cents[p] / 1200.0);
                    if f >= top {
                        break;
                    }
                    v.freq_bins[p] = f / bin_hz;
                    // Every partial in cosine phase at the first frame's centre: the hammer's
                    // pulse, so the strike is a transient rather than a swell.
                    v.phase[p] = 0.0;
                    v.partials = p + 1;
                }
            }
            let gain = v.fade * 10f32.powf(OUTPUT_GAIN_DB / 20.0);
            let mut loudest = 0.0f32;
            for p in 0..v.partials {
                let tilt = if v.tone != 0.0 { ((p + 1) as f32).powf(0.6 * v.tone) } else { 1.0 };
                let a = 10f32.powf(o.amp[p]) * gain * tilt;
                loudest = loudest.max(a);
                if a > 1e-7 {
                    self.kernel.add_sinusoid(out, v.freq_bins[p], a, v.phase[p] as f32);
                }
            }
            // Noise only from the fundamental up: the analysis window (four periods) puts the
            // bands below it within reach of the recordings' DC and subsonic leakage, so what
            // was measured there is not the piano's noise.
            let f0 = midi_to_hz(v.key as f32);
            for (b, &lvl) in o.noise.iter().enumerate() {
                if self.band_centres[b] >= f0 {
                    self.band_psd[b] += 10f32.powf(lvl) * gain * gain;
                }
            }
            // Advance.
            v.age_s += hop_s;
            if let Some(r) = v.damper.released_s.as_mut() {
                *r += hop_s;
            }
            if v.steal_rate > 0.0 {
                v.fade *= (-v.steal_rate * hop_s).exp();
            }
            let bins_to_radians = std::f64::consts::TAU * self.hop as f64 / self.n as f64;
            for p in 0..v.partials {
                let phase = v.phase[p] + v.freq_bins[p] as f64 * bins_to_radians;
                // Wrapped into [0, 2π) (a floor, not the slower `%`).
                v.phase[p] = phase - std::f64::consts::TAU * (phase / std::f64::consts::TAU).floor();
            }
            let done_release = v.damper.released_s.is_some_and(|r| r > RELEASE_HORIZON_S * v.release_stretch);
            if done_release || v.fade < 1e-3 || (loudest < SILENT && v.age_s > 0.5) {
                v.active = false;
            }
        }
        // Noise: per-band power density, interpolated over log frequency between band centres
        // (geometric interpolation of the densities: linear in their logarithms).
        if self.band_psd.iter().any(|&p| p > 1e-14) {
            // Per-sample standard deviation of white noise with one-sided density S: √(S·sr/2).
            let half_log_sr = 0.5 * (0.5 * self.sample_rate).ln();
            let half_log_psd: [f32; NOISE_BANDS] = std::array::from_fn(|b| 0.5 * self.band_psd[b].max(1e-30).ln());
            let interp = &self.noise_interp;
            self.noise.add_shaped(out, self.n, |k| match interp[k] {
                Some((i, f)) => (half_log_psd[i] * (1.0 - f) + half_log_psd[i + 1] * f + half_log_sr).exp(),
                None => 0.0,
            });
        }
        out[0].im = 0.0;
        out[bins - 1].im = 0.0;
        self.hop_count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The control rate against the network run for every voice on every hop: a chord struck,
    /// one key released, another struck over it, a repeated key, the pedal — every frame's
    /// spectrum within −30 dB of the reference (−40 dB over the whole), with well under half
    /// the forward passes.
    #[test]
    fn the_control_rate_follows_the_network_run_every_hop() {
        let model = Model::embedded();
        assert!(model.has_trained_pianist());
        let (sr, hop) = (48000.0, 256);
        let c = Controls::default();
        let mut reference = PianistNet::new(&model, sr, hop, &Device::Cpu).unwrap();
        reference.set_max_control_hops(1);
        let mut controlled = PianistNet::new(&model, sr, hop, &Device::Cpu).unwrap();
        let on = |note, velocity| TrackEvent::On { note, velocity };
        let script: Vec<(usize, Vec<TrackEvent>)> = vec![
            (0, vec![on(36, 0.3), on(60, 0.8), on(64, 0.6)]),
            (90, vec![TrackEvent::Off { note: 64 }]),
            (131, vec![on(76, 1.0)]),
            (200, vec![on(60, 0.4)]),
            (260, vec![TrackEvent::Off { note: 60 }, TrackEvent::Off { note: 76 }]),
            (333, vec![on(96, 0.7)]),
            (420, vec![TrackEvent::Off { note: 36 }, TrackEvent::Off { note: 96 }]),
        ];
        let (mut a, mut b) = (vec![Complex32::new(0.0, 0.0); hop + 1], vec![Complex32::new(0.0, 0.0); hop + 1]);
        let (mut err_sum, mut ref_sum, mut worst) = (0.0f64, 0.0f64, f64::NEG_INFINITY);
        for k in 0..600 {
            for (_, evs) in script.iter().filter(|(at, _)| *at == k) {
                for &ev in evs {
                    reference.event(ev, &c);
                    controlled.event(ev, &c);
                }
            }
            if k == 300 {
                reference.sustain(true);
                controlled.sustain(true);
            }
            reference.synthesize(&mut a).unwrap();
            controlled.synthesize(&mut b).unwrap();
            let e: f64 = a.iter().zip(&b).map(|(x, y)| (x - y).norm_sqr() as f64).sum();
            let r: f64 = a.iter().map(|x| x.norm_sqr() as f64).sum();
            err_sum += e;
            ref_sum += r;
            if r > 1e-12 {
                worst = worst.max(10.0 * (e / r).log10());
            }
        }
        let overall = 10.0 * (err_sum / ref_sum).log10();
        let ratio = controlled.forward_passes() as f64 / reference.forward_passes() as f64;
        assert!(overall < -40.0 && worst < -30.0, "control rate off by {overall:.1} dB overall, {worst:.1} dB worst frame");
        assert!(ratio < 0.5, "forward passes {} vs {}", controlled.forward_passes(), reference.forward_passes());
        eprintln!("control rate: {overall:.1} dB overall, worst frame {worst:.1} dB, forward passes {} of {}", controlled.forward_passes(), reference.forward_passes());
    }
}
