//! `embedding → lstm | gru` fused against the two layers one by one: the same
//! outputs and gradients (to rounding on the per-token path, bit for bit on
//! the layer-by-layer one), in f64 and f32, with ids repeated and unused, ids
//! that are not ids, empty batches, and any thread count.

use crate::float::Float;
use crate::gradcheck::assert_close;
use crate::init::{seeded_rng, Init};
use crate::layers::{EmbedRecurrentGrads, EmbedRecurrentTrace, Embedding, Gru, Layer, Lstm, Recurrent};
use crate::params::{ParamPath, Params};
use crate::tensor::Batch;

/// The values of every parameter of `p`, in visiting order.
fn values<T: Float, P: Params<T>>(p: &P) -> Vec<Vec<f64>> {
    let mut out = Vec::new();
    p.visit_params(&ParamPath::ROOT, &mut |p| out.push(p.value.iter().map(|v| v.as_f64()).collect()));
    out
}

/// `to`'s parameters set to `from`'s (cast to `T`).
fn copy_params<T: Float, P: Params<T>>(from: &[Vec<f64>], to: &mut P) {
    let mut k = 0;
    to.visit_params_mut(&ParamPath::ROOT, &mut |p| {
        p.value.iter_mut().zip(&from[k]).for_each(|(v, &f)| *v = T::cast(f));
        k += 1;
    });
}

/// An embedding and a recurrent layer in `T` with the values of seeded f64 ones.
fn layers<T: Float, R, R64, const STEPS: usize, const V: usize, const D: usize>(
    new: impl Fn(&mut crate::init::SeededRng) -> R64,
    zeros: impl Fn() -> R,
) -> (Embedding<T, STEPS, V, D>, R)
where
    R: Params<T>,
    R64: Params<f64>,
{
    let mut rng = seeded_rng(5);
    let (e64, r64) = (Embedding::<f64, STEPS, V, D>::new(&mut rng), new(&mut rng));
    let (mut e, mut r) = (Embedding::zeros(), zeros());
    copy_params(&values(&e64), &mut e);
    copy_params(&values(&r64), &mut r);
    (e, r)
}

/// Every value a training step gives, as f64, in this order: the recurrent
/// layer's output, the embedding's, the table's gradient, the recurrent
/// layer's four gradients; `fused` through the fused calls, else layer by layer.
fn step<T: Float, R, const STEPS: usize, const V: usize, const D: usize, const E: usize, const OUT: usize>(
    emb: &Embedding<T, STEPS, V, D>,
    rnn: &R,
    x: &Batch<T, STEPS>,
    fused: bool,
) -> Vec<Vec<f64>>
where
    R: Recurrent<T, E, OUT> + Params<T, Gradients = crate::layers::RecurrentWeights<T>>,
{
    let dy = Batch::<T, OUT>::from_fn(x.ncols(), |i, j| T::cast(((i * 7 + j * 3) % 13) as f64 * 0.1 - 0.6));
    let (mut e, mut y, mut de, mut ws) =
        (Batch::zeros(0), Batch::zeros(0), Batch::zeros(0), R::Workspace::default());
    let (mut g_e, mut g_r) = (emb.zero_gradients(), rnn.zero_gradients());
    if fused {
        let mut dx = Batch::from_element(x.ncols(), T::one());
        emb.forward_into_recurrent(rnn, x, &mut e, &mut y, &mut ws);
        let trace = EmbedRecurrentTrace { x, embedded: &e, y: &y };
        let grads = EmbedRecurrentGrads {
            embedding: &mut g_e,
            recurrent: &mut g_r,
            embedded: &mut de,
            x: Some(&mut dx),
        };
        emb.backward_through_recurrent(rnn, trace, &dy, &mut ws, grads);
        assert!(dx.iter().all(|&v| v == T::zero()), "the ids' gradient is zero");
    } else {
        Layer::forward(emb, x, &mut e);
        rnn.forward_with(&e, &mut y, &mut ws);
        rnn.backward(&e, &y, &dy, &mut ws, &mut g_r, Some(&mut de));
        Layer::backward(emb, x, &e, &de, &mut (), &mut g_e, None);
    }
    let mut out: Vec<Vec<f64>> = [y.as_slice(), e.as_slice(), g_e.weight.as_slice()]
        .map(|v| v.iter().map(|v| v.as_f64()).collect())
        .into();
    R::visit_grads(&g_r, &mut |g| out.push(g.iter().map(|v| v.as_f64()).collect()));
    out
}

