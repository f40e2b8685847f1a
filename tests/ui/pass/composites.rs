// Residual blocks, parallel branches and nested networks: shapes, names, counts.
use staticnet::prelude::*;

network! {
    pub struct Encoder { input: [1, 8, 8], conv: conv2d(4, kernel = 3, padding = same), relu }
}

network! {
    pub struct Net {
        input: [1, 8, 8],
        encoder: Encoder => [4, 8, 8],
        block: residual { conv2d(4, kernel = 3, padding = same), batch_norm, relu, conv2d(4, kernel = 3, padding = 1) },
        down: residual(projection) { conv2d(6, kernel = 3, stride = 2, padding = 1), tanh } => [6, 4, 4],
        cat: parallel(concat) { branch { conv2d(2, kernel = 1) } branch { max_pool(1), conv2d(3, kernel = 1) } } => [5, 4, 4],
        flatten,
        sum: parallel(add) { branch { dense(3) } branch { dense(3), dropout(0.5) } },
        r: residual(projection) { dense(2) },
        output: [2],
    }
}

fn main() {
    let encoder = 4 * 9 + 4;
    let block = 2 * (4 * 4 * 9 + 4) + 2 * 4;
    let down = 6 * 4 * 9 + 6 + (6 * 4 + 6);
    let cat = (2 * 6 + 2) + (3 * 6 + 3);
    let sum = 2 * (80 * 3 + 3);
    let r = (3 * 2 + 2) * 2;
    assert_eq!(Net::PARAM_COUNT, encoder + block + down + cat + sum + r);
    let kinds: Vec<&str> = Net::LAYERS.iter().map(|l| l.kind).collect();
    assert_eq!(
        kinds,
        ["Encoder", "residual", "residual(projection)", "parallel(concat)", "flatten", "parallel(add)", "residual(projection)"]
    );
    let mut net = Net::new(1);
    let mut names = Vec::new();
    net.visit_params(&ParamPath::ROOT, &mut |p| names.push((p.name.to_string(), p.shape.to_vec())));
    assert_eq!(names[0], ("encoder.conv.weight".to_string(), vec![4, 1, 3, 3]));
    assert!(names.contains(&("down.projection.weight".to_string(), vec![6, 4, 1, 1])));
    assert!(names.contains(&("cat.1.1.weight".to_string(), vec![3, 6, 1, 1])));
    assert!(names.contains(&("r.projection.weight".to_string(), vec![2, 3])));
    let mut buffers = Vec::new();
    net.visit_buffers(&ParamPath::ROOT, &mut |b| buffers.push(b.name.to_string()));
    assert_eq!(buffers, ["block.body.1.running_mean", "block.body.1.running_var"]);

    let x = NetInput::from_fn(3, |i, j| ((i + j) as f32 * 0.1).sin());
    let y = net.forward(&x);
    assert_eq!(y.shape(), (2, 3));
    let mut trace = NetTrace::default();
    assert_eq!(net.infer(&x, &mut trace), &y);
    let train = net.forward_train(&x, &mut trace).clone();
    assert_eq!(train.shape(), (2, 3));
}
