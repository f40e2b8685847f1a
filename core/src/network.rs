//! The interface every generated network implements, and composition of networks.

mod build;
pub use build::Build;

use crate::float::Float;
use crate::init::SeededRng;
use crate::params::{Param, ParamMut, ParamPath, Params};
use crate::tensor::Batch;

/// One layer of a generated network, as the macro saw it: for summaries,
/// graph export and documentation. `Net::LAYERS` lists them in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// The field name (`fc1`, or `relu_1` for an unnamed layer at position 1).
    pub name: &'static str,
    /// The `state_dict` prefix of its parameters (`fc1`, or `0` when unnamed).
    pub param_name: &'static str,
    /// The layer as it reads in the language, with sizes resolved: `dense(784 -> 256)`.
    pub kind: &'static str,
    /// The shape coming in.
    pub input_shape: &'static [usize],
    /// The shape going out.
    pub output_shape: &'static [usize],
    /// How many trainable scalars it holds.
    pub params: usize,
    /// How many non-trainable scalars it saves with them (batch-norm running statistics).
    pub buffers: usize,
    /// The layers inside a block: one list per branch of a `parallel`, the body
    /// of a `residual`, or a nested network's layers; empty for plain layers.
    pub children: &'static [&'static [LayerInfo]],
}

/// A statically shaped network from `IN` to `OUT` features, computing in `T`.
///
/// `network!` implements it with straight-line code: the training forward
/// fills a typed [`Network::Trace`] with what the backward pass needs, and the
/// backward pass fills a typed gradient structure ([`Params::Gradients`]).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a network from [{IN}] to [{OUT}] features",
    label = "this network does not take [{IN}] features to [{OUT}]",
    note = "the output size of one network must equal the input size of the next"
)]
pub trait Network<T: Float, const IN: usize, const OUT: usize>: Params<T> {
    /// The per-batch buffers of a training pass: every intermediate output
    /// and every intermediate gradient. Reused across steps; it reallocates
    /// only when the batch size changes.
    type Trace: Default + Send;

    /// The activation the network ends in, when its last layer is one
    /// (`Some("softmax")`): a loss that applies the same activation itself
    /// refuses to train or evaluate it, and [`Network::predict`] does not apply
    /// softmax to outputs that already are probabilities.
    const FINAL_ACTIVATION: Option<&'static str> = None;

    /// The inference pass.
    fn forward(&self, x: &Batch<T, IN>) -> Batch<T, OUT>;