/// `ids` (one sample after another) as a batch.
fn ids<T: Float, const STEPS: usize>(ids: &[usize]) -> Batch<T, STEPS> {
    Batch::from_iterator(ids.len() / STEPS, ids.iter().map(|&i| T::cast(i as f64)))
}

const NAMES: [&str; 7] = ["y", "embedded", "d table", "d weight_ih", "d weight_hh", "d bias_ih", "d bias_hh"];

/// The fused step against the layers one by one on `x`, within `tol`.
fn agree<T: Float, R, const STEPS: usize, const V: usize, const D: usize, const E: usize, const OUT: usize>(
    emb: &Embedding<T, STEPS, V, D>,
    rnn: &R,
    x: &Batch<T, STEPS>,
    tol: f64,
    what: &str,
) where
    R: Recurrent<T, E, OUT> + Params<T, Gradients = crate::layers::RecurrentWeights<T>>,
{
    let (apart, fused) = (step(emb, rnn, x, false), step(emb, rnn, x, true));
    assert_eq!(apart.len(), NAMES.len());
    for ((a, f), name) in apart.iter().zip(&fused).zip(NAMES) {
        assert!(a.iter().any(|&v| v != 0.0), "{what}: {name} is all zeros");
        assert_close(f, a, tol, &format!("{what}: {name}"));
    }
}

// 5 steps of 7 ids of 3 features, 4 hidden units.
const STEPS: usize = 5;
const V: usize = 7;
const D: usize = 3;
const H: usize = 4;
const E: usize = STEPS * D;
const OUT: usize = STEPS * H;

/// Three samples (15 tokens for 7 ids, so the per-token path): ids 3 and 6
/// never appear, 0, 1 and 5 several times, also within a sample.
const REPEATED: [usize; 15] = [1, 0, 1, 5, 2, 4, 4, 0, 5, 5, 1, 2, 0, 0, 1];

/// [`step`] at these sizes.
fn small<T: Float, R>(
    emb: &Embedding<T, STEPS, V, D>,
    rnn: &R,
    x: &Batch<T, STEPS>,
    fused: bool,
) -> Vec<Vec<f64>>
where
    R: Recurrent<T, E, OUT> + Params<T, Gradients = crate::layers::RecurrentWeights<T>>,
{
    step::<T, R, STEPS, V, D, E, OUT>(emb, rnn, x, fused)
}

fn lstm<T: Float>() -> (Embedding<T, STEPS, V, D>, Lstm<T, STEPS, D, H>) {
    layers(|rng| Lstm::<f64, STEPS, D, H>::new(Init::Auto, rng), Lstm::zeros)
}

fn gru<T: Float>() -> (Embedding<T, STEPS, V, D>, Gru<T, STEPS, D, H>) {
    layers(|rng| Gru::<f64, STEPS, D, H>::new(Init::Auto, rng), Gru::zeros)
}

#[test]
fn fused_lstm_and_gru_agree_with_the_layers_in_f64_and_f32() {
    let (e, r) = lstm::<f64>();
    agree::<_, _, STEPS, V, D, E, OUT>(&e, &r, &ids::<f64, STEPS>(&REPEATED), 1e-12, "lstm f64");
    let (e, r) = lstm::<f32>();
    agree::<_, _, STEPS, V, D, E, OUT>(&e, &r, &ids::<f32, STEPS>(&REPEATED), 1e-5, "lstm f32");
    let (e, r) = gru::<f64>();
    agree::<_, _, STEPS, V, D, E, OUT>(&e, &r, &ids::<f64, STEPS>(&REPEATED), 1e-12, "gru f64");
    let (e, r) = gru::<f32>();
    agree::<_, _, STEPS, V, D, E, OUT>(&e, &r, &ids::<f32, STEPS>(&REPEATED), 1e-5, "gru f32");
}

