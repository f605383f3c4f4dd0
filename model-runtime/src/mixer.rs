//! Dry/wet mix with the dry signal delayed by exactly the engine latency, output gain, and a
//! bypass that crossfades to that delayed dry signal.

/// Smoothing time of mix and gain, seconds.
const SMOOTH_S: f32 = 0.02;
/// Length of the bypass crossfade, seconds: linear, so that it ends on the exact dry signal.
pub const BYPASS_FADE_S: f32 = 0.01;

pub struct Mixer {
    /// Per channel ring of the last `delay` dry samples.
    delay_lines: Vec<Vec<f32>>,
    /// Delay, samples.
    delay: usize,
    /// Ring position (shared by all channels).
    pos: usize,
    /// Smoothed mix, 0..1 (NaN until the first block).
    mix: f32,
    /// Smoothed linear gain.
    gain: f32,
    /// Bypass wanted.
    bypass: bool,
    /// Bypass crossfade position, 0 (processed) … 1 (delayed dry only); NaN until the first
    /// block, which starts at the wanted end.
    fade: f32,
}

impl Mixer {
    pub fn new(channels: usize, delay_samples: usize) -> Mixer {
        Mixer::with_capacity(channels, delay_samples, delay_samples)
    }

    /// A mixer whose delay can later be set up to `max_delay` samples without allocating.
    pub fn with_capacity(channels: usize, delay_samples: usize, max_delay: usize) -> Mixer {
        Mixer {
            delay_lines: vec![vec![0.0; max_delay.max(delay_samples)]; channels],
            delay: delay_samples,
            pos: 0,
            mix: f32::NAN,
            gain: f32::NAN,
            bypass: false,
            fade: f32::NAN,
        }
    }

    pub fn delay(&self) -> usize {
        self.delay
    }

    /// Delay the dry signal by `delay_samples` from now on (at most the capacity given at
    /// creation); clears the delay line. No allocation.
    pub fn set_delay(&mut self, delay_samples: usize) {
        let cap = self.delay_lines.first().map_or(0, Vec::len);
        self.delay = delay_samples.min(cap);
        self.reset();
    }

    pub fn reset(&mut self) {
        for l in self.delay_lines.iter_mut() {
            l.iter_mut().for_each(|x| *x = 0.0);
        }
        self.pos = 0;
        self.mix = f32::NAN;
        self.gain = f32::NAN;
        self.fade = f32::NAN;
    }

    /// Bypass (or not) from the next sample on: the output crossfades linearly over
    /// [`BYPASS_FADE_S`] to the dry input delayed by the latency, unscaled — bit for bit once
    /// the fade is over, whatever mix and gain say — and back. A mixer's first block (and the
    /// first after [`Mixer::reset`]) starts where the bypass says, without a fade.
    pub fn set_bypass(&mut self, bypass: bool) {
        self.bypass = bypass;
    }

    /// Whether the output is the delayed dry signal alone (bypassed and the fade over).
    pub fn fully_bypassed(&self) -> bool {
        self.bypass && self.fade == 1.0
    }

    /// In place: dry in, mix out. Channels beyond those given at `new` pass the wet signal.
    pub fn process(&mut self, channels: &mut [&mut [f32]], wet: &[f32], mix: f32, gain_db: f32, sample_rate: f32) {
        let mix_target = if mix.is_finite() { mix.clamp(0.0, 1.0) } else { 1.0 };
        let gain_target = if gain_db.is_finite() { 10f32.powf(gain_db.clamp(-60.0, 24.0) / 20.0) } else { 1.0 };
        let fade_target = if self.bypass { 1.0 } else { 0.0 };
        if self.mix.is_nan() {
            self.mix = mix_target;
            self.gain = gain_target;
        }
        if self.fade.is_nan() {
            self.fade = fade_target;
        }
        let a = (-1.0 / (SMOOTH_S * sample_rate.max(1.0))).exp();
        let fade_step = 1.0 / (BYPASS_FADE_S * sample_rate.max(1.0)).max(1.0);
        let n = channels.iter().map(|c| c.len()).min().unwrap_or(0).min(wet.len());
        let start_pos = self.pos;
        let (mut mix_s, mut gain_s, mut fade_s) = (self.mix, self.gain, self.fade);
        for (ch, buf) in channels.iter_mut().enumerate() {
            let (mut m, mut g, mut b) = (self.mix, self.gain, self.fade);
            let mut pos = start_pos;
            let has_line = ch < self.delay_lines.len();
            for i in 0..n {
                m = mix_target + (m - mix_target) * a;
                g = gain_target + (g - gain_target) * a;
                let x = if buf[i].is_finite() { buf[i] } else { 0.0 };
                let dry = if !has_line {
                    0.0
                } else if self.delay == 0 {
                    x
                } else {
                    let line = &mut self.delay_lines[ch];
                    let d = line[pos];
                    line[pos] = x;
                    pos += 1;
                    if pos == self.delay {
                        pos = 0;
                    }
                    d
                };
                let processed = (dry * (1.0 - m) + wet[i] * m) * g;
                b = if b < fade_target { (b + fade_step).min(1.0) } else { (b - fade_step).max(fade_target) };
                buf[i] = if b == 0.0 {
                    processed
                } else if b == 1.0 {
                    dry
                } else {
                    processed * (1.0 - b) + dry * b
                };
            }
            mix_s = m;
            gain_s = g;
            fade_s = b;
        }
        self.mix = mix_s;
        self.gain = gain_s;
        self.fade = fade_s;
        if self.delay > 0 {
            self.pos = (start_pos + n) % self.delay;
        }
    }
}