    /// The training pass: like [`Network::forward`] but in training mode (batch
    /// statistics, dropout; running statistics are updated), and it keeps what
    /// [`Network::backward`] needs in `trace` and returns the output from it.
    fn forward_train<'t>(&mut self, x: &Batch<T, IN>, trace: &'t mut Self::Trace) -> &'t Batch<T, OUT>;

    /// Backpropagates `d_out` (the gradient of the loss with respect to the
    /// output) through the pass recorded in `trace`, whose input was `x`.
    /// Parameter gradients overwrite `grads`; the input gradient is written to
    /// `d_input` only when asked for, since it costs a product.
    fn backward(
        &self,
        x: &Batch<T, IN>,
        trace: &mut Self::Trace,
        d_out: &Batch<T, OUT>,
        grads: &mut Self::Gradients,
        d_input: Option<&mut Batch<T, IN>>,
    );

    /// [`Network::backward`], calling `on_ready(range, grads)` as soon as the
    /// gradients of `range` are final: `range` indexes the flat parameter
    /// order of [`Params::visit_grads`] (visiting order, `0..PARAM_COUNT`).
    /// Generated networks call it after each top-level layer with parameters,
    /// in backward order (so the ranges come from the last parameters down,
    /// adjacent, and cover `0..PARAM_COUNT` once); this default calls it once,
    /// with the whole range, after the whole pass. Data-parallel training
    /// starts summing a bucket of gradients while the earlier layers still run
    /// (PyTorch DDP's gradient hooks); [`Network::backward`] is this with a
    /// hook that does nothing, which the compiler removes.
    ///
    /// ```
    /// # use staticnet_core::{network::Network, params::Params, tensor::Batch, Float};
    /// /// The ranges a backward pass reports, in order.
    /// fn ready_order<T: Float, N: Network<T, 4, 2>>(net: &mut N, x: &Batch<T, 4>, d: &Batch<T, 2>) -> Vec<std::ops::Range<usize>> {
    ///     let (mut trace, mut grads, mut ranges) = (N::Trace::default(), net.zero_gradients(), Vec::new());
    ///     net.forward_train(x, &mut trace);
    ///     net.backward_with(x, &mut trace, d, &mut grads, None, &mut |range, _grads: &N::Gradients| ranges.push(range));
    ///     ranges
    /// }
    /// ```
    #[allow(clippy::too_many_arguments)]
    fn backward_with<H>(
        &self,
        x: &Batch<T, IN>,
        trace: &mut Self::Trace,
        d_out: &Batch<T, OUT>,
        grads: &mut Self::Gradients,
        d_input: Option<&mut Batch<T, IN>>,
        on_ready: &mut H,
    ) where
        H: FnMut(core::ops::Range<usize>, &Self::Gradients),
    {
        self.backward(x, trace, d_out, grads, d_input);
        on_ready(0..Self::PARAM_COUNT, grads);
    }

    /// The inference pass into the buffers of `trace`, which it reuses: once
    /// they exist for a batch size, a call allocates nothing. Same values as
    /// [`Network::forward`].
    fn infer<'t>(&self, x: &Batch<T, IN>, trace: &'t mut Self::Trace) -> &'t Batch<T, OUT>;

    /// Calls `f` with each layer's name and the output it left in `trace`, in
    /// order: for finding where a NaN first appeared.
    fn visit_outputs(trace: &Self::Trace, f: &mut dyn FnMut(&str, &[T]));

    /// The output that the last [`Network::forward_train`] left in `trace`.
    fn trace_output(trace: &Self::Trace) -> &Batch<T, OUT>;

    /// Checks that `x` is an input this network can take: for a network of
    /// token ids (`input: tokens[..]`), that every value is an id its embedding
    /// has ([`crate::error::Error::TokenOutOfRange`] otherwise). Any float is an
    /// input of the other networks. The trainer and `evaluate` check a
    /// dataset's inputs with it before the first batch.
    fn check_input(x: &Batch<T, IN>) -> crate::error::Result<()> {
        let _ = x;
        Ok(())
    }

    /// An incremental decoder of this network, when it is a causal token
    /// model that `network!` can run one step at a time
    /// ([`crate::decode`]): each new id costs one position, not the window.
    /// `None` for every other network (the default).
    fn decoder(&self) -> Option<Box<dyn crate::decode::Decoder<T> + '_>> {
        None
    }

    /// Class probabilities for a batch: the softmax of each sample's outputs,
    /// for networks that end in logits (trained with `SoftmaxCrossEntropy`);
    /// the outputs themselves for a network that ends in `softmax` (trained
    /// with [`crate::loss::CrossEntropyOnProbabilities`]). The raw outputs are
    /// [`Network::forward`].
    fn predict(&self, x: &Batch<T, IN>) -> Batch<T, OUT> {
        let mut probabilities = self.forward(x);
        if Self::FINAL_ACTIVATION == Some("softmax") {
            return probabilities;
        }
        crate::layers::Activation::forward_in_place(&crate::layers::Softmax, &mut probabilities);
        probabilities
    }

    /// The most likely class of each sample with its probability.
    fn classify(&self, x: &Batch<T, IN>) -> Vec<Prediction<T>> {
        let probabilities = self.predict(x);
        probabilities
            .column_iter()
            .map(|p| {
                let class = p.imax();
                Prediction { class, probability: p[class] }
            })
            .collect()
    }

    /// This network followed by `next`: a network from `IN` to `NEXT_OUT`.
    /// Only networks whose sizes fit can be chained; anything else fails to type-check.
    fn then<B, const NEXT_OUT: usize>(self, next: B) -> Chain<Self, B, OUT>
    where
        Self: Sized,
        B: Network<T, OUT, NEXT_OUT>,
    {
        Chain { first: self, second: next }
    }
}

/// The most likely class of a sample and its probability.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction<T> {
    /// The class index (the output row with the highest probability).
    pub class: usize,
    /// Its probability, in [0, 1].
    pub probability: T,
}

/// Two networks in sequence, the output of `first` feeding `second`.
///
/// Parameters are named like an `nn.Sequential` of the two: `0.` and `1.` prefixes.
#[derive(Clone, Debug)]
pub struct Chain<A, B, const MID: usize> {
    /// The first network.
    pub first: A,
    /// The second network.
    pub second: B,
}

/// The trace of a [`Chain`]: both networks' traces and the gradient between them.
pub struct ChainTrace<A, B, T: Float, const MID: usize> {
    first: A,
    second: B,
    d_mid: Batch<T, MID>,
}

impl<A: Default, B: Default, T: Float, const MID: usize> Default for ChainTrace<A, B, T, MID> {
    fn default() -> Self {
        ChainTrace { first: A::default(), second: B::default(), d_mid: Batch::zeros(0) }
    }
}

impl<T: Float, A: Params<T>, B: Params<T>, const MID: usize> Params<T> for Chain<A, B, MID> {
    type Gradients = (A::Gradients, B::Gradients);
    const PARAM_COUNT: usize = A::PARAM_COUNT + B::PARAM_COUNT;

    fn zero_gradients(&self) -> Self::Gradients {
        (self.first.zero_gradients(), self.second.zero_gradients())
    }

