//! `mpi-check CASE [DIR]`: one check of data-parallel training
//! (`Trainer::fit_distributed`), run on every rank by `mpirun`; tests/mpirun.rs
//! launches it with 1, 2 and 3 ranks. A rank prints `ok CASE` (rank 0) and
//! exits 0 when the check holds; otherwise it prints why and exits 1, and
//! `mpirun` fails. The fault cases (`fail-exit`, `panic`, `crash`) must end the
//! whole job with a failure, quickly, which the launching test checks.
//! `mpi-check bench COUNT...` times all-reduces of COUNT f32 values, `mpi-check
//! overlap-bench STEPS ROUNDS [BUCKET_MIB [FIRST_MIB]]` a step of a 42 MB model with the
//! all-reduce overlapped with backward and not (DISTRIBUTED.md).

mod cases;
mod nets;
mod overlap;

use staticnet::distributed::{self, mpi};
use std::path::PathBuf;
use std::process::ExitCode;

use mpi::traits::*;

fn main() -> ExitCode {
    let Some(universe) = mpi::initialize() else {
        eprintln!("MPI could not be initialised");
        return ExitCode::FAILURE;
    };
    distributed::abort_on_panic();
    staticnet::set_threads(1);
    let world = universe.world();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let case = args.first().map_or("", String::as_str);
    let dir = PathBuf::from(args.get(1).map_or("target/mpi-check", String::as_str));
    let result = match case {
        "identical" => cases::identical(&world),
        "equivalence" => cases::equivalence(&world),
        "resume" => cases::resume(&world, &dir),
        "uneven" => cases::uneven(&world),
        "fault" => cases::fault(&world),
        "fail-exit" => cases::fail_exit(&world),
        "panic" => cases::panic(&world),
        "crash" => cases::crash(&world),
        "bench" => cases::bench(&world, &args[1..]),
        "overlap" => overlap::overlap(&world),
        "overlap-bench" => overlap::bench(&world, &args[1..]),
        other => Err(format!("unknown case {other:?}")),
    };
    match result {
        Ok(()) => {
            if world.rank() == 0 {
                println!("ok {case} on {} rank(s)", world.size());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            // One write, so that a rank ended by `mpirun` meanwhile leaves no half line.
            let line = format!("rank {}/{}: {case}: {e}\n", world.rank(), world.size());
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            ExitCode::FAILURE
        }
    }
}
