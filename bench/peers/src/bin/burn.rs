//! burn 0.22 with the ndarray backend (burn-ndarray, default features: std, simd, multi-threads;
//! no BLAS) and autodiff (burn-autodiff) for training. burn 0.22 dispatches through a `Device`:
//! `Device::ndarray()` for inference, `Device::ndarray().autodiff()` for training.
#![allow(deprecated)] // burn 0.22 marks `Device::ndarray()` deprecated in favour of its new Flex backend

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use staticnet_peers::{
    framework_main, Data, Framework, InferStep, Model, TrainStep, LR, MLP_LAYERS, TINY_LAYERS,
};
use std::hint::black_box;

#[derive(Module, Debug)]
struct Dense {
    layers: Vec<Linear>,
}

#[derive(Module, Debug)]
struct Cnn {
    conv: Conv2d,
    pool: MaxPool2d,
    fc: Linear,
}

/// The two network shapes behind one interface; the batch input is rank 2 (dense) or rank 4 (cnn).
trait Net: Module + Sized {
    type In: Clone;
    fn logits(&self, x: Self::In) -> Tensor<2>;
    fn input_to(x: &Self::In, device: &Device) -> Self::In;
}

impl Net for Dense {
    type In = Tensor<2>;
    fn logits(&self, x: Tensor<2>) -> Tensor<2> {
        let n = self.layers.len();
        let mut h = x;
        for (j, l) in self.layers.iter().enumerate() {
            h = l.forward(h);
            if j + 1 < n {
                h = relu(h);
            }
        }
        h
    }
    fn input_to(x: &Tensor<2>, device: &Device) -> Tensor<2> {
        x.clone().to_device(device)
    }
}

impl Net for Cnn {
    type In = Tensor<4>;
    fn logits(&self, x: Tensor<4>) -> Tensor<2> {
        let h = self.pool.forward(relu(self.conv.forward(x)));
        self.fc.forward(h.flatten(1, 3))
    }
    fn input_to(x: &Tensor<4>, device: &Device) -> Tensor<4> {
        x.clone().to_device(device)
    }
}

fn dense(model: Model, device: &Device) -> Dense {
    let layers = if model == Model::Tiny { &TINY_LAYERS } else { &MLP_LAYERS };
    Dense { layers: layers.iter().map(|&(i, o)| LinearConfig::new(i, o).init(device)).collect() }
}

fn cnn(device: &Device) -> Cnn {
    Cnn {
        conv: Conv2dConfig::new([1, 8], [3, 3]).init(device), // stride 1, valid padding, bias
        pool: MaxPool2dConfig::new([2, 2]).init(),            // stride = kernel
        fc: LinearConfig::new(8 * 13 * 13, 10).init(device),
    }
}

struct Train<N: Net> {
    device: Device,
    net: Option<N>,
    opt: ModuleOptimizer,
    loss: CrossEntropyLoss,
    x: N::In,
    y: Tensor<1, Int>,
}

impl<N: Net> TrainStep for Train<N> {
    fn step(&mut self) -> f32 {
        let net = self.net.take().unwrap();
        let loss = self.loss.forward(net.logits(self.x.clone()), self.y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        self.net = Some(self.opt.step(LR as f64, net, grads));
        loss.into_scalar::<f32>()
    }
    fn eval_loss(&mut self) -> f32 {
        // valid(): the same parameters on the plain (non-autodiff) device
        let net = self.net.as_ref().unwrap().valid();
        let inner = self.device.clone().inner();
        let loss = CrossEntropyLossConfig::new().init(&inner);
        let x = N::input_to(&self.x, &inner);
        loss.forward(net.logits(x), self.y.clone().to_device(&inner)).into_scalar::<f32>()
    }
}

struct Infer<N: Net> {
    device: Device,
    net: N,
    x: N::In,
}

impl<N: Net> InferStep for Infer<N> {
    fn step(&mut self) {
        black_box(self.net.logits(self.x.clone()));
        self.device.sync().unwrap();
    }
    fn checksum(&mut self) -> f32 {
        self.net.logits(self.x.clone()).sum().into_scalar::<f32>()
    }
}

fn x2(d: &Data, batch: usize, n: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(d.x.clone(), [batch, n]), device)
}

fn x4(d: &Data, batch: usize, device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(d.x.clone(), [batch, 1, 28, 28]), device)
}

fn labels(d: &Data, device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(
        TensorData::new(d.y.iter().map(|&c| c as i64).collect::<Vec<i64>>(), [d.y.len()]),
        device,
    )
}

fn build_train(model: Model, batch: usize, d: &Data) -> Result<Box<dyn TrainStep>, String> {
    let device = Device::ndarray().autodiff();
    device.seed(0);
    let opt = SgdConfig::new().init(); // no momentum, no weight decay, no clipping
    let loss = CrossEntropyLossConfig::new().init(&device);
    let y = labels(d, &device);
    Ok(match model {
        Model::Cnn => {
            let x = x4(d, batch, &device);
            Box::new(Train { net: Some(cnn(&device)), device, opt, loss, x, y })
        }
        _ => {
            let x = x2(d, batch, model.inputs(), &device);
            Box::new(Train { net: Some(dense(model, &device)), device, opt, loss, x, y })
        }
    })
}

fn build_infer(model: Model, batch: usize, d: &Data) -> Result<Box<dyn InferStep>, String> {
    let device = Device::ndarray();
    device.seed(0);
    Ok(match model {
        Model::Cnn => {
            let x = x4(d, batch, &device);
            Box::new(Infer { net: cnn(&device), device, x })
        }
        _ => {
            let x = x2(d, batch, model.inputs(), &device);
            Box::new(Infer { net: dense(model, &device), device, x })
        }
    })
}

fn main() {
    framework_main(Framework {
        name: "burn-ndarray",
        version: env!("PEERS_LOCK_BURN"),
        info: || {
            let x = Tensor::<2>::zeros([1, 1], &Device::ndarray());
            serde_json::json!({
                "device": "Device::ndarray() (+ .autodiff() for training)",
                "burn-ndarray": env!("PEERS_LOCK_BURN_NDARRAY"),
                "burn-autodiff": env!("PEERS_LOCK_BURN_AUTODIFF"),
                "matrixmultiply": env!("PEERS_LOCK_MATRIXMULTIPLY"),
                "features": "burn: default + ndarray + autodiff; burn-ndarray default (std, simd, multi-threads), no BLAS",
                "float_dtype": format!("{:?}", x.dtype()),
                "rayon_current_num_threads": rayon::current_num_threads(),
            })
        },
        build_train,
        build_infer,
    });
}