    fn visit_params(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.first.visit_params(&path.join("0"), f);
        self.second.visit_params(&path.join("1"), f);
    }

    fn visit_params_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.first.visit_params_mut(&path.join("0"), f);
        self.second.visit_params_mut(&path.join("1"), f);
    }

    fn visit_params_with_grads(
        &mut self,
        grads: &Self::Gradients,
        path: &ParamPath<'_>,
        f: &mut dyn FnMut(ParamMut<'_, T>, &[T]),
    ) {
        self.first.visit_params_with_grads(&grads.0, &path.join("0"), f);
        self.second.visit_params_with_grads(&grads.1, &path.join("1"), f);
    }

    fn visit_grads(grads: &Self::Gradients, f: &mut dyn FnMut(&[T])) {
        A::visit_grads(&grads.0, f);
        B::visit_grads(&grads.1, f);
    }

    fn visit_buffers(&self, path: &ParamPath<'_>, f: &mut dyn FnMut(Param<'_, T>)) {
        self.first.visit_buffers(&path.join("0"), f);
        self.second.visit_buffers(&path.join("1"), f);
    }

    fn visit_buffers_mut(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamMut<'_, T>)) {
        self.first.visit_buffers_mut(&path.join("0"), f);
        self.second.visit_buffers_mut(&path.join("1"), f);
    }

    fn visit_rngs(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(ParamPath<'_>, &mut SeededRng)) {
        self.first.visit_rngs(&path.join("0"), f);
        self.second.visit_rngs(&path.join("1"), f);
    }

    fn visit_compact(&mut self, path: &ParamPath<'_>, f: &mut dyn FnMut(crate::quant::CompactSlot<'_, T>)) {
        self.first.visit_compact(&path.join("0"), f);
        self.second.visit_compact(&path.join("1"), f);
    }
}

impl<T, A, B, const IN: usize, const MID: usize, const OUT: usize> Network<T, IN, OUT> for Chain<A, B, MID>
where
    T: Float,
    A: Network<T, IN, MID>,
    B: Network<T, MID, OUT>,
{
    type Trace = ChainTrace<A::Trace, B::Trace, T, MID>;
    const FINAL_ACTIVATION: Option<&'static str> = B::FINAL_ACTIVATION;

    fn forward(&self, x: &Batch<T, IN>) -> Batch<T, OUT> {
        self.second.forward(&self.first.forward(x))
    }

    fn forward_train<'t>(&mut self, x: &Batch<T, IN>, trace: &'t mut Self::Trace) -> &'t Batch<T, OUT> {
        let mid = self.first.forward_train(x, &mut trace.first);
        self.second.forward_train(mid, &mut trace.second)
    }

    fn backward(
        &self,
        x: &Batch<T, IN>,
        trace: &mut Self::Trace,
        d_out: &Batch<T, OUT>,
        grads: &mut Self::Gradients,
        d_input: Option<&mut Batch<T, IN>>,
    ) {
        let mid = A::trace_output(&trace.first);
        self.second.backward(mid, &mut trace.second, d_out, &mut grads.1, Some(&mut trace.d_mid));
        self.first.backward(x, &mut trace.first, &trace.d_mid, &mut grads.0, d_input);
    }

    fn backward_with<H>(
        &self,
        x: &Batch<T, IN>,
        trace: &mut Self::Trace,
        d_out: &Batch<T, OUT>,
        grads: &mut Self::Gradients,
        d_input: Option<&mut Batch<T, IN>>,
        on_ready: &mut H,
    ) where
        H: FnMut(core::ops::Range<usize>, &Self::Gradients),
    {
        // The second network's parameters follow the first's in visiting order;
        // each network's gradients are reported whole (the hook sees the pair).
        let mid = A::trace_output(&trace.first);
        self.second.backward(mid, &mut trace.second, d_out, &mut grads.1, Some(&mut trace.d_mid));
        on_ready(A::PARAM_COUNT..Self::PARAM_COUNT, grads);
        self.first.backward(x, &mut trace.first, &trace.d_mid, &mut grads.0, d_input);
        on_ready(0..A::PARAM_COUNT, grads);
    }

    fn infer<'t>(&self, x: &Batch<T, IN>, trace: &'t mut Self::Trace) -> &'t Batch<T, OUT> {
        let mid = self.first.infer(x, &mut trace.first);
        self.second.infer(mid, &mut trace.second)
    }

    fn visit_outputs(trace: &Self::Trace, f: &mut dyn FnMut(&str, &[T])) {
        A::visit_outputs(&trace.first, f);
        B::visit_outputs(&trace.second, f);
    }

    fn check_input(x: &Batch<T, IN>) -> crate::error::Result<()> {
        A::check_input(x)
    }

    fn trace_output(trace: &Self::Trace) -> &Batch<T, OUT> {
        B::trace_output(&trace.second)
    }
}
