//! `hummingface-standalone`: the plugin without a DAW, on JACK, ALSA or the dummy backend
//! (`-b auto|jack|alsa|dummy`; `--help` lists every option: sample rate, period size, devices,
//! JACK connections).
//!
//! Opens the editor window; SIGINT, SIGTERM or closing the window stop it.
//!
//! Example: `hummingface-standalone -b jack --connect-jack-inputs system:capture_1`.

use std::process::ExitCode;

use hummingface::HummingFace;
use nice_plug::prelude::nice_export_standalone;

fn main() -> ExitCode {
    hummingface_runtime::generator::pin_thread_count_env();
    // SIGINT/SIGTERM/SIGHUP close the editor window, so the standalone stops cleanly (exit 0)
    // with its editor open too.
    hummingface::editor::close_on_signals();
    // Returns false when the plugin fails to activate or the audio backend fails.
    if nice_export_standalone::<HummingFace>() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