#[test]
fn unused_ids_get_a_zero_gradient_on_the_per_token_path() {
    let (e, r) = lstm::<f64>();
    let d_table = &small(&e, &r, &ids::<f64, STEPS>(&REPEATED), true)[2];
    for v in 0..V {
        let row = &d_table[v * D..(v + 1) * D];
        assert_eq!(row.iter().all(|&g| g == 0.0), [3, 6].contains(&v), "id {v}: {row:?}");
    }
}

#[test]
fn a_batch_of_fewer_tokens_than_ids_runs_the_layers_bit_for_bit() {
    // One sample: 5 tokens for 7 ids, so the layers one by one, the same bits.
    let x = ids::<f32, STEPS>(&REPEATED[..STEPS]);
    let (e, r) = lstm::<f32>();
    assert_eq!(small(&e, &r, &x, true), small(&e, &r, &x, false));
    let (e, r) = gru::<f32>();
    assert_eq!(small(&e, &r, &x, true), small(&e, &r, &x, false));
}

#[test]
fn an_empty_batch_gives_empty_outputs_and_zero_gradients() {
    let x = Batch::<f64, STEPS>::zeros(0);
    let (e, r) = lstm::<f64>();
    let out = small(&e, &r, &x, true);
    assert!(out[..2].iter().all(Vec::is_empty));
    assert!(out[2..].iter().all(|g| !g.is_empty() && g.iter().all(|&v| v == 0.0)));
}

#[test]
fn values_that_are_not_ids_give_nan_steps_and_no_panic() {
    // Sample 1 holds 9 (beyond V) at step 1 and 2.5 at step 3; the pass reads nothing out of bounds.
    let mut bad = REPEATED.map(|i| i as f64);
    (bad[STEPS + 1], bad[STEPS + 3]) = (9.0, 2.5);
    let x = Batch::<f64, STEPS>::from_column_slice(&bad);
    let (e, r) = lstm::<f64>();
    let out = small(&e, &r, &x, true);
    let sample = |b: usize| &out[0][b * OUT..(b + 1) * OUT];
    assert!(sample(0).iter().chain(sample(2)).all(|v| v.is_finite()));
    assert!(sample(1)[..H].iter().all(|v| v.is_finite()), "the steps before the bad id");
    assert!(sample(1)[H..].iter().all(|v| v.is_nan()), "from the bad id on");
    let (e, r) = gru::<f64>();
    assert!(small(&e, &r, &x, true)[0][OUT + H..2 * OUT].iter().all(|v| v.is_nan()));
}

#[test]
fn fused_results_do_not_depend_on_the_thread_count() {
    // Big enough for the copies and sums by token to split: 512 columns of 128 gate rows.
    const T: usize = 16;
    let _lock = crate::tensor::threads::thread_count_lock();
    let x = Batch::<f32, T>::from_fn(32, |i, j| ((i * 5 + j * 3) % 11) as f32);
    let (e, r) = layers::<f32, _, _, T, 11, 8>(
        |rng| Lstm::<f64, T, 8, 32>::new(Init::Auto, rng),
        Lstm::<f32, T, 8, 32>::zeros,
    );
    let run = |threads| {
        crate::tensor::set_threads(threads);
        step::<f32, _, T, 11, 8, { T * 8 }, { T * 32 }>(&e, &r, &x, true)
    };
    let (one, two) = (run(1), run(2));
    crate::tensor::set_threads(1);
    assert_eq!(one, two);
}
