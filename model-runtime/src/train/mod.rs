//! Training-data synthesis and training (cargo feature `training`; `cargo xtask train …`).

pub mod augment;
pub mod dataset;
pub mod evaluate;
pub mod listener;
pub mod piano_data;
pub mod piano_eval;
pub mod pianist;
pub mod voice;
