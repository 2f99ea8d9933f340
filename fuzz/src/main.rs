//! `c3-fuzz [--runs N] [--seed S] [--save-seeds] [TARGET...]`: runs the fuzz targets
//! (all by default) for N mutants each (default 100,000), prints one line per target
//! (inputs, inputs/s, slowest input, largest allocation, findings) and writes any
//! finding's input under fuzz/findings/. `--save-seeds` writes each target's seeds
//! to fuzz/corpus/TARGET/. Exit 1 when anything was found.

use std::process::ExitCode;

use c3_fuzz::{run, targets};

fn main() -> ExitCode {
    let mut runs = 100_000u64;
    let mut seed = 1u64;
    let mut save_seeds = false;
    let mut names = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| -> u64 {
            let v = args.next().unwrap_or_default();
            v.replace('_', "").parse().unwrap_or_else(|_| {
                eprintln!("c3-fuzz: {flag} takes a number, got `{v}`");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--runs" => runs = value("--runs"),
            "--seed" => seed = value("--seed"),
            "--save-seeds" => save_seeds = true,
            "-h" | "--help" => {
                println!("c3-fuzz [--runs N] [--seed S] [--save-seeds] [TARGET...]");
                return ExitCode::SUCCESS;
            }
            _ => names.push(a),
        }
    }
    let ctx = match targets::Context::new() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("c3-fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    let all = targets::all(&ctx);
    for n in &names {
        if !all.iter().any(|t| t.name == n) {
            let known: Vec<_> = all.iter().map(|t| t.name).collect();
            eprintln!("c3-fuzz: no target `{n}` (targets: {})", known.join(", "));
            return ExitCode::from(2);
        }
    }
    let mut found = 0;
    for t in all
        .iter()
        .filter(|t| names.is_empty() || names.iter().any(|n| n == t.name))
    {
        if save_seeds {
            let dir = targets::corpus_dir(t.name);
            let _ = std::fs::create_dir_all(&dir);
            for (i, s) in t.seeds.iter().enumerate() {
                let _ = std::fs::write(dir.join(format!("seed-{i}")), s);
            }
        }
        let r = run::run(t, runs, seed, |i| {
            eprint!("\r{}: {i} inputs", t.name);
        });
        eprint!("\r");
        println!(
            "{:<16} {:>10} inputs  {:>8.0}/s  slowest {:>7.1} ms  largest allocation {:>6.1} MiB  findings {}   ({})",
            t.name,
            r.inputs,
            r.inputs as f64 / r.seconds,
            r.slowest.as_secs_f64() * 1e3,
            r.largest_alloc as f64 / (1 << 20) as f64,
            r.findings.len(),
            t.what,
        );
        for f in &r.findings {
            match run::save(t.name, f) {
                Ok(p) => println!("  {} {} -> {}", f.kind, f.detail, p.display()),
                Err(e) => println!("  {} {} (not saved: {e})", f.kind, f.detail),
            }
        }
        found += r.findings.len();
    }
    if found > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
