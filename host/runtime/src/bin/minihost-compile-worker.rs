//! A standalone compile worker: what `minihost __compile` runs, for hosts other than the
//! `minihost` binary (the runtime's own tests use it). See `minihost_runtime::CompileWorker`.

fn main() -> std::process::ExitCode {
    minihost_runtime::compile_worker_main(std::env::args_os().skip(1))
}
