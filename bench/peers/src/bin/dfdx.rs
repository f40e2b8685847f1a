//! dfdx 0.13 on its `Cpu` device (default features: std, fast-alloc, cpu = gemm + rayon).
//!
//! Shapes are compile-time constants in dfdx, so each case is its own concrete type (macros
//! below). No cnn: dfdx 0.13's Conv2D, MaxPool2D and Flatten2D (and the conv2d / pool2d tensor
//! ops) are `#[cfg(feature = "nightly")]` (generic_const_exprs), and that feature does not build
//! with rustc 1.95, even with RUSTC_BOOTSTRAP=1 (see README.md); the case is reported as skipped.

use dfdx::optim::{Optimizer, Sgd};
use dfdx::prelude::*;
use staticnet_peers::{framework_main, Data, Framework, InferStep, Model, TrainStep, LR};
use std::hint::black_box;

type Tiny = ((Linear<4, 16>, ReLU), (Linear<16, 16>, ReLU), Linear<16, 3>);
type Mlp = ((Linear<784, 256>, ReLU), (Linear<256, 128>, ReLU), Linear<128, 10>);

fn sgd_config() -> SgdConfig {
    SgdConfig { lr: LR as f64, momentum: None, weight_decay: None }
}

fn one_hot(y: &[usize], classes: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; y.len() * classes];
    for (i, &c) in y.iter().enumerate() {
        v[i * classes + c] = 1.0;
    }
    v
}

/// A training case for model type `$m` with input shape `$xs` and target shape `$ys`.
macro_rules! train_case {
    ($name:ident, $m:ty, $xs:ty, $ys:ty) => {
        struct $name {
            model: <$m as BuildOnDevice<Cpu, f32>>::Built,
            opt: Sgd<<$m as BuildOnDevice<Cpu, f32>>::Built, f32, Cpu>,
            grads: Option<Gradients<f32, Cpu>>,
            x: Tensor<$xs, f32, Cpu>,
            y: Tensor<$ys, f32, Cpu>,
        }
        impl $name {
            fn new(d: &Data, classes: usize) -> Self {
                let dev = Cpu::seed_from_u64(0);
                let model = dev.build_module::<$m, f32>();
                let opt = Sgd::new(&model, sgd_config());
                let grads = Some(model.alloc_grads());
                let x = dev.tensor_from_vec(d.x.clone(), <$xs>::default());
                let y = dev.tensor_from_vec(one_hot(&d.y, classes), <$ys>::default());
                Self { model, opt, grads, x, y }
            }
        }
        impl TrainStep for $name {
            fn step(&mut self) -> f32 {
                let grads = self.grads.take().unwrap();
                let logits = self.model.forward_mut(self.x.trace(grads));
                let loss = cross_entropy_with_logits_loss(logits, self.y.clone());
                let value = loss.array();
                let mut grads = loss.backward();
                self.opt.update(&mut self.model, &grads).unwrap();
                self.model.zero_grads(&mut grads);
                self.grads = Some(grads);
                value
            }
            fn eval_loss(&mut self) -> f32 {
                let logits = self.model.forward(self.x.clone());
                cross_entropy_with_logits_loss(logits, self.y.clone()).array()
            }
        }
    };
}

macro_rules! infer_case {
    ($name:ident, $m:ty, $xs:ty) => {
        struct $name {
            model: <$m as BuildOnDevice<Cpu, f32>>::Built,
            x: Tensor<$xs, f32, Cpu>,
        }
        impl $name {
            fn new(d: &Data) -> Self {
                let dev = Cpu::seed_from_u64(0);
                let model = dev.build_module::<$m, f32>();
                let x = dev.tensor_from_vec(d.x.clone(), <$xs>::default());
                Self { model, x }
            }
        }
        impl InferStep for $name {
            fn step(&mut self) {
                black_box(self.model.forward(self.x.clone()));
            }
            fn checksum(&mut self) -> f32 {
                self.model.forward(self.x.clone()).as_vec().iter().sum()
            }
        }
    };
}

train_case!(TinyTrain32, Tiny, Rank2<32, 4>, Rank2<32, 3>);
train_case!(MlpTrain128, Mlp, Rank2<128, 784>, Rank2<128, 10>);
infer_case!(TinyInfer1, Tiny, Rank2<1, 4>);
infer_case!(MlpInfer1, Mlp, Rank2<1, 784>);
infer_case!(MlpInfer128, Mlp, Rank2<128, 784>);

fn build_train(model: Model, batch: usize, d: &Data) -> Result<Box<dyn TrainStep>, String> {
    Ok(match (model, batch) {
        (Model::Tiny, 32) => Box::new(TinyTrain32::new(d, 3)),
        (Model::Mlp, 128) => Box::new(MlpTrain128::new(d, 10)),
        (Model::Cnn, _) => {
            return Err("dfdx 0.13 has conv2d/pool2d/Flatten2D only behind its `nightly` feature \
                        (generic_const_exprs), which does not build with rustc 1.95"
                .into())
        }
        _ => return Err(format!("no dfdx instantiation for {model:?} batch {batch}")),
    })
}

fn build_infer(model: Model, batch: usize, d: &Data) -> Result<Box<dyn InferStep>, String> {
    Ok(match (model, batch) {
        (Model::Tiny, 1) => Box::new(TinyInfer1::new(d)),
        (Model::Mlp, 1) => Box::new(MlpInfer1::new(d)),
        (Model::Mlp, 128) => Box::new(MlpInfer128::new(d)),
        _ => return Err(format!("no dfdx instantiation for {model:?} batch {batch}")),
    })
}

fn main() {
    framework_main(Framework {
        name: "dfdx",
        version: env!("PEERS_LOCK_DFDX"),
        info: || {
            serde_json::json!({
                "device": "Cpu",
                "features": "default (std, fast-alloc, cpu)",
                "gemm": env!("PEERS_LOCK_GEMM_DFDX"),
                "rayon_current_num_threads": rayon::current_num_threads(),
            })
        },
        build_train,
        build_infer,
    });
}
