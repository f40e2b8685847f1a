//! Records the crate versions resolved in Cargo.lock and the compiler version, so the reports
//! name what was actually measured.
use std::collections::HashMap;

struct Pkg {
    name: String,
    version: String,
    deps: Vec<String>,
}

fn parse_lock(text: &str) -> Vec<Pkg> {
    let mut out = Vec::new();
    for block in text.split("[[package]]").skip(1) {
        let mut p = Pkg { name: String::new(), version: String::new(), deps: Vec::new() };
        let mut in_deps = false;
        for line in block.lines() {
            let t = line.trim();
            if in_deps {
                if t.starts_with(']') {
                    in_deps = false;
                } else {
                    p.deps.push(t.trim_matches(|c| c == '"' || c == ',').to_string());
                }
            } else if let Some(v) = t.strip_prefix("name = ") {
                p.name = v.trim_matches('"').to_string();
            } else if let Some(v) = t.strip_prefix("version = ") {
                p.version = v.trim_matches('"').to_string();
            } else if t.starts_with("dependencies = [") {
                in_deps = true;
            }
        }
        out.push(p);
    }
    out
}

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-changed=build.rs");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let pkgs = parse_lock(&lock);
    let mut by_name: HashMap<&str, Vec<&str>> = HashMap::new();
    for p in &pkgs {
        by_name.entry(&p.name).or_default().push(&p.version);
    }
    let version = |name: &str| -> String {
        by_name.get(name).map(|v| v.join("+")).unwrap_or_else(|| "not in Cargo.lock".into())
    };
    // the version of `dep` that package `parent` uses
    let dep_of = |parent: &str, dep: &str| -> String {
        let Some(p) = pkgs.iter().find(|p| p.name == parent) else { return "not in Cargo.lock".into() };
        for d in &p.deps {
            let mut it = d.split_whitespace();
            if it.next() == Some(dep) {
                return it.next().map(str::to_string).unwrap_or_else(|| version(dep));
            }
        }
        "not a dependency".into()
    };
    let envs = [
        ("PEERS_LOCK_DFDX", version("dfdx")),
        ("PEERS_LOCK_GEMM_DFDX", dep_of("dfdx", "gemm")),
        ("PEERS_LOCK_CANDLE_CORE", version("candle-core")),
        ("PEERS_LOCK_CANDLE_NN", version("candle-nn")),
        ("PEERS_LOCK_BURN", version("burn")),
        ("PEERS_LOCK_BURN_NDARRAY", version("burn-ndarray")),
        ("PEERS_LOCK_BURN_AUTODIFF", version("burn-autodiff")),
        ("PEERS_LOCK_MATRIXMULTIPLY", dep_of("burn-ndarray", "matrixmultiply")),
    ];
    for (k, v) in envs {
        println!("cargo:rustc-env={k}={v}");
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let v = std::process::Command::new(rustc)
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "rustc (unknown)".into());
    println!("cargo:rustc-env=PEERS_RUSTC_VERSION={v}");
}
