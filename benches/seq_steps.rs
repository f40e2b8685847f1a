//! A fixed number of issue 19's sequence cases, for profilers (`perf`,
//! `valgrind --tool=callgrind`), where criterion's adaptive iteration counts
//! would make instruction counts incomparable:
//!
//! ```sh
//! cargo build --release -p staticnet-benches --example seq_steps
//! valgrind --tool=callgrind target/release/examples/seq_steps gpt 3
//! ```
//!
//! Arguments: the case (`gpt`, `lstm`, `infer`, `generate`, `generate63`,
//! `generate_kv63`: 63 tokens without and with the decoder), the number of
//! timed repetitions after one untimed warm-up (default 3), and the thread
//! count (default 1). It prints the wall time per repetition, a rough hint only.

use seq_nets::*;
use staticnet::prelude::*;
use std::hint::black_box;
use std::time::Instant;

#[path = "seq_nets.rs"]
mod seq_nets;

/// The CPU time of this thread in seconds (Linux; 0 elsewhere): on a shared
/// machine, less disturbed by other work than wall time.
fn cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    s.split(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) * 1e-9
}

/// Runs `step` once to size every buffer, then `reps` times, printing the
/// wall time and the calling thread's CPU time per repetition (the best and the median).
fn run(what: &str, reps: usize, mut step: impl FnMut()) {
    step();
    let (mut wall, mut busy) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(1) {
        let (start, on_cpu) = (Instant::now(), cpu());
        step();
        wall.push(start.elapsed().as_secs_f64() * 1e3);
        busy.push((cpu() - on_cpu) * 1e3);
    }
    for v in [&mut wall, &mut busy] {
        v.sort_by(f64::total_cmp);
    }
    let (w, b) = (wall.len() / 2, busy.len() / 2);
    println!(
        "{what}: wall {:.3} ms best, {:.3} median; caller's CPU {:.3} ms best, {:.3} median",
        wall[0], wall[w], busy[0], busy[b]
    );
}

/// Training steps of `net` with `optimizer` on the benches' batch of 32 windows.
fn train<N: Network<f32, STEPS, LOGITS>, O: Optimizer<f32>>(what: &str, reps: usize, mut net: N, mut opt: O) {
    let (x, labels) = windows(BATCH);
    let loss = SequenceCrossEntropy::<STEPS, VOCAB>;
    let (mut trace, mut grads, mut d_out) = (N::Trace::default(), net.zero_gradients(), Batch::zeros(0));
    run(what, reps, || {
        let out = net.forward_train(&x, &mut trace);
        let value = loss.loss_and_grad(out, &labels, &mut d_out).expect("labels fit");
        net.backward(&x, &mut trace, &d_out, &mut grads, None);
        opt.step(&mut net, &grads).expect("finite");
        black_box(value);
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let case = args.first().map_or("gpt", String::as_str);
    let reps = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(3);
    staticnet::set_threads(args.get(2).and_then(|t| t.parse().ok()).unwrap_or(1));
    match case {
        "gpt" => train("gpt_train_b32_t64", reps, CharGpt::new(0), AdamW::new(1e-3, 0.01)),
        "lstm" => train("lstm_train_b32_t64", reps, CharLstm::new(0), Sgd::new(0.1)),
        "infer" => {
            let (net, (x, _)) = (CharGpt::new(0), windows(1));
            let mut trace = <CharGpt as Network<f32, STEPS, LOGITS>>::Trace::default();
            run("gpt_infer_b1_t64", reps, || {
                black_box(net.infer(&x, &mut trace)[(0, 0)]);
            });
        }
        "generate" => {
            let net = CharGpt::new(0);
            run("generate_tokens", reps, || {
                black_box(generate(&net, &[0], TOKENS, &Sampling::default()).expect("a valid prompt"));
            });
        }
        // The peers' key/value case: 63 tokens from a 1-token prompt, with and without the decoder.
        "generate63" | "generate_kv63" => {
            let net = CharGpt::new(0);
            let full = case == "generate63";
            run(case, reps, || {
                let sampling = Sampling::default();
                let new = if full {
                    staticnet::generate::generate_full_window(&net, &[0], STEPS - 1, &sampling)
                } else {
                    generate(&net, &[0], STEPS - 1, &sampling)
                };
                black_box(new.expect("a valid prompt"));
            });
        }
        other => eprintln!("unknown case {other}: gpt, lstm, infer, generate, generate63 or generate_kv63"),
    }
}
