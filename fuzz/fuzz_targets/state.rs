//! Plugin state loading: any bytes handed to the plugin as a saved state either fail to parse
//! (the wrapper then reports a failed load and keeps the parameters) or load to parameters that
//! are all finite and inside their ranges, with readable persisted fields — never a panic.
//!
//! `params::load_state` (the plugin's `plugin/src/params.rs`, compiled in here) parses the JSON,
//! runs the plugin's `filter_state` migration and repair (`migrate_state`) and sets the
//! parameters and fields the way nice-plug's wrappers do.
#![no_main]

#[allow(dead_code)]
#[path = "../../plugin/src/params.rs"]
mod params;

use libfuzzer_sys::fuzz_target;
use nice_plug::prelude::*;
use params::{load_state, HummingFaceParams};

fuzz_target!(|data: &[u8]| {
    let params = HummingFaceParams::default();
    if load_state(&params, data).is_err() {
        return;
    }
    for (id, ptr, _) in params.param_map() {
        // SAFETY: `ptr` points into `params`, alive here.
        let (v, lo, hi) = unsafe {
            (ptr.unmodulated_plain_value(), ptr.preview_plain(0.0), ptr.preview_plain(1.0))
        };
        assert!(v.is_finite() && v >= lo && v <= hi, "{id} = {v} outside {lo}..{hi}");
    }
    let size = *params.editor_size.lock().unwrap();
    assert_eq!(size, size.clamped(), "editor size {size:?} outside the limits");
    let _ = params.model_path.lock().unwrap().len();
    let _ = params.preset_name.lock().unwrap().len();
    // What it would save back is JSON that loads again without repairs.
    let fields = params.serialize_fields();
    for (k, v) in &fields {
        assert!(serde_json::from_str::<serde_json::Value>(v).is_ok(), "field {k} saved as {v:?}");
    }
    let _ = params::controls_from_params(&params);
});
