//! Running an export through tract and comparing it with staticnet.

use staticnet::onnx::Export;
use staticnet::prelude::*;
use tract_onnx::prelude::*;

/// A deterministic value in `[-1, 1)` for each `k` (splitmix64), so no rand dependency.
pub fn noise(seed: u64, k: usize) -> f32 {
    let mut z = seed.wrapping_add((k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

/// A batch of `n` samples of uniform noise in `[-1, 1)`.
pub fn random_batch<const N: usize>(n: usize, seed: u64) -> Batch<f32, N> {
    Batch::from_fn(n, |i, j| noise(seed, j * N + i))
}

/// Moves every parameter by up to ±0.2 and draws batch-norm statistics (mean in
/// ±0.3, variance in [0.5, 1.5]), so zero biases and unit statistics hide nothing.
pub fn perturb<N: Params<f32>>(net: &mut N, seed: u64) {
    let mut k = 0;
    net.visit_params_mut(&ParamPath::ROOT, &mut |p| {
        for v in p.value.iter_mut() {
            *v += 0.2 * noise(seed, k);
            k += 1;
        }
    });
    net.visit_buffers_mut(&ParamPath::ROOT, &mut |p| {
        let var = p.name.last() == "running_var";
        for v in p.value.iter_mut() {
            let u = noise(seed ^ 0x5555, k);
            *v = if var { 1.0 + 0.5 * u } else { 0.3 * u };
            k += 1;
        }
    });
}

/// Runs the ONNX file `bytes` in tract on `input` (one sample per column, `dims` a sample's shape).
pub fn run_tract(bytes: &[u8], dims: &[usize], input: &[f32], batch: usize) -> TractResult<Vec<f32>> {
    let shape: Vec<usize> = std::iter::once(batch).chain(dims.iter().copied()).collect();
    let model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])?
        .with_input_fact(0, f32::fact(&shape).into())?
        .into_optimized()?
        .into_runnable()?;
    let x = Tensor::from_shape(&shape, input)?;
    let out = model.run(tvec!(x.into_tvalue()))?;
    Ok(out[0].to_plain_array_view::<f32>()?.iter().copied().collect())
}

/// Exports `net`, runs it in tract on `x`, and checks every output against
/// staticnet's `forward`: `|onnx − staticnet| ≤ 1e-5 · max(1, max |staticnet|)`
/// (relative to the output's scale, in f32). Returns the outputs.
pub fn check<N, const I: usize, const O: usize>(net: &N, x: &Batch<f32, I>) -> Vec<f32>
where
    N: Network<f32, I, O> + Export<f32>,
{
    let bytes = net.to_onnx_bytes().expect("export");
    let ours = net.forward(x);
    let batch = x.ncols();
    let theirs =
        run_tract(&bytes, &net.onnx_input_dims(), x.as_slice(), batch).expect("tract runs the export");
    assert_eq!(theirs.len(), ours.len(), "output sizes");
    dump(net.onnx_name(), &bytes, &net.onnx_input_dims(), batch, x.as_slice(), ours.as_slice());
    let scale = ours.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (k, (a, b)) in theirs.iter().zip(ours.iter()).enumerate() {
        let tol = 1e-5 * scale;
        assert!(
            (a - b).abs() <= tol,
            "output {k} (sample {}): tract {a} vs staticnet {b} (tolerance {tol})",
            k / O
        );
    }
    theirs
}

/// With `STATICNET_ONNX_DUMP=DIR`, writes each checked export to `DIR/NAME_K.onnx` with
/// `NAME_K.json` (sample shape, batch, input, staticnet's output) for `tools/check_onnx.py`.
fn dump(name: &str, bytes: &[u8], dims: &[usize], batch: usize, input: &[f32], output: &[f32]) {
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let Some(dir) = std::env::var_os("STATICNET_ONNX_DUMP") else { return };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("dump directory");
    let stem = format!("{name}_{}", COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    std::fs::write(dir.join(format!("{stem}.onnx")), bytes).expect("write the export");
    let list = |v: &[f32]| v.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>().join(",");
    let dims = dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",");
    let json = format!(
        "{{\"dims\":[{dims}],\"batch\":{batch},\"input\":[{}],\"output\":[{}]}}",
        list(input),
        list(output)
    );
    std::fs::write(dir.join(format!("{stem}.json")), json).expect("write the reference");
}
