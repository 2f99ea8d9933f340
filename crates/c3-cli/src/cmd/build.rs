//! `c3 build`: TensorRT engine plans under `trt-plans/` (crates/c3-trt). The check
//! a plan gets before it is loaded (`--engine`) is the runtime library's.

use anyhow::Result;
use c3_trt::BuildEvent;

pub fn run(a: c3_trt::BuildArgs) -> Result<()> {
    // One line per engine on stderr (each takes minutes on a GPU); stdout stays the report.
    let report = c3_trt::build_reporting(&a, &c3_trt::Probe::from_env(), &mut |e| match e {
        BuildEvent::EngineStarted { index, total, job } => {
            eprintln!("c3 build: engine {}/{total} {} ...", index + 1, job.name)
        }
        BuildEvent::EngineBuilt {
            index,
            total,
            job,
            seconds,
        } => eprintln!(
            "c3 build: engine {}/{total} {} built in {seconds:.1}s",
            index + 1,
            job.name
        ),
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    Ok(())
}
