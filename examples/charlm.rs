//! A character-level language model of the King James Bible: a small GPT
//! (token and position embeddings, two pre-LN transformer blocks with causal
//! attention) or an LSTM, trained on windows of 64 characters.
//!
//! ```text
//! cargo run --release --example charlm                                  # train the transformer (3,000 steps)
//! cargo run --release --example charlm -- --model lstm                  # the recurrent model instead
//! cargo run --release --example charlm -- --eval data/kjv/valid.txt     # the loss of the saved model on a file
//! cargo run --release --example charlm -- --generate "And God said"     # a sample from the saved model
//! ```
//!
//! The vocabulary is the characters of the training text; a character the
//! model has never seen is an error naming it, not a panic.

use staticnet::data::text::{next_token_windows, read_text, windows_at, CharVocab};
use staticnet::init::{next_seed, seeded_rng};
use staticnet::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Characters per window.
const STEPS: usize = 64;
/// Distinct characters in the KJV text.
const VOCAB: usize = 63;
/// Logits per window: `[STEPS, VOCAB]`.
const LOGITS: usize = STEPS * VOCAB;

network! {
    /// A GPT of two pre-LN blocks over 64 characters: every step sees only the steps before it.
    pub struct CharGpt {
        input: tokens[64],                       // 64 token ids per sample
        embed: embedding(63 -> 128),             // [64] tokens -> [64, 128]
        pos: positional,                         // learned position embedding, added: [64, 128]
        att1: residual { layer_norm, attention(heads = 4, causal) },
        ff1: residual { layer_norm, dense(512), gelu, dense(128) },
        att2: residual { layer_norm, attention(heads = 4, causal) },
        ff2: residual { layer_norm, dense(512), gelu, dense(128) },
        layer_norm,
        head: dense(63),                         // at every step: [64, 63]
        output: [64, 63],
    }
}

network! {
    /// A recurrent language model: an LSTM over the embedded characters.
    pub struct CharLstm {
        input: tokens[64],
        embed: embedding(63 -> 64),
        rnn: lstm(256),
        head: dense(63),
        output: [64, 63],
    }
}

/// What to do, from the command line.
struct Options {
    data: PathBuf,
    model: String,
    steps: usize,
    batch_size: usize,
    lr: Option<f64>,
    weight_decay: f64,
    seed: u64,
    threads: Option<usize>,
    out: PathBuf,
    eval: Option<PathBuf>,
    generate: Option<String>,
    tokens: usize,
    temperature: f64,
    top_k: usize,
}

const USAGE: &str = "charlm [--model gpt|lstm] [--steps N] [--batch-size N] [--lr X] [--weight-decay X] [--seed N] \
[--threads N] [--data DIR] [--out DIR] [--eval FILE] [--generate PROMPT [--tokens N] [--temperature X] [--top-k N]]";

impl Options {
    fn from_args() -> Result<Options, String> {
        let mut o = Options {
            data: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/kjv"),
            model: "gpt".into(),
            steps: 3000,
            batch_size: 32,
            lr: None,
            weight_decay: 0.01,
            seed: 42,
            threads: None,
            out: PathBuf::from("target/charlm"),
            eval: None,
            generate: None,
            tokens: 300,
            temperature: 0.8,
            top_k: 0,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} needs a value"));
            fn num<N: std::str::FromStr>(flag: &str, v: String) -> Result<N, String>
            where
                N::Err: std::fmt::Display,
            {
                v.parse().map_err(|e| format!("{flag}: {e}"))
            }
            match flag.as_str() {
                "--model" => o.model = value()?,
                "--steps" => o.steps = num(&flag, value()?)?,
                "--batch-size" => o.batch_size = num(&flag, value()?)?,
                "--lr" => o.lr = Some(num(&flag, value()?)?),
                "--weight-decay" => o.weight_decay = num(&flag, value()?)?,
                "--seed" => o.seed = num(&flag, value()?)?,
                "--threads" => o.threads = Some(num(&flag, value()?)?),
                "--data" => o.data = PathBuf::from(value()?),
                "--out" => o.out = PathBuf::from(value()?),
                "--eval" => o.eval = Some(PathBuf::from(value()?)),
                "--generate" => o.generate = Some(value()?),
                "--tokens" => o.tokens = num(&flag, value()?)?,
                "--temperature" => o.temperature = num(&flag, value()?)?,
                "--top-k" => o.top_k = num(&flag, value()?)?,
                "-h" | "--help" => return Err(format!("usage: {USAGE}")),
                other => return Err(format!("unknown argument {other}; usage: {USAGE}")),
            }
        }
        if !matches!(o.model.as_str(), "gpt" | "lstm") {
            return Err(format!("--model is gpt or lstm, not {}", o.model));
        }
        Ok(o)
    }
}

