//! candle 0.11 (candle-core + candle-nn) on `Device::Cpu`, default features (no mkl).
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Linear, Optimizer, VarBuilder, VarMap, SGD};
use staticnet_peers::{
    framework_main, Data, Framework, InferStep, Model, TrainStep, LR, MLP_LAYERS, TINY_LAYERS,
};
use std::hint::black_box;

enum Net {
    Dense(Vec<Linear>),
    Cnn { conv: Conv2d, fc: Linear },
}

impl Net {
    fn new(model: Model, vb: VarBuilder) -> Result<Net> {
        Ok(match model {
            Model::Tiny | Model::Mlp => {
                let layers = if model == Model::Tiny { &TINY_LAYERS } else { &MLP_LAYERS };
                let mut ls = Vec::new();
                for (j, &(i, o)) in layers.iter().enumerate() {
                    ls.push(candle_nn::linear(i, o, vb.pp(format!("fc{j}")))?);
                }
                Net::Dense(ls)
            }
            Model::Cnn => Net::Cnn {
                conv: candle_nn::conv2d(1, 8, 3, Conv2dConfig::default(), vb.pp("conv"))?,
                fc: candle_nn::linear(8 * 13 * 13, 10, vb.pp("fc"))?,
            },
        })
    }

    /// The same network on detached copies of the weights: no gradient tracking.
    fn detached(&self) -> Net {
        let lin = |l: &Linear| Linear::new(l.weight().detach(), l.bias().map(Tensor::detach));
        match self {
            Net::Dense(ls) => Net::Dense(ls.iter().map(lin).collect()),
            Net::Cnn { conv, fc } => Net::Cnn {
                conv: Conv2d::new(conv.weight().detach(), conv.bias().map(Tensor::detach), *conv.config()),
                fc: lin(fc),
            },
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Net::Dense(ls) => {
                let mut h = x.clone();
                for (j, l) in ls.iter().enumerate() {
                    h = l.forward(&h)?;
                    if j + 1 < ls.len() {
                        h = h.relu()?;
                    }
                }
                Ok(h)
            }
            Net::Cnn { conv, fc } => {
                let h = conv.forward(x)?.relu()?.max_pool2d(2)?.flatten_from(1)?;
                fc.forward(&h)
            }
        }
    }
}

fn input(model: Model, batch: usize, d: &Data, dev: &Device) -> Result<Tensor> {
    match model {
        Model::Cnn => Tensor::from_vec(d.x.clone(), (batch, 1, 28, 28), dev),
        _ => Tensor::from_vec(d.x.clone(), (batch, model.inputs()), dev),
    }
}

struct Train {
    _varmap: VarMap,
    net: Net,
    opt: SGD,
    x: Tensor,
    y: Tensor,
}

impl TrainStep for Train {
    fn step(&mut self) -> f32 {
        let logits = self.net.forward(&self.x).unwrap();
        let loss = candle_nn::loss::cross_entropy(&logits, &self.y).unwrap();
        self.opt.backward_step(&loss).unwrap();
        loss.to_scalar::<f32>().unwrap()
    }
    fn eval_loss(&mut self) -> f32 {
        let logits = self.net.detached().forward(&self.x).unwrap();
        candle_nn::loss::cross_entropy(&logits, &self.y).unwrap().to_scalar::<f32>().unwrap()
    }
}

struct Infer {
    net: Net,
    x: Tensor,
}

impl InferStep for Infer {
    fn step(&mut self) {
        black_box(self.net.forward(&self.x).unwrap());
    }
    fn checksum(&mut self) -> f32 {
        self.net.forward(&self.x).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap()
    }
}

// candle's CPU device cannot be seeded (`set_seed` errors on Cpu): the initial parameters differ
// from run to run; the timing does not depend on their values.
fn build_train(model: Model, batch: usize, d: &Data) -> std::result::Result<Box<dyn TrainStep>, String> {
    let f = || -> Result<Train> {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let net = Net::new(model, vb)?;
        let opt = SGD::new(varmap.all_vars(), LR as f64)?;
        let x = input(model, batch, d, &dev)?;
        let y = Tensor::from_vec(d.y.iter().map(|&c| c as u32).collect::<Vec<u32>>(), (batch,), &dev)?;
        Ok(Train { _varmap: varmap, net, opt, x, y })
    };
    f().map(|t| Box::new(t) as Box<dyn TrainStep>).map_err(|e| e.to_string())
}

fn build_infer(model: Model, batch: usize, d: &Data) -> std::result::Result<Box<dyn InferStep>, String> {
    let f = || -> Result<Infer> {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let net = Net::new(model, vb)?.detached();
        Ok(Infer { net, x: input(model, batch, d, &dev)? })
    };
    f().map(|t| Box::new(t) as Box<dyn InferStep>).map_err(|e| e.to_string())
}

fn main() {
    framework_main(Framework {
        name: "candle",
        version: env!("PEERS_LOCK_CANDLE_CORE"),
        info: || {
            serde_json::json!({
                "device": "Cpu",
                "candle-nn": env!("PEERS_LOCK_CANDLE_NN"),
                "features": "default (no mkl, no accelerate)",
                "with_avx": candle_core::utils::with_avx(),
                "with_f16c": candle_core::utils::with_f16c(),
                "get_num_threads": candle_core::utils::get_num_threads(),
                "rayon_current_num_threads": rayon::current_num_threads(),
            })
        },
        build_train,
        build_infer,
    });
}
