//! Training-data synthesis and training (cargo feature `training`; `cargo xtask train …`).

pub mod augment;
pub mod dataset;
pub mod evaluate;
pub mod listener;
pub mod piano_data;
pub mod piano_eval;
pub mod pianist;
pub mod voice;

/// Learning rate at `step` (1-based) of `steps`: linear warm-up over the first 5 %, then a
/// cosine decay from `lr` down to `floor · lr`.
pub fn warmup_cosine_lr(step: usize, steps: usize, lr: f64, floor: f64) -> f64 {
    let warmup = (steps / 20).max(1);
    if step <= warmup {
        lr * step as f64 / warmup as f64
    } else {
        let x = (step - warmup) as f64 / (steps - warmup).max(1) as f64;
        lr * (floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * x).cos()))
    }
}