type Run = Result<(), Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let run = || -> Run {
        let opts = Options::from_args()?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        staticnet::set_threads(opts.threads.unwrap_or(cores));
        let vocab = CharVocab::from_text(&read_text(opts.data.join("train.txt"))?);
        if vocab.len() != VOCAB {
            return Err(format!(
                "the training text has {} distinct characters; the models take {VOCAB}",
                vocab.len()
            )
            .into());
        }
        match opts.model.as_str() {
            "gpt" => run(&opts, &vocab, CharGpt::new, CharGpt::summary(), 1e-3),
            _ => run(&opts, &vocab, CharLstm::new, CharLstm::summary(), 3e-3),
        }
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Evaluates, samples from or trains the chosen model.
fn run<N>(opts: &Options, vocab: &CharVocab, build: fn(u64) -> N, summary: String, default_lr: f64) -> Run
where
    N: Network<f32, STEPS, LOGITS>,
{
    let model_file = opts.out.join("model.safetensors");
    if opts.eval.is_some() || opts.generate.is_some() {
        let mut net = build(0);
        staticnet::persist::load_into(&mut net, &model_file)?;
        if let Some(file) = &opts.eval {
            let (loss, chars) = loss_on(&net, vocab, &read_text(file)?)?;
            println!("{}: {loss:.4} nats/char over {chars} characters", file.display());
        }
        if let Some(prompt) = &opts.generate {
            let sampling = Sampling { temperature: opts.temperature, top_k: opts.top_k, seed: opts.seed };
            let start = Instant::now();
            let new = generate(&net, &vocab.encode(prompt)?, opts.tokens, &sampling)?;
            let seconds = start.elapsed().as_secs_f64();
            println!("{prompt}{}", vocab.decode(&new)?);
            // The transformer decodes incrementally (a key/value cache) while the text fits its window.
            let how = if net.decoder().is_some() {
                "key/value cache within the window"
            } else {
                "whole window per token"
            };
            eprintln!("{} tokens in {:.1} ms ({how})", new.len(), seconds * 1e3);
        }
        return Ok(());
    }
    let mut net = build(opts.seed);
    println!("{summary}");
    let lr = opts.lr.unwrap_or(default_lr);
    std::fs::create_dir_all(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    train(&mut net, opts, vocab, lr)?;
    staticnet::persist::save(&net, &model_file)?;
    println!("saved {} and training.svg beside it", model_file.display());
    Ok(())
}

/// Trains `net` on `opts.steps` batches of windows drawn at random from the
/// training text, in ten stretches with a quick validation loss after each;
/// prints the loss on the whole validation text and writes `training.svg`.
fn train<N>(net: &mut N, opts: &Options, vocab: &CharVocab, lr: f64) -> Run
where
    N: Network<f32, STEPS, LOGITS>,
{
    let train_ids = vocab.encode(&read_text(opts.data.join("train.txt"))?)?;
    let valid =
        next_token_windows::<f32, STEPS>(&vocab.encode(&read_text(opts.data.join("valid.txt"))?)?, STEPS)?;
    let probe = valid.take(valid.len().min(512));
    let loss = SequenceCrossEntropy::<STEPS, VOCAB>;
    let mut trainer = Trainer::new(AdamW::new(lr, opts.weight_decay))
        .epochs(1)
        .batch_size(opts.batch_size)
        .seed(opts.seed)
        .verbose(false);
    let (mut rng, mut history, mut done) = (seeded_rng(opts.seed), History::default(), 0);
    let stretches = opts.steps.clamp(1, 10);
    println!(
        "{} training characters, {} threads; AdamW lr {lr}, batches of {} windows",
        train_ids.len(),
        staticnet::threads(),
        opts.batch_size
    );
    let start = Instant::now();
    for k in 1..=stretches {
        let steps = opts.steps * k / stretches - done;
        let room = (train_ids.len() - STEPS) as u64;
        let starts: Vec<usize> =
            (0..steps * opts.batch_size).map(|_| (next_seed(&mut rng) % room) as usize).collect();
        let data = windows_at::<f32, STEPS>(&train_ids, &starts)?;
        for mut report in trainer.fit(net, &loss, &data, Some(&probe))?.epochs {
            done += steps;
            report.epoch = k;
            let valid = report.validation.map_or(f64::NAN, |m| m.loss);
            println!(
                "step {done:>5}/{}: train {:.4}, validation {valid:.4} nats/char ({:.0} s)",
                opts.steps,
                report.train.loss,
                start.elapsed().as_secs_f64()
            );
            history.epochs.push(report);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let (valid_loss, chars) = (evaluate(net, &loss, &valid, 64)?.loss, valid.len() * STEPS);
    println!("validation loss: {valid_loss:.4} nats/char over {chars} characters after {done} steps and {seconds:.1} s of training");
    history.plot_svg(opts.out.join("training.svg"))?;
    Ok(())
}

/// The mean loss of `net` on non-overlapping windows of `text`, and how many characters they cover.
fn loss_on<N>(net: &N, vocab: &CharVocab, text: &str) -> Result<(f64, usize), Box<dyn std::error::Error>>
where
    N: Network<f32, STEPS, LOGITS>,
{
    let windows = next_token_windows::<f32, STEPS>(&vocab.encode(text)?, STEPS)?;
    if windows.is_empty() {
        return Err(format!("the text has fewer than {} characters: no whole window", STEPS + 1).into());
    }
    let loss = evaluate(net, &SequenceCrossEntropy::<STEPS, VOCAB>, &windows, 64)?.loss;
    Ok((loss, windows.len() * STEPS))
}
