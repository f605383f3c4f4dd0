//! Generator weights: loading, validation and the embedded default.
//!
//! Every tensor the generator uses comes through this one path, a safetensors file, whether it
//! is the v0 (hand-designed) generator or a trained one. Loading never panics on bad input: a
//! missing tensor, a wrong shape, a wrong dtype or a non-finite value is a [`ModelError`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::v0;

/// The default weights, compiled into every binary so the plugin works with no files beside it:
/// the v0 tensors (`cargo xtask gen-weights`; a test checks they are what that writes) plus the
/// trained listener (`cargo xtask train listener`, seeded).
pub static EMBEDDED_WEIGHTS: &[u8] = include_bytes!("../../assets/hummingface-v1.safetensors");

/// Which device the inference worker runs the generator on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DeviceChoice {
    /// CUDA when this build has it and a GPU answers, else CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

impl DeviceChoice {
    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Auto => "auto",
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Cuda => "cuda",
        }
    }
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda),
            other => Err(format!("unknown device '{other}' (expected auto, cpu or cuda)")),
        }
    }
}

/// Whether this build was compiled with CUDA support.
pub const CUDA_COMPILED: bool = cfg!(feature = "cuda");

/// What went wrong reading a weights file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("not a valid safetensors file: {0}")]
    Format(String),
    #[error("model file lacks tensor '{0}'")]
    Missing(&'static str),
    #[error("tensor '{name}' has shape {got:?}, expected {want:?}")]
    Shape { name: &'static str, got: Vec<usize>, want: Vec<usize> },
    #[error("tensor '{name}' has dtype {got}, expected F32")]
    Dtype { name: &'static str, got: String },
    #[error("tensor '{name}' holds a non-finite value at index {index}")]
    NotFinite { name: &'static str, index: usize },
    /// A tensor whose shape and values are well formed but which the engine cannot use.
    #[error("tensor '{name}' {what}")]
    Value { name: &'static str, what: String },
    #[error("tensor '{0}' is not one this build reads (a model file from a newer build?)")]
    Unknown(String),
    #[error("model file metadata: {0}")]
    Metadata(String),
    #[error("the model's listener looks {got} hops ahead (trained with `--hops {got}`); the engine plays listeners that look {want} hops ahead, the latency it reports")]
    DetectionDelay { got: usize, want: usize },
}

/// One named f32 tensor kept on the host; the worker uploads it to its device.
#[derive(Debug, Clone)]
pub struct HostTensor {
    /// Row-major dimensions.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// A validated set of generator weights.
#[derive(Debug, Clone)]
pub struct Model {
    /// Which listener the generator runs: v0 unless [`Model::with_listener`] chose the trained
    /// one (see BENCHMARKS.md for why v0 is still the default).
    listener: crate::generator::ListenerKind,
    /// Which pianist: the trained one when the file carries it, unless
    /// [`Model::with_pianist`] chose v0.
    pianist: crate::generator::PianistKind,
    /// Name from the file's metadata, e.g. `hummingface-v0`.
    name: String,
    /// Tensors by name, all validated against [`v0::TENSOR_SPECS`].
    tensors: HashMap<&'static str, HostTensor>,
}

/// The optional tensor of a model file that holds the note decoder's thresholds fitted to its
/// listener: two [`crate::decoder::DecoderTuning`] rows, live then placed.
pub const DECODER_TUNING: &str = "listener.net.decoder";

impl Model {
    /// The weights compiled into the binary.
    pub fn embedded() -> Arc<Model> {
        static CELL: OnceLock<Arc<Model>> = OnceLock::new();
        CELL.get_or_init(|| {
            Arc::new(
                Model::from_bytes(EMBEDDED_WEIGHTS)
                    .expect("embedded weights are validated by the test suite"),
            )
        })
        .clone()
    }

    /// Read and validate a safetensors file.
    pub fn from_file(path: &Path) -> Result<Model, ModelError> {
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Model::from_bytes(&bytes)
    }

    /// Parse and validate safetensors bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
        let st = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| ModelError::Format(e.to_string()))?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| ModelError::Format(e.to_string()))?;
        let name = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get("name").cloned())
            .ok_or_else(|| ModelError::Metadata("no 'name' entry".into()))?;
        let mut tensors = HashMap::new();
        let read = |name: &'static str, shape: &[usize]| -> Result<HostTensor, ModelError> {
            let view = st.tensor(name).map_err(|_| ModelError::Missing(name))?;
            if view.dtype() != safetensors::Dtype::F32 {
                return Err(ModelError::Dtype { name, got: format!("{:?}", view.dtype()) });
            }
            if view.shape() != shape {
                return Err(ModelError::Shape { name, got: view.shape().to_vec(), want: shape.to_vec() });
            }
            let data: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if let Some(index) = data.iter().position(|v| !v.is_finite()) {
                return Err(ModelError::NotFinite { name, index });
            }
            Ok(HostTensor { shape: view.shape().to_vec(), data })
        };
        for spec in v0::TENSOR_SPECS {
            tensors.insert(spec.name, read(spec.name, spec.shape)?);
        }
        // The trained listener is optional, but all or nothing: a file with some of its tensors
        // is damaged, not a v0 file.
        let has_net = st.names().iter().any(|n| n.starts_with("listener.net."));
        if has_net {
            use crate::listener_net::{check_context, net_specs, CONTEXT};
            // Optional (the shipped listener has it): context offsets other than the six a file
            // without the tensor stands for; their number sets the shapes of the first layer
            // and the head.
            const CONTEXT_NAME: &str = "listener.net.context";
            let mut frames = CONTEXT.len();
            if st.names().contains(&CONTEXT_NAME) {
                let view = st.tensor(CONTEXT_NAME).map_err(|e| ModelError::Format(format!("tensor '{CONTEXT_NAME}': {e}")))?;
                let n = match view.shape() {
                    &[n] => n,
                    s => return Err(ModelError::Value { name: CONTEXT_NAME, what: format!("has shape {s:?}: it is a list of context offsets") }),
                };
                let t = read(CONTEXT_NAME, &[n])?;
                if let Some(v) = t.data.iter().find(|&&v| !(v >= 0.0 && v.fract() == 0.0)) {
                    return Err(ModelError::Value { name: CONTEXT_NAME, what: format!("holds {v}: context offsets are whole numbers of hops") });
                }
                let offsets: Vec<usize> = t.data.iter().map(|&v| v as usize).collect();
                check_context(&offsets).map_err(|e| ModelError::Value { name: CONTEXT_NAME, what: format!("names no usable context: {e}") })?;
                frames = n;
                tensors.insert(CONTEXT_NAME, t);
            }
            for (name, shape) in net_specs(frames) {
                tensors.insert(name, read(name, &shape)?);
            }
            // Optional: the global pitch layer, all three tensors or none.
            if crate::listener_net::GLOBAL_NAMES.iter().any(|n| st.names().contains(n)) {
                for (name, shape) in crate::listener_net::global_specs() {
                    tensors.insert(name, read(name, &shape)?);
                }
            }
        }
        // Optional: the note decoder's thresholds fitted to this listener, live and placed.
        if has_net && st.names().contains(&DECODER_TUNING) {
            let t = read(DECODER_TUNING, &[2 * crate::decoder::DecoderTuning::ROW])?;
            for (row, what) in t.data.chunks_exact(crate::decoder::DecoderTuning::ROW).zip(["live", "placed"]) {
                crate::decoder::DecoderTuning::from_row(row).map_err(|e| ModelError::Value { name: DECODER_TUNING, what: format!("({what}) holds a threshold out of range: {e}") })?;
            }
            tensors.insert(DECODER_TUNING, t);
        }
        // The trained pianist likewise.
        if st.names().iter().any(|n| n.starts_with("pianist.net.")) {
            for &(name, shape) in crate::pianist_net::NET_SPECS {
                tensors.insert(name, read(name, shape)?);
            }
        }
        // A tensor this build does not read would be left out silently, and a network that
        // needs it would play wrong: such a file is refused.
        if let Some(unknown) = st.names().into_iter().find(|n| !tensors.contains_key(&n[..])) {
            return Err(ModelError::Unknown(unknown.to_string()));
        }
        Ok(Model { listener: crate::generator::ListenerKind::V0, pianist: crate::generator::PianistKind::Trained, name, tensors })
    }

    /// Serialize named tensors (as produced by [`v0::build_tensors`]) into safetensors bytes.
    pub fn serialize(name: &str, tensors: &[(&'static str, HostTensor)]) -> Result<Vec<u8>, ModelError> {
        let bytes: Vec<(&str, Vec<u8>, Vec<usize>)> = tensors
            .iter()
            .map(|(n, t)| (*n, t.data.iter().flat_map(|v| v.to_le_bytes()).collect(), t.shape.clone()))
            .collect();
        let views = bytes
            .iter()
            .map(|(n, b, s)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .map(|v| (*n, v))
                    .map_err(|e| ModelError::Format(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut meta = HashMap::new();
        meta.insert("name".to_string(), name.to_string());
        safetensors::serialize(views, Some(meta)).map_err(|e| ModelError::Format(e.to_string()))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A validated tensor (every name in [`v0::TENSOR_SPECS`] is present after loading).
    pub fn tensor(&self, name: &'static str) -> &HostTensor {
        &self.tensors[name]
    }

    /// An optional tensor (the trained listener's are present only in trained model files).
    pub fn get(&self, name: &str) -> Option<&HostTensor> {
        self.tensors.get(name)
    }

    /// The same weights with the generator running listener `kind` (the trained one only when
    /// this file carries it; v0 otherwise).
    pub fn with_listener(mut self, kind: crate::generator::ListenerKind) -> Model {
        self.listener = kind;
        self
    }

    /// The shared model with listener `kind`: the same `Arc` when it already runs that listener
    /// (or cannot run another: a file without the trained listener runs v0 either way), else a
    /// copy of the weights that does.
    pub fn listening_with(self: &Arc<Model>, kind: crate::generator::ListenerKind) -> Arc<Model> {
        if self.listener == kind || (kind == crate::generator::ListenerKind::Trained && !self.has_trained_listener()) {
            self.clone()
        } else {
            Arc::new((**self).clone().with_listener(kind))
        }
    }

    /// The listener the generator runs with these weights.
    pub fn listener(&self) -> crate::generator::ListenerKind {
        if self.has_trained_listener() { self.listener } else { crate::generator::ListenerKind::V0 }
    }

    /// The same weights with pianist `kind` (the trained one only when this file carries it).
    pub fn with_pianist(mut self, kind: crate::generator::PianistKind) -> Model {
        self.pianist = kind;
        self
    }

    /// The pianist the generator plays with these weights.
    pub fn pianist(&self) -> crate::generator::PianistKind {
        if self.has_trained_pianist() { self.pianist } else { crate::generator::PianistKind::V0 }
    }

    /// Whether this model carries the trained pianist.
    pub fn has_trained_pianist(&self) -> bool {
        self.tensors.contains_key("pianist.net.w1")
    }

    /// Every tensor, sorted by name (for writing a model file that keeps them).
    pub fn tensors(&self) -> Vec<(&'static str, HostTensor)> {
        let mut v: Vec<(&'static str, HostTensor)> = self.tensors.iter().map(|(k, t)| (*k, t.clone())).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    /// Whether this model carries the trained listener.
    pub fn has_trained_listener(&self) -> bool {
        self.tensors.contains_key("listener.net.w1")
    }

    /// Whether the engine can play this model: its trained listener, if any, describes the hop
    /// [`crate::timing::DETECTION_HOPS`] before its newest frame, the delay the engine's latency
    /// and scheduling assume. A network trained with another delay (`cargo xtask train listener
    /// --hops D`) loads for evaluation but would play mistimed.
    pub fn playable(self) -> Result<Model, ModelError> {
        let got = crate::generator::detection_delay(crate::generator::ListenerKind::Trained, &self);
        if self.has_trained_listener() && got != crate::timing::DETECTION_HOPS {
            return Err(ModelError::DetectionDelay { got, want: crate::timing::DETECTION_HOPS });
        }
        Ok(self)
    }
}
